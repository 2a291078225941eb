"""`attnserve serve` as a child process on 127.0.0.1: started, waited for, measured, stopped.

Shared by the reliability scripts (bench/overload.py, bench/soak.py) and the tests that must
see the real server behind Uvicorn (limits, deadlines, shutdown, overload).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import ATTNSERVE, REPO_ROOT
from bench.syscall_trace import strace_command


def _limit_descriptors(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


def cpu_seconds(pid: int) -> float:
    """CPU time process `pid` has used so far, user and system, all its threads (Linux)."""
    # the fields after the command name, whose parentheses may hold anything
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])  # utime and stime: stat(5) fields 14, 15
    return (user + system) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its URL, port, the process started (strace, when traced) and the
    server's own process id."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    pid: int

    def rss_bytes(self) -> int:
        """Resident memory of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def terminate(self, timeout_s: float = 60.0) -> int:
        """Sends SIGTERM and waits; returns the exit status."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):  # the server is gone; strace ends with it
                os.kill(self.pid, signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


@contextmanager
def serve(
    environment: Mapping[str, str] | None = None,
    ready_timeout_s: float = 60.0,
    stderr: int | None = subprocess.DEVNULL,
    arguments: list[str] | None = None,
    descriptors: int | None = None,
    trace: Path | None = None,
) -> Iterator[ServerProcess]:
    """Starts `attnserve serve [arguments]` on a free port with ATTNSERVE_* `environment` (and
    at most `descriptors` open files, when given; under strace into `trace`, when given: see
    bench/syscall_trace.py), waits for /readyz.

    Leaves the process stopped (SIGTERM, then SIGKILL after 60 s) however the block ends.
    """
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ATTNSERVE_", "ORT_"))},
        "ATTNSERVE_HOST": "127.0.0.1",
        "ATTNSERVE_PORT": str(port),
        "ATTNSERVE_PROVIDERS": "cpu",
        **(environment or {}),
    }
    process = subprocess.Popen(
        [*([] if trace is None else strace_command(trace)), ATTNSERVE, "serve", *(arguments or [])],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        preexec_fn=None if descriptors is None else _limit_descriptors(descriptors),
    )
    try:
        pid = process.pid if trace is None else _traced_child(process, ready_timeout_s)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    server = ServerProcess(f"http://127.0.0.1:{port}", port, process, pid)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"attnserve serve exited with {process.returncode} at startup")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"attnserve serve not ready within {ready_timeout_s} s")
            time.sleep(0.05)
        yield server
    finally:
        try:
            server.terminate()
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _traced_child(strace: subprocess.Popen[bytes], timeout_s: float) -> int:
    """The server strace started: its child once it runs another program than strace (strace
    forks short-lived children of its own at startup, to probe what the kernel supports)."""
    deadline = time.monotonic() + timeout_s
    tracer = os.readlink(f"/proc/{strace.pid}/exe")
    while True:
        for child in Path(f"/proc/{strace.pid}/task/{strace.pid}/children").read_text().split():
            with suppress(FileNotFoundError):
                if os.readlink(f"/proc/{child}/exe") != tracer:
                    return int(child)
        if strace.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"strace started no server (exit status {strace.returncode})")
        time.sleep(0.01)
