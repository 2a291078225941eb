"""Bounds on each connection, checked before a request reaches the app, and the drain.

uvicorn's HTTP protocol, with what it leaves open closed:

    headers       the request line and headers may hold `max_header_bytes` (431 past it), and
                  must arrive within `header_timeout_s` of the connection opening or of the
                  request's first byte (408): a client that sends nothing, or sends its
                  headers a byte at a time, is let go
    connections   past `max_connections` open at once a new connection's requests are
                  refused 503 and it is closed, but for the health routes: a probe still
                  answers while the server is full; past half the reserve of descriptors a
                  new connection is dropped at once. On the probe port (`health_port`) only
                  the health routes answer, and the cap does not apply: there a flood of the
                  main port cannot starve the probes
    errors        a malformed request is answered as JSON, like every other refusal
    drain         on shutdown a connection with no request under way is given a moment for
                  bytes already sent to arrive, so a request in flight is answered, not reset

`bounded_protocol(limits)` is what `uvicorn.Config(http=...)` takes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from attnserve.service.headers import security_headers

logger = logging.getLogger(__name__)

# Set in the scope of a request on a connection opened past `max_connections`.
OVER_CAPACITY = "attnserve.over_capacity"
# How long a connection opened past the cap may take to send its request line and headers: a
# probe sends its request at once, a connection that idles is holding a descriptor.
OVER_CAPACITY_HEADER_TIMEOUT_S = 0.1
# On shutdown, how long an idle connection is kept for request bytes already on their way.
ACCEPTED_LINGER_S = 0.5
# Descriptors kept free beyond the connection cap: for files, the model, and the connections
# accepted past the cap only to be answered and closed.
RESERVED_DESCRIPTORS = 128


# Set in the scope of a request that came in on the probe port.
ON_HEALTH_PORT = "attnserve.health_port"
# Most connections open at once on the probe port; past it they are dropped.
HEALTH_PORT_CONNECTIONS = 32


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout_s: float
    max_connections: int
    health_port: int | None = None


def bounded_protocol(limits: ConnectionLimits) -> Any:
    """The protocol class uvicorn instantiates per connection, bound to `limits`."""
    return functools.partial(BoundedHttpProtocol, limits=limits)


def connection_cap(max_connections: int) -> int:
    """`max_connections`, lowered to what the process's descriptors allow after raising their
    soft limit to the hard one: a server at its descriptor limit cannot even refuse."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return max(1, min(max_connections, soft - RESERVED_DESCRIPTORS))


_last_over_capacity_log = 0.0


def _log_over_capacity(open_now: int, limit: int) -> None:
    """At most a line a second: an attack must not also flood the log."""
    global _last_over_capacity_log
    now = time.monotonic()
    if now - _last_over_capacity_log >= 1.0:
        _last_over_capacity_log = now
        logger.warning("connections_over_capacity", extra={"connections": open_now, "limit": limit})


class HeadersTooLarge(Exception):
    """Raised from the parser's callbacks to stop it at the header limit."""


class BoundedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._reading_headers = True
        self._header_bytes = 0  # of the request line and headers parsed so far
        self._unparsed_bytes = 0  # received while the headers are not complete
        self._headers_too_large = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._over_capacity = False
        self._on_health_port = False
        self._draining = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_now = len(self.connections)
        self._on_health_port = self.server is not None and self.server[1] == self.limits.health_port
        if self._on_health_port:
            on_port = sum(1 for c in self.connections if getattr(c, "_on_health_port", False))
            if on_port > HEALTH_PORT_CONNECTIONS:
                transport.abort()
                return
        self._over_capacity = not self._on_health_port and open_now > self.limits.max_connections
        if self._over_capacity:
            _log_over_capacity(open_now, self.limits.max_connections)
            if open_now > self.limits.max_connections + RESERVED_DESCRIPTORS // 2:
                # half the reserve is gone: drop it now, before the descriptors run out and
                # the event loop's accept resets every new connection, probes included
                transport.abort()
                return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._arm_header_timer()
            self._unparsed_bytes += len(data)
        super().data_received(data)
        # a header line that never ends is held by the parser, not handed to on_header
        if self._reading_headers and self._unparsed_bytes > self.limits.max_header_bytes:
            self._refuse_headers()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large = True
            raise HeadersTooLarge  # stops the parser; answered by send_400_response

    def _refuse_headers(self) -> None:
        self._refuse(
            431,
            "headers_too_large",
            f"The request line and headers are larger than the limit of "
            f"{self.limits.max_header_bytes} bytes.",
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._over_capacity:
            self.scope[OVER_CAPACITY] = True  # type: ignore[literal-required]
        if self._on_health_port:
            self.scope[ON_HEALTH_PORT] = True  # type: ignore[literal-required]

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._unparsed_bytes = 0
        self._cancel_header_timer()
        super().on_headers_complete()
        if (self._over_capacity or self._draining) and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_headers = True
        self._header_bytes = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse: as JSON."""
        if self._headers_too_large:
            self._refuse_headers()
        else:
            self._refuse(400, "invalid_http_request", msg)

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            # request bytes may be on their way: answer them, then close
            self._draining = True
            self.loop.call_later(ACCEPTED_LINGER_S, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            timeout = (
                OVER_CAPACITY_HEADER_TIMEOUT_S
                if self._over_capacity
                else self.limits.header_timeout_s
            )
            self._header_timer = self.loop.call_later(timeout, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self._reading_headers or self.transport.is_closing():
            return
        self._refuse(
            408,
            "header_timeout",
            f"The request line and headers did not arrive within "
            f"{self.limits.header_timeout_s:g} s.",
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answers before any app sees the request, in the API's error shape, and closes."""
        self._cancel_header_timer()
        if self.transport.is_closing():
            return
        logger.info(
            "connection_refused",
            extra={"status": status, "code": code, "client": str(self.client)},
        )
        body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
            *security_headers(""),
        ]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
}
