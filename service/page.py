"""The page at `GET /`: type text, pick a model, see the text shaded by attention.

Plain HTML, CSS and JavaScript from `service/static/` (package data), served by the app
itself: no build step, no CDN, so it works offline. The page calls the public API only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"


def install_page(app: FastAPI) -> None:
    """Serves the page at `/` and its files under `/static/`."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
