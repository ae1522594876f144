"""Fingerprints of secret values: what the journal keeps instead of a secret.

A secret param or output (``secrets:`` on a type in the catalog) is recorded
as ``<secret SALT:HASH>``: a salted SHA-256, enough to tell whether a requested
value changed since it was applied, never the value itself. The planner
compares requested params with recorded ones through :func:`same_value`.
"""

from __future__ import annotations

import functools
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
    if match is None and isinstance(recorded, str) and MASK in recorded and isinstance(requested, str):
        # recorded masked in part, by an ordo before values were kept whole or fingerprinted: the same if the
        # request masks to it (else a type with no update had no plan again, a review's)
        return scrub(requested) == recorded
    return match is not None and hmac.compare_digest(match.group(2), _digest(match.group(1), requested))


#: Parts of names (keys, headers, flags, environment variables) whose values are secret.
NAMES = (r"passw(?:or)?d|passphrase|pwd|secret|token|api[-_]?key|apikey|authori[sz]ation|cookie|credential|community"
         r"|private[-_]?key|access[-_]?key|auth[-_]?key|shared[-_]?key|encryption[-_]?key|psk"
         r"|(?:(?:tls|ssl|client|signing)[-_]?key|jwt|(?<![a-z0-9])t?otp|(?:t?otp|mfa)[-_]?seed)(?![-_.]?[a-z])"
         r"|signature|(?<=[_.-])pass(?![a-z])|(?-i:(?<=[a-z0-9])Pass)(?![a-z])"
         r"|(?<![a-z0-9])pin(?![a-z])|(?-i:(?<=[a-z0-9])(?:Pin|PIN|Otp|OTP))(?![a-z])|passcode")
#   (admin_pass, DB_PASS, vnf-pass, adminPass: not a word's "pass", as in passport or bypass; a name that is
#   "pin" as a word of it (sim_pin, adminPin, userPIN, not spinner or pinned), a passcode, SNMP's community
#   string; a TLS client's or a signing key, a JWT, a one-time password or its seed as the name's last word
#   (not signing_key_id, tls_key_path, jwt_issuer, otp_enabled). Not "pass", "auth" nor "bearer" alone: a check that
#   passes, a method's name, a radio bearer; nor any "key" (a label_key, a sort key, an ssh_key, often a public
#   key that other resources' params read: a private one is masked by its value, _PEM))
SECRET_NAME = re.compile(NAMES, re.IGNORECASE)


#: Names that match NAMES but hold none: the shell's working folders (PWD, OLDPWD).
NOT_SECRET = frozenset({"PWD", "OLDPWD"})


def secret_name(name: Any) -> bool:
    """Whether a key, header, flag or variable name looks like it holds a secret."""
    if not isinstance(name, str):
        return False
    return _secret_str(name) if len(name) <= 100 else _secret_str.__wrapped__(name)


@functools.lru_cache(maxsize=4096)
def _secret_str(name: str) -> bool:
    """(An event's keys are a few names over and over: each is searched once; a long one, not kept.)"""
    return name not in NOT_SECRET and SECRET_NAME.search(name) is not None


# Each pattern starts only where a run of the characters its name (a scheme, a key) is made of starts,
# not at every word boundary in it, a query's key holds no '?', and a pair's or a flag's name is looked
# for ahead (the run is then taken whole, once): a match that fails scans each character a bounded
# number of times. Started anywhere in a run, or backtracking from each secret-looking name in it,
# each try scanned the rest of the run: quadratic, 20 s for a text of 16 KB (an HTTP sweep's; and
# "token" 3,200 times, 0.8 s, a review's). Pairs and flags are masked as before;
# a URL's password also where its scheme starts with a digit or follows '_' ("x_http://u:pw@h"), and
# a query's value also after an empty key ("?=v", "?a?=v").
_USERINFO = re.compile(r"((?<![a-z0-9+.-])[a-z0-9+.-]+://[^/\s:@]*):[^@\s/]*@", re.IGNORECASE)
_QUERY = re.compile(r"(?<=[?&])([^=&#?\s\"'<>]*)=([^&#\s\"'<>]+)")
_PAIR = re.compile(rf"(?i)(?<![\w.-])(?=[\w.-]*(?:{NAMES}))([\w.-]+)([\"']?\s*[:=]\s*[\"']?)"
                   r"(?!<secret )((?:(?:bearer|basic|token|digest)\s+)?[^\s\"',;&}\]]+)")   # (a fingerprint is shown)
