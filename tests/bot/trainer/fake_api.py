"""A small real HTTP server playing the api's model endpoints for the trainer's tests
(docs/maintainers.md): training-data, live, progress, artifact, result, with the service
token."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "test-service-token-for-the-trainer"


@dataclass
class FakeApi:
    """What the server answers and what it received."""

    training_yaml: str = 'version: "3.1"\nnlu: []\n'
    training_status: int = 200
    live_model: Path | None = None
    live_fingerprint: str | None = None
    # Name the live model in the training-data headers (else only GET /live serves it).
    live_in_headers: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    artifact_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # The steps reported per model, and what POST …/progress answers (409: no longer training).
    progress: dict[str, list[str]] = field(default_factory=dict)
    progress_status: int = 200
    unauthorised: int = 0
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> FakeApi:
        """Serve on a free loopback port in a daemon thread."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Service {TOKEN}":
                    return True
                api.unauthorised += 1
                self._send(401, b'{"code": "bad_service_token"}', "application/json")
                return False

            def _send(
                self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _parts(self) -> list[str]:
                return self.path.split("?")[0].strip("/").split("/")

            def do_GET(self) -> None:  # noqa: N802
                api.calls.append(("GET", self.path))
                if not self._authorised():
                    return
                parts = self._parts()
                if parts[-1] == "training-data":
                    if api.training_status != 200:
                        self._send(api.training_status, b'{"code": "boom"}', "application/json")
                        return
                    headers = {}
                    if api.live_model is not None and api.live_in_headers:
                        headers["X-Live-Model-Path"] = str(api.live_model)
                        if api.live_fingerprint:
                            headers["X-Live-Model-Fingerprint"] = api.live_fingerprint
                    self._send(200, api.training_yaml.encode(), "application/x-yaml", headers)
                elif parts[-1] == "live":
                    if api.live_model is None:
                        self._send(404, b'{"code": "no_live_model"}', "application/json")
                        return
                    etag = {"ETag": f'"{api.live_fingerprint}"'} if api.live_fingerprint else {}
                    self._send(200, api.live_model.read_bytes(), "application/gzip", etag)
                else:
                    self._send(404, b"{}", "application/json")

            def do_PUT(self) -> None:  # noqa: N802
                api.calls.append(("PUT", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not self._authorised():
                    return
                model_id = self._parts()[-2]
                api.artifacts[model_id] = body
                api.artifact_headers[model_id] = dict(self.headers.items())
                self._send(200, json.dumps({"id": model_id}).encode(), "application/json")

            def do_POST(self) -> None:  # noqa: N802
                api.calls.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not self._authorised():
                    return
                model_id, kind = self._parts()[-2:]
                if kind == "progress":
                    api.progress.setdefault(model_id, []).append(json.loads(body)["stage"])
                    self._send(api.progress_status, b'{"stage": "ok"}', "application/json")
                    return
                api.results.setdefault(model_id, []).append(json.loads(body))
                self._send(200, b'{"status": "ok"}', "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, method: str, suffix: str) -> int:
        """How many calls of `method` went to a path ending in `suffix`."""
        return sum(1 for m, p in self.calls if m == method and p.endswith(suffix))
