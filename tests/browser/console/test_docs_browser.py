"""The API documentation at /docs renders with no network but the api's own (issue 13):
Swagger UI's files come from the api, not a CDN (an offline site saw a blank page). Every
request to another host is aborted here, as on such a network. Screenshot docs-01."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_docs_render_offline(browser, console_url, shot):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=console_url)
    own = urlparse(console_url).netloc
    elsewhere: list[str] = []

    def only_own(route, request):
        if urlparse(request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort()

    ctx.route("**/*", only_own)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/docs")
        page.wait_for_selector(".swagger-ui .info .title")
        assert "房本助手 API" in page.inner_text(".info .title")
        page.wait_for_selector(".opblock-summary-path")
        paths = page.eval_on_selector_all(
            ".opblock-summary-path",
            "els => els.map(e => e.textContent.replace(/[\\u200b\\s]/g, ''))",
        )
        assert "/api/v1/lookup" in paths and len(paths) > 20, paths[:5]
        shot(page, "docs-01-swagger")
    finally:
        ctx.close()
    assert elsewhere == []
