"""What a server did outside its own memory, read from strace: where it connected, what it wrote.

`strace --seccomp-bpf -f` stops the traced process (and its threads and children) only on the
calls named in TRACED_CALLS, so a traced server runs at nearly its own speed. Used by
tests/test_no_egress.py over a start and a few requests, and by `bench.soak --trace` over ten
minutes of load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRACED_CALLS = (
    "connect",
    "open",
    "openat",
    "creat",
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "truncate",
)
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

# `PID call(arguments) = result`, where strace may split one call over two lines when another
# thread's call comes in between: `PID call(arguments <unfinished ...>` and later
# `PID <... call resumed>rest) = result`.
_LINE = re.compile(r"^(\d+)\s+(.*)$")
_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"^<\.\.\. \w+ resumed>")
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)")
# connect() to an IPv4/IPv6 address: the address is what follows inet_addr/inet_pton
_INET_PEER = re.compile(r'sa_family=AF_INET6?, .*?inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = re.compile(r"\bO_(?:WRONLY|RDWR|CREAT|TRUNC|APPEND)\b")


def strace_command(log: Path) -> list[str]:
    """The prefix that runs a command under strace, tracing TRACED_CALLS into `log`."""
    calls = ",".join(TRACED_CALLS)
    return ["strace", "--seccomp-bpf", "-f", "-qq", "-e", f"trace={calls}", "-o", str(log)]


@dataclass(frozen=True)
class SyscallTrace:
    """The addresses a traced process connected to beyond loopback, and the paths it created,
    opened for writing, renamed, linked or removed (successful calls only)."""

    peers: frozenset[str]
    written: frozenset[str]

    @classmethod
    def read(cls, log: Path) -> SyscallTrace:
        peers: set[str] = set()
        written: set[str] = set()
        for call, arguments in _completed_calls(log.read_text(errors="replace")):
            if call == "connect":
                peers.update(_INET_PEER.findall(arguments))
            elif call in ("open", "openat"):
                if _WRITE_FLAGS.search(arguments):
                    written.update(_QUOTED.findall(arguments)[:1])
            else:
                written.update(_QUOTED.findall(arguments))
        return cls(frozenset(peers - LOOPBACK), frozenset(written))

    def summary(self) -> str:
        peers = ", ".join(sorted(self.peers)) or "none"
        written = ", ".join(sorted(self.written)) or "none"
        return f"outbound connections: {peers}; paths written: {written}"


def _completed_calls(text: str) -> list[tuple[str, str]]:
    """(call, arguments) of each call that succeeded (connect may end in EINPROGRESS: -1 too)."""
    pending: dict[str, str] = {}
    calls = []
    for raw in text.splitlines():
        matched = _LINE.match(raw)
        if matched is None:
            continue
        pid, line = matched.groups()
        if line.endswith(_UNFINISHED):
            pending[pid] = line.removesuffix(_UNFINISHED)
            continue
        resumed = _RESUMED.match(line)
        if resumed:
            line = pending.pop(pid, "") + line[resumed.end() :]
        call = _CALL.match(line)
        if call is None:
            continue
        name, arguments, result = call.groups()
        if name == "connect" or result != "-1":
            calls.append((name, arguments))
    return calls
