"""The interactive API docs, offline: Swagger UI at `/docs`, ReDoc at `/redoc`.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank without a network.
These are the same pages (FastAPI's HTML) with the scripts and styles that the fastapi-offline
package ships, served by the app under `/docs-assets/`. Their Content-Security-Policy allows
this origin only; the one script a page runs inline is allowed by its hash, taken from the
page as it is built (the page names its URLs, which a proxy's root path changes).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from attnserve.service.headers import DOCS_ASSETS, DOCS_POLICY

ASSETS = Path(str(files("fastapi_offline") / "static"))
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install_docs(app: FastAPI) -> None:
    """Serves the docs and their files (for an app built with docs_url and redoc_url None)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        schema, assets = _urls(app, request)
        page = get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )
        return _self_only(page)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        schema, assets = _urls(app, request)
        page = get_redoc_html(
            openapi_url=schema,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )
        return _self_only(page)


def _urls(app: FastAPI, request: Request) -> tuple[str, str]:
    """The OpenAPI schema's URL and the assets' folder, under the root path of a proxy."""
    root = request.scope.get("root_path", "")
    return f"{root}{app.openapi_url}", f"{root}{DOCS_ASSETS}"


def _self_only(page: HTMLResponse) -> HTMLResponse:
    """The page, with DOCS_POLICY and the hashes of its inline scripts as its script sources."""
    sources = ["'self'"] + [
        f"'sha256-{_digest(script)}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    ]
    page.headers["Content-Security-Policy"] = f"{DOCS_POLICY}; script-src {' '.join(sources)}"
    return page


def _digest(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
