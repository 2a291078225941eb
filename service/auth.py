"""Optional API keys: with keys configured, every route but liveness/readiness needs one.

Keys are held only as sha256 digests (from `ATTNSERVE_API_KEYS`, hashed at startup, or from
`ATTNSERVE_API_KEYS_FILE`, which holds digests), and a presented key is hashed and compared
with every digest in constant time. Neither a key nor its digest is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from starlette.types import Scope

from attnserve.service.errors import InvalidApiKey, MissingApiKey, ServiceError, StartupError
from attnserve.service.settings import Settings

# Liveness and readiness, ours and the Open Inference Protocol's: probes carry no key.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
_DIGEST = re.compile(r"[0-9a-f]{64}")


def key_digest(key: str) -> str:
    """The sha256 hex digest of `key`, as a key file lists it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def configured_digests(settings: Settings) -> list[str]:
    """Digests of every configured key; empty when API keys are off."""
    digests = []
    if settings.api_keys is not None:
        keys = [key.strip() for key in settings.api_keys.get_secret_value().split(",")]
        keys = [key for key in keys if key]
        if not keys:
            # set but empty would silently turn authentication off: fail closed
            raise StartupError(
                "ATTNSERVE_API_KEYS is set but holds no key: give comma-separated keys, "
                "or unset it to serve without API keys"
            )
        digests += [key_digest(key) for key in keys]
    if settings.api_keys_file is not None:
        digests += read_digests(settings.api_keys_file)
    return digests


def read_digests(path: Path) -> list[str]:
    """Lines of sha256 hex digests; blank lines and `#` comments are skipped."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise StartupError(f"ATTNSERVE_API_KEYS_FILE {path}: cannot read it: {exc}") from exc
    digests = []
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if not _DIGEST.fullmatch(entry):
            raise StartupError(
                f"ATTNSERVE_API_KEYS_FILE {path}, line {number}: expected a sha256 hex digest "
                "(64 hex characters), e.g. from `printf %s KEY | sha256sum`"
            )
        digests.append(entry)
    if not digests:
        raise StartupError(f"ATTNSERVE_API_KEYS_FILE {path} lists no key digests")
    return digests


class ApiKeys:
    """The configured keys: every request but to `OPEN_PATHS` must carry one of them,
    `Authorization: Bearer <key>` (401 without one, 403 with a wrong one)."""

    def __init__(self, digests: list[str]) -> None:
        self.digests = [bytes.fromhex(digest) for digest in digests]

    def refusal(self, scope: Scope) -> ServiceError | None:
        if scope["path"] in OPEN_PATHS:
            return None
        header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        return self.key_refusal(header)

    def key_refusal(self, authorization: bytes) -> ServiceError | None:
        """Why an `Authorization` value (`Bearer <key>`) is refused, or None for a valid key
        (for gRPC too, whose calls carry it as `authorization` metadata)."""
        scheme, _, key = authorization.partition(b" ")
        key = key.strip()
        if scheme.lower() != b"bearer" or not key:
            return MissingApiKey()
        presented = hashlib.sha256(key).digest()
        # Every digest is compared, so the time taken does not depend on which one matched.
        matched = False
        for digest in self.digests:
            matched |= hmac.compare_digest(presented, digest)
        return None if matched else InvalidApiKey()


# Sent with a 401 or 403: how to authenticate.
CHALLENGE = {"WWW-Authenticate": "Bearer"}
