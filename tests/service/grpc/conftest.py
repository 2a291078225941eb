"""The real app serving HTTP and gRPC on real sockets of 127.0.0.1, for the gRPC tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from attnserve.service.app import create_app
from tests.conftest import cpu_settings
from tests.live_server import serve


@dataclass(frozen=True)
class Servers:
    http: str  # base URL, e.g. http://127.0.0.1:40123
    grpc: str  # target, e.g. 127.0.0.1:40124
    app: FastAPI


@contextmanager
def serving(repository: Path, **settings: Any) -> Iterator[Servers]:
    """The app with `settings` over HTTP and gRPC, each on a free port."""
    app = create_app(cpu_settings(repository, grpc_port=0, **settings))
    with serve(app) as url:
        yield Servers(url, f"127.0.0.1:{app.state.grpc_server.port}", app)


@pytest.fixture(scope="module")
def servers(shipped_repository: Path) -> Iterator[Servers]:
    """The shipped repository served with the default settings."""
    with serving(shipped_repository) as running:
        yield running
