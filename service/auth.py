"""Who may call the service: bearer tokens (and HTTP basic, which SO's clients use).

Credentials come from a file (``--tokens FILE``) or the environment (``ORDO_TOKENS``),
in either of two forms::

    # one a line: TOKEN ROLE NAME   (ORDO_TOKENS: entries separated by newlines or commas;
    # a NAME shorter than any token: an entry in another order is refused, not its token taken for a name)
    3q0c...f9 operator portal

    tokens:                         # or YAML
      - {token: 3q0c...f9, role: operator, name: portal}

Two roles: ``reader`` may GET, ``operator`` may do everything. Over HTTP basic the user
is the entry's name and the password its token. A token is never logged, shown or put in
an error message: a bad entry is named by its line (or index) and name.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from domain.errors import OrdoError

ROLES = ("reader", "operator")
MIN_TOKEN = 16
MAX_ENTRIES = 10_000


class CredentialsError(OrdoError):
    """The credentials file or variable is malformed (names where, never the token)."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    @property
    def operator(self) -> bool:
        return self.role == "operator"


#: Who calls when no credentials are configured (the server then listens on loopback only).
LOCAL = Principal("local (no credentials configured)", "operator")


def _entry(token: object, role: object, name: object, where: str) -> tuple[str, Principal]:
    if not isinstance(name, str) or not name or any(c.isspace() or c == ":" for c in name):
        raise CredentialsError(f"{where}: expected a name without spaces or ':'")
    # (not named by its name here: an entry written in another order has its token where the name goes)
    if role not in ROLES:
        raise CredentialsError(f"{where}: role must be one of {', '.join(ROLES)} (expected TOKEN ROLE NAME)")
    if not isinstance(token, str) or len(token) < MIN_TOKEN or any(c.isspace() or not c.isprintable()
                                                                    for c in token):
        raise CredentialsError(f"{where}: the token must be at least {MIN_TOKEN} printable characters "
                               "without spaces (expected TOKEN ROLE NAME)")
    return token, Principal(name, role)


def _parse_lines(text: str, source: str, separators: str = "\n") -> list[tuple[str, Principal]]:
    for sep in separators[1:]:
        text = text.replace(sep, "\n")
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise CredentialsError(f"{source}, entry {number}: expected TOKEN ROLE NAME "
                                   f"({len(parts)} field{'s' if len(parts) != 1 else ''} found)")
        token, role, name = parts
        if len(name) >= MIN_TOKEN:
            # (a name as long as a token may be one: an entry written NAME ROLE TOKEN was taken with its
            # token as the name, shown on the page and written in the journal)
            # (said how long, never what: it may be the token; it stated the rule only, an operator's first day)
            raise CredentialsError(f"{source}, entry {number}: its last field, the name, has {len(name)} characters: "
                                   f"a name on a line has fewer than {MIN_TOKEN}, so that a token is never taken "
                                   "for one (is the line written NAME ROLE TOKEN? expected TOKEN ROLE NAME; a longer "
                                   "name goes in the YAML form, tokens: [{token, role, name}])")
        entries.append(_entry(token, role, name, f"{source}, entry {number}"))
    return entries


def _parse_yaml(path: Path) -> list[tuple[str, Principal]]:
    from domain.errors import DiagnosticsError
    from domain.yamlsrc import load_yaml

    try:
        data = load_yaml(path).data
    except DiagnosticsError as exc:
        raise CredentialsError(f"{path}: not valid YAML (line {exc.diagnostics[0].line})") from None
    items = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise CredentialsError(f"{path}: expected 'tokens:' with a list of {{token, role, name}}")
    entries = []
    for index, item in enumerate(items):
        where = f"{path}, tokens[{index}]"
        if not isinstance(item, dict) or set(item) - {"token", "role", "name"}:
            raise CredentialsError(f"{where}: expected a mapping with token, role and name only")
        entries.append(_entry(item.get("token"), item.get("role"), item.get("name"), where))
    return entries


@dataclass(frozen=True)
class Credentials:
    """Tokens and who they are. Empty: no credentials configured."""

    entries: tuple[tuple[str, Principal], ...] = ()

    @classmethod
    def load(cls, path: Path | None = None, env: str | None = None) -> Credentials:
        entries: list[tuple[str, Principal]] = []
        if path is not None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CredentialsError(f"{path}: cannot read the tokens file ({type(exc).__name__})") from None
            first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")),
                         "")
            entries += _parse_yaml(path) if first.startswith("tokens:") else _parse_lines(text, str(path))
        if env:
            entries += _parse_lines(env, "ORDO_TOKENS", "\n,")
        if len(entries) > MAX_ENTRIES:
            raise CredentialsError(f"more than {MAX_ENTRIES} credentials")
        names: dict[str, str] = {}
        tokens: set[str] = set()
        for token, who in entries:
            if token in tokens:
                raise CredentialsError(f"a token is given twice (the second time for {who.name})")
            if names.setdefault(who.name, who.role) != who.role:
                raise CredentialsError(f"{who.name} is given two roles")
            tokens.add(token)
        return cls(tuple(entries))

    @property
    def configured(self) -> bool:
        return bool(self.entries)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal an Authorization header (Bearer TOKEN, or Basic NAME:TOKEN) stands for."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        name = None
        if scheme.lower() == "basic":
            try:
                name, _, value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
        elif scheme.lower() != "bearer":
            return None
        found = None
        for token, who in self.entries:  # every entry compared, in constant time each
            if hmac.compare_digest(token.encode(), value.encode()) and (name is None or name == who.name):
                found = who
        return found


def loopback(host: str) -> bool:
    """Whether a listen address is on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
