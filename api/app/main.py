"""The FastAPI application: public API, staff API, console and web chat."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api import api_router
from app.chat.views import router as chat_router
from app.chat.views import static_files as chat_static
from app.console.views import router as console_router
from app.console.views import static_files as console_static
from app.core.edge import Edge
from app.core.errors import install_error_handlers
from app.core.limits import BodySizeLimit
from app.core.logging import AccessLog, configure_logging
from app.core.proxies import TrustedProxies
from app.status import lookup_views

# Swagger UI 5 (it reads OpenAPI 3.1), packaged by fastapi-offline; only its files are used.
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"


def create_app() -> FastAPI:
    """Build the application with its middleware, error handlers and routers."""
    configure_logging()
    # /docs with Swagger UI's own files served from here (FastAPI's default loads them from a
    # CDN, blank on an offline government network); no ReDoc (CDN only).
    app = FastAPI(title="房本助手 API", version="1.0.0", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(AccessLog)
    # Outermost first: the size cap before anything reads a body, then the edge (control
    # characters refused, unhandled errors logged once), then the access log.
    app.add_middleware(Edge)
    app.add_middleware(BodySizeLimit)
    # Outermost: the client's address from a trusted reverse proxy only (TRUSTED_PROXIES).
    app.add_middleware(TrustedProxies)
    lookup_views.add_route(app)  # first: the residents' hot path
    app.include_router(api_router)
    app.include_router(chat_router)
    app.mount("/chat/static", chat_static, name="chat-static")
    app.include_router(console_router)
    app.mount("/console/static", console_static, name="console-static")

    app.mount("/docs/static", StaticFiles(directory=DOCS_STATIC), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI over /openapi.json, all of it served by the api."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} · 接口文档",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app


app = create_app()
