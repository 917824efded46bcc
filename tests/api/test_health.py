"""The service answers and the schema migrates on both backends."""

from sqlalchemy import inspect


def test_healthz(client):
    """`/healthz` answers ok."""
    assert client.get("/healthz").json() == {"status": "ok"}


def test_migrations_create_every_table(engine):
    """Alembic's head has every model table, on SQLite and PostgreSQL alike."""
    from app.core.database import Base

    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_unknown_path_is_chinese_json(client):
    """A 404 is the `{code, message}` shape with a Chinese message."""
    body = client.get("/api/v1/nope").json()
    assert body["code"] == "not_found" and "没有找到" in body["message"]


def test_docs_use_only_the_apis_own_files(client) -> None:
    """/docs names no CDN; the Swagger UI files it loads are served by the api; no ReDoc."""
    import re

    html = client.get("/docs")
    assert html.status_code == 200
    sources = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html.text)
    sources += re.findall(r"""url: ?['"]([^'"]+)['"]""", html.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/docs/static/"):
            assert client.get(source).status_code == 200, source
    assert client.get("/redoc").status_code == 404