#: A private key in PEM (an SSH or TLS key pasted into a param), to its END line or the end of the text.
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
#: A text that starts inside a private key: lines of base64 (indented, quoted, or ended by an escaped line
#: break), then the key's END line. A text that only names such a line ("unexpected trailer -----END RSA
#: PRIVATE KEY-----", "the file ends with ...") is left as it is (reviews'). Each run of one class of
#: characters is taken whole (possessive: the classes do not overlap, so nothing is given back): the
#: spaces and quotes before and after a line's base64 were one run that either could take, and a text
#: of spaces and quotes with no line break tried every split of it at each line (quadratic, more with
#: each line: a controller's answer of 1 MB held `ordo apply` past its timeout and Ctrl-C, a sweep's).
_PEM_HEADLESS = re.compile(r"(?:[ \t\"']*+[A-Za-z0-9+/=]*+[ \t\"',]*+(?:\r?\n|\\r\\n|\\n))++[ \t\"']*+"
                           r"-----END ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
#: A JSON Web Token: three base64url parts, the first two JSON objects ("eyJ" is '{"').
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_FLAG = re.compile(rf"(?i)((?:^|\s)--?(?=[\w-]*(?:{NAMES}))[\w-]*)(\s+)(?!-)([^\s'\")\]}}]+)")


#: Every name NAMES matches holds one of these, in ASCII lower case.
_NAME_PARTS = ("pass", "pwd", "secret", "token", "key", "auth", "cookie", "credential", "psk", "signature",
               "community", "pin", "jwt", "otp", "seed")


def _may_name(text: str) -> bool:
    """Whether ``text`` may hold a name NAMES matches: a look at its letters in a tenth of the
    search's time. Text that is not ASCII may (matching regardless of case goes beyond ASCII there:
    'ſ' is an 's', 'ı' an 'i', the Kelvin sign a 'k')."""
    if not text.isascii():
        return True
    low = text.lower()
    for part in _NAME_PARTS:   # noqa: SIM110 (any() over a generator takes twice as long)
        if part in low:
            return True
    return False


def scrub_sentence(text: str) -> str:
    """A sentence of ordo's own that may quote its input: ``scrub`` without pairs and flags on the
    whole (a name that looks secret there is a resource's or a file's, followed by what is wrong with
    it), and whole on each part in single quotes (what it quotes: a key "api_key: x" or "x --token y"
    is masked as a value would be; with pairs=False alone it was shown, a review's)."""
    return _QUOTED.sub(lambda m: f"'{scrub(m.group(1))}'", scrub(text, pairs=False))


_QUOTED = re.compile(r"'([^'\n]{1,4096})'")
#: Query keys that hold secrets though NAMES does not name them (a word alone, where a name that only
#: holds it is no secret): a shared access signature's, an API key's (?key=, as Google's), an auth
#: token's (?auth=, as Firebase's), a password's.
_SECRET_QUERY_KEYS = frozenset({"sig", "key", "auth", "pw", "pass"})


def _secret_query(match: re.Match[str]) -> str:
    """A query's value masked where its key looks secret (``scrub`` without ``queries``)."""
    key = match.group(1)
    return f"{key}={MASK}" if secret_name(key) or key.lower() in _SECRET_QUERY_KEYS else match.group(0)


def scrub(text: str, *, pairs: bool = True, queries: bool = True) -> str:
    """``text`` with the secret-looking parts masked (no known values: see Redactor.text); without
    ``pairs``, not a value after a secret-looking name ("token: x", "--password x"): for ordo's own
    messages, where such a name is a resource's or a file's followed by what is wrong with it; without
    ``queries``, a URL query's value only where its key looks secret (a value kept to be sent again or
    compared: ``?region=r1`` masked in a param's URL, recorded so, never matched the request again).
    Each pattern is tried only where it could match: a user's password needs ``://`` and
    ``@``, a query string ``=``, a pair or a flag a secret-looking name (``ordo show`` of a run
    of 60,000 events tried all four on 230,000 strings: 5 s)."""
    if "-----BEGIN " in text:
        text = _PEM.sub(rf"-----BEGIN \1-----{MASK}-----END \1-----", text)
    if "-----END " in text and (head := _PEM_HEADLESS.match(text)) is not None:
        text = f"{MASK}-----END {head[1]}-----{text[head.end():]}"   # (its start cut off: stderr's last 64 KiB)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    if "@" in text and "://" in text:
        text = _USERINFO.sub(rf"\1:{MASK}@", text)
    if "=" in text:
        text = _QUERY.sub(rf"\1={MASK}", text) if queries else _QUERY.sub(_secret_query, text)
    if not pairs or not _may_name(text) or SECRET_NAME.search(text) is None:   # (each match of _PAIR, _FLAG holds one)
        return text
    text = _PAIR.sub(rf"\1\2{MASK}", text)
    return _FLAG.sub(rf"\1\2{MASK}", text)
