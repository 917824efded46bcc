"""The FastAPI application: public API, staff API, console and web chat."""

from __future__ import annotations

from fastapi import FastAPI

from app.api import api_router
from app.chat.views import router as chat_router
from app.chat.views import static_files as chat_static
from app.console.views import router as console_router
from app.console.views import static_files as console_static
from app.core.edge import Edge
from app.core.errors import install_error_handlers
from app.core.limits import BodySizeLimit
from app.core.logging import access_log_middleware, configure_logging


def create_app() -> FastAPI:
    """Build the application with its middleware, error handlers and routers."""
    configure_logging()
    app = FastAPI(title="房本助手 API", version="1.0.0", docs_url="/docs")
    install_error_handlers(app)
    app.middleware("http")(access_log_middleware)
    # Outermost first: the size cap before anything reads a body, then the edge (control
    # characters refused, unhandled errors logged once), then the access log.
    app.add_middleware(Edge)
    app.add_middleware(BodySizeLimit)
    app.include_router(api_router)
    app.include_router(chat_router)
    app.mount("/chat/static", chat_static, name="chat-static")
    app.include_router(console_router)
    app.mount("/console/static", console_static, name="console-static")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app


app = create_app()
