"""Attacks on the connection edge, each against a fresh server, with a liveness probe running:

    .venv/bin/python -m bench.edges [--seconds 15]

    header flood     connections that send one header line without end
    slowloris        200 connections sending their headers a few bytes at a time
    idle sockets     connections that open and send nothing
    slow uploads     300 connections sending just-under-limit bodies slowly
    descriptors      connections opened past the process's descriptor limit (set low for it),
                     probed on the main port and on the probe port (ATTNSERVE_HEALTH_PORT)

For each: GET /healthz every 50 ms on a connection of its own, its p50/p99/max and failures,
and the server's RSS growth. Prints each attack and writes bench/results/edges.md. Not a test
(tests/test_edges.py checks each bound): the figures for RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bench.overload import write_results
from bench.server_process import ServerProcess, free_port, serve

REQUEST = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@dataclass
class Attack:
    name: str
    probes: list[float]  # seconds each /healthz took
    failed: int
    rss_growth_mb: float
    refused: int  # attack connections the server answered or closed

    def line(self) -> str:
        ms = sorted(seconds * 1000 for seconds in self.probes)
        return (
            f"{self.name}: /healthz {len(ms)} probes, p50 {percentile_of(ms, 50):.1f} ms, "
            f"p99 {percentile_of(ms, 99):.1f} ms, max {ms[-1] if ms else float('nan'):.1f} ms, "
            f"{self.failed} failed; server RSS {self.rss_growth_mb:+.1f} MB; "
            f"{self.refused} attacking connections answered or closed by the server"
        )


def percentile_of(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q / 100))]


def _probe(url: str, stop: threading.Event, probes: list[float], failures: list[str]) -> None:
    while not stop.is_set():
        start = time.monotonic()
        try:
            # a new connection each time, as an orchestrator's probe opens one
            if httpx.get(f"{url}/healthz", timeout=5).status_code != 200:
                failures.append("status")
            else:
                probes.append(time.monotonic() - start)
        except httpx.HTTPError as error:
            failures.append(repr(error))
        time.sleep(0.05)


def _attack(
    name: str,
    server: ServerProcess,
    probe_url: str,
    seconds: float,
    open_one: Callable[[], socket.socket],
    feed: Callable[[socket.socket], None],
    connections: int,
) -> Attack:
    stop = threading.Event()
    probes: list[float] = []
    failures: list[str] = []
    prober = threading.Thread(target=_probe, args=(probe_url, stop, probes, failures))
    before = server.rss_bytes()
    peak = before
    sockets: list[socket.socket] = []
    refused = 0
    prober.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            while len(sockets) < connections:
                try:
                    sockets.append(open_one())
                except OSError:
                    refused += 1
                    break
            for sock in list(sockets):
                try:
                    feed(sock)
                except OSError:  # answered and closed by the server
                    sockets.remove(sock)
                    sock.close()
                    refused += 1
            peak = max(peak, server.rss_bytes())
            time.sleep(0.2)
    finally:
        stop.set()
        prober.join()
        for sock in sockets:
            sock.close()
    return Attack(name, probes, len(failures), (peak - before) / 2**20, refused)


def _connect(server: ServerProcess) -> Callable[[], socket.socket]:
    def open_one() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.setblocking(False)
        return sock

    return open_one


def _send(data: bytes) -> Callable[[socket.socket], None]:
    def feed(sock: socket.socket) -> None:
        # BlockingIOError: the server is not reading, its buffers are full, as they should be
        with contextlib.suppress(BlockingIOError):
            sock.send(data)
        try:
            if sock.recv(65536) == b"":
                raise ConnectionResetError
        except BlockingIOError:
            pass

    return feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each attack")
    args = parser.parse_args()
    attacks: list[Attack] = []
    health_port = free_port()
    plans: list[tuple[str, int | None, bytes, int, bytes]] = [
        # name, the server's descriptor limit, first bytes, connections, bytes sent each round
        ("header flood (20 connections, one endless header line)", None, REQUEST + b"X-A: ", 20,
         b"a" * 4096),
        ("slowloris (200 connections, headers 8 bytes at a time)", None, REQUEST, 200, b"X-Slow: "),
        ("idle sockets (500 connections sending nothing)", None, b"", 500, b""),
        ("slow uploads (300 connections, 1 MB bodies at 4 kB a round)", None,
         REQUEST + b"Content-Length: 1048000\r\n\r\n", 300, b"a" * 4096),
        ("descriptors (the server's limit 256, 400 connections held open)", 256, b"", 400, b""),
        ("descriptors, probed on the probe port", 256, b"", 400, b""),
    ]  # fmt: skip
    for name, descriptors, first, connections, each_round in plans:
        probe_port = "probe port" in name
        environment = {"ATTNSERVE_HEALTH_PORT": str(health_port)} if probe_port else {}
        with serve(environment, descriptors=descriptors) as server:
            probe_url = f"http://127.0.0.1:{health_port}" if probe_port else server.url
            opener = _connect(server)

            def open_one(
                opener: Callable[[], socket.socket] = opener, first: bytes = first
            ) -> socket.socket:
                sock = opener()
                if first:
                    sock.send(first)
                return sock

            attack = _attack(
                name, server, probe_url, args.seconds, open_one, _send(each_round), connections
            )
        attacks.append(attack)
        print(attack.line(), flush=True)
    lines = [attack.line() for attack in attacks]
    print(f"wrote {write_results('edges', 'Attacks on the connection edge', lines)}")


if __name__ == "__main__":
    main()
