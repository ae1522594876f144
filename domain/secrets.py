"""Fingerprints of secret values: what the journal keeps instead of a secret.

A secret param or output (``secrets:`` on a type in the catalog) is recorded
as ``<secret SALT:HASH>``: a salted SHA-256, enough to tell whether a requested
value changed since it was applied, never the value itself. The planner
compares requested params with recorded ones through :func:`same_value`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

_FINGERPRINT = re.compile(r"<secret ([0-9a-f]{16}):([0-9a-f]{32})>")


def _digest(salt: str, value: Any) -> str:
    data = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(salt.encode() + b"\0" + data).hexdigest()[:32]


def fingerprint(value: Any) -> str:
    """A new salted fingerprint of ``value`` (an existing fingerprint is kept as it is)."""
    if is_fingerprint(value):
        return value
    salt = secrets.token_hex(8)
    return f"<secret {salt}:{_digest(salt, value)}>"


def is_fingerprint(value: Any) -> bool:
    return isinstance(value, str) and _FINGERPRINT.fullmatch(value) is not None


#: What a secret's value is replaced with inside a text (executor.redact masks it wherever it is).
MASK = "***"


def redacted(value: Any, *, fingerprints: bool = True) -> bool:
    """Whether a tree holds a fingerprint or a masked text: what redaction changed, which no longer
    holds the value (it cannot be sent in its place). ``fingerprints`` False: a masked text only (which
    cannot be compared with a value either; a fingerprint can, :func:`same_value`)."""
    if isinstance(value, dict):
        return any(redacted(v, fingerprints=fingerprints) for v in value.values())
    if isinstance(value, list):
        return any(redacted(v, fingerprints=fingerprints) for v in value)
    return isinstance(value, str) and (MASK in value or (fingerprints and is_fingerprint(value)))


def same_value(recorded: Any, requested: Any) -> bool:
    """Whether a recorded attribute (perhaps a fingerprint, or holding some inside: a secret under
    a mapping's key, or in a list's name/value pair) holds the requested value."""
    if recorded == requested:
        return True
    if isinstance(recorded, dict) and isinstance(requested, dict):
        return recorded.keys() == requested.keys() and all(same_value(v, requested[k]) for k, v in recorded.items())
    if isinstance(recorded, list) and isinstance(requested, list | tuple):
        return len(recorded) == len(requested) and all(map(same_value, recorded, requested))
    match = _FINGERPRINT.fullmatch(recorded) if isinstance(recorded, str) else None
    return match is not None and hmac.compare_digest(match.group(2), _digest(match.group(1), requested))
