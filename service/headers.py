"""Security headers on every answer, refusals and errors included, with a Content-Security-Policy
for what the path serves."""

from __future__ import annotations

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The API answers JSON only: it may load nothing. The page at / loads its own files and calls
# the API on its own origin. The interactive docs (service/docs.py) load theirs from this
# origin too, but ReDoc styles itself with <style> elements made as it runs and searches in a
# worker it makes from a blob: URL, and Swagger UI's CSS draws its icons from data: URLs; each
# docs page adds the hash of its inline script.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY = "default-src 'self'; frame-ancestors 'none'"
DOCS_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
DOCS_ASSETS = "/docs-assets"

RawHeaders = list[tuple[bytes, bytes]]


def _raw(policy: str) -> RawHeaders:
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": policy}
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


_API = _raw(API_POLICY)
_PAGE = _raw(PAGE_POLICY)
_DOCS = _raw(DOCS_POLICY)


def security_headers(path: str) -> RawHeaders:
    """The headers every answer for `path` carries (lower-case names, as ASGI sends them)."""
    if path == "/" or path.startswith("/static/"):
        return _PAGE
    if path in DOCS_PATHS or path.startswith(f"{DOCS_ASSETS}/"):
        return _DOCS
    return _API


def add_missing(headers: RawHeaders, extra: RawHeaders) -> None:
    """Appends each of `extra` whose name `headers` does not have yet (a route's own wins)."""
    present = {name for name, _ in headers}
    headers.extend(item for item in extra if item[0] not in present)
