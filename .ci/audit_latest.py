"""Checks pinned packages against PyPI's per-project JSON, whose `vulnerabilities` are those
of the project's latest release: a pin that is the latest release is checked exactly.

    python .ci/audit_latest.py requirements/serving.txt .ci/audit-exceptions.txt [--require-latest]

Prints one line per package and exits 1 on any known vulnerability (not accepted in the
exceptions file) or failed lookup. A pin older than the latest release cannot be checked
this way: it is listed as NOT CHECKED (and fails with --require-latest).
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;#]+)")


def main(pins_file: str, exceptions_file: str, *flags: str) -> int:
    accepted = {
        line.split()[0]
        for line in Path(exceptions_file).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    pins = [m.groups() for m in map(PIN.match, Path(pins_file).read_text().splitlines()) if m]
    problems = 0
    unchecked = []
    for name, version in pins:
        try:
            with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as r:
                project = json.load(r)
        except OSError as error:
            print(f"{name}=={version}: FAILED lookup: {error}")
            problems += 1
            continue
        latest = project["info"]["version"]
        vulnerabilities = [
            v["id"]
            for v in project.get("vulnerabilities", [])
            if v["id"] not in accepted and not set(v.get("aliases", [])) & accepted
        ]
        if version != latest:
            print(f"{name}=={version}: NOT CHECKED: the latest release is {latest}")
            unchecked.append(f"{name} {version} < {latest}")
        elif vulnerabilities:
            print(f"{name}=={version}: FAILED: known vulnerabilities {', '.join(vulnerabilities)}")
            problems += 1
        else:
            print(f"{name}=={version}: latest release, no known vulnerabilities")
    print(
        f"audit: {len(pins)} pinned packages, {len(pins) - len(unchecked)} checked, "
        f"{problems} with problems; not checked: {', '.join(unchecked) or 'none'}"
    )
    if unchecked and "--require-latest" in flags:
        return 1
    return 1 if problems or not pins else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
