"""Redaction: secrets never reach the journal, a log or the screen.

Every event, state record and run summary passes through the journal's
:class:`Redactor` before it is written (:meth:`executor.journal.Journal.append`),
and the live views only ever see what was written. Controllers still receive
the real values: redaction applies to copies.

What counts as secret:

* values under a key that is a declared secret (``secrets:`` on a type in the
  catalog: params and outputs) or whose name looks like one (:data:`NAMES`:
  password, token, api_key, authorization, cookie ...), anywhere in a tree,
  and the value of a name/value pair so named (``{"name": "password",
  "value": ...}``, as SO's userParams are);
  they become a salted fingerprint (:mod:`domain.secrets`), so a changed value
  is still noticed, and the value is masked in text from then on;
* known secret values anywhere in text: those of environment variables whose
  name looks secret, those a controller reads from the environment or sends
  as credentials (``Redactor.add_values``), at least :data:`MIN_VALUE`
  characters long, also percent-quoted or JSON-escaped (as Python, PHP and Go
  escape); and in text, a value given under a declared secret's name;
* in text: private keys in PEM and JSON Web Tokens, whatever holds them;
  the values of URL query strings (in values, as params and outputs, only
  under a secret-looking key: a value holding a secret is fingerprinted
  whole, ``Redactor.tree``), the password of ``user:pass@``,
  ``name=value`` and ``name: value`` for secret-looking names (headers such as
  ``Authorization: Bearer ...``), and the argument after a secret-looking
  command-line flag (``--password X``).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from domain.formats import ObservedResource
from domain.secrets import MASK, fingerprint, is_fingerprint, scrub, secret_name

T = TypeVar("T")

MIN_VALUE = 4  # shorter known values are not searched for in free text (too many false hits)



def redact_argv(argv: Iterable[str]) -> tuple[list[str], list[str]]:
    """Command-line arguments for messages, with the value of each secret-looking flag
    masked (``--password X``, ``--token=X``); and the values masked."""
    shown: list[str] = []
    found: list[str] = []
    hide = False
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if hide:
            shown.append(MASK)
            found.append(arg)
            hide = False
        elif arg.startswith("-") and secret_name(flag):
            if sep:
                shown.append(f"{flag}={MASK}")
                found.append(value)
            else:
                shown.append(arg)
                hide = True
        else:
            shown.append(scrub(arg))
    return shown, found


#: More known values than this, and a text is searched only for those whose first characters it holds:
#: each of thousands of secrets a request carried was looked for in every text (and sorted again as
#: each was learnt: 90 s for a tree of 16,000 of them, a review's).
_LOOKED_UP = 32


def _LONGEST_FIRST(value: str) -> tuple[int, str]:   # noqa: N802 (a sort key, named as a constant)
    return -len(value), value




#: The keys of a name/value pair's name and value, in lower case (an SO sweep found the SDNC and param forms
#: echoed in clear).
_PAIR_NAMES = frozenset({"name", "key", "attribute_name", "paramname", "param_name"})
_PAIR_VALUES = frozenset({"value", "attribute_value", "paramvalue", "param_value"})


#: The keys of an event's data that hold values sent or answered (an intent's, a result's), or recorded (a
#: run's snapshot of what it starts from: a rollback rebuilt from the journal sends its params back).
_VALUES = frozenset({"inputs", "outputs", "snapshot"})


class Redactor:
    """Masks secrets in trees and text. Thread-safe; learns names and values as controllers start."""

    def __init__(self, names: Iterable[str] = (), values: Iterable[Any] = (),
                 environ: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._names: frozenset[str] = frozenset()
        self._named: re.Pattern[str] | None = None   # a declared name's value in text (_named_values)
        self._low_names: frozenset[str] = frozenset()
        self._known: set[str] = set()
        self._few: tuple[str, ...] | None = ()   # the known values, longest first, while _LOOKED_UP or fewer
        self._starts: dict[str, list[str]] = {}   # the known values by their first MIN_VALUE characters
        env = os.environ if environ is None else environ
        self.add_names(names)
        self.add_values([*values, *(v for k, v in env.items() if secret_name(k))])

    def add_names(self, names: Iterable[str]) -> None:
        """Declared secrets: values under these keys are fingerprinted wherever they occur."""
        with self._lock:
            self._names = self._names | frozenset(names)
            self._low_names = frozenset(n.lower() for n in self._names if isinstance(n, str) and n)
            self._named = _named_values(self._names)

    def add_values(self, values: Iterable[Any]) -> None:
        """Secret values to mask wherever they appear in text."""
        forms = set()
        for value in values:
            if value is None or isinstance(value, bool | dict | list):
                continue
            text = str(value)
            if len(text) >= MIN_VALUE:
                escaped = json.dumps(text)[1:-1]
                # (also as other JSON writers escape it: '/' as PHP's, '<', '>', '&' as Go's; each alone, or
                # both: one form of the two was no value PHP or Go writes, a review's)
                php = escaped.replace("/", "\\/")
                go = escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                forms |= {text, quote(text, safe=""), escaped, php, go, go.replace("/", "\\/")}
        with self._lock:
            new = {f for f in forms if len(f) >= MIN_VALUE} - self._known
            if not new:
                return
            self._known |= new
            for value in new:   # (one at a time: a tree learns its secrets one by one, and masks text between)
                bisect.insort(self._starts.setdefault(value[:MIN_VALUE], []), value, key=_LONGEST_FIRST)
            self._few = tuple(sorted(self._known, key=_LONGEST_FIRST)) if len(self._known) <= _LOOKED_UP else None

    def text(self, text: str, *, queries: bool = True) -> str:
        """``text`` with the known values and what looks secret masked (``queries``: see ``scrub``)."""
        values = self._few
        if values is None:   # many (a request's secrets): those whose first characters the text holds
            with self._lock:
                held = {text[i:i + MIN_VALUE] for i in range(len(text) - MIN_VALUE + 1)} & self._starts.keys()
                values = sorted((v for start in held for v in self._starts[start]), key=_LONGEST_FIRST)
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        named = self._named
        if named is not None:
            low = text.lower()   # (in any case: KUBECONFIG=...)
            if any(name in low for name in self._low_names):
                text = _mask_named(text, named)
        return scrub(text, queries=queries)

    def excerpt(self, text: str, most: int, *, end: bool = False) -> str:
        """At most ``most`` characters of ``text``, its start (or with ``end`` its end), masked
        whole before they are cut: a secret cut in two is not recognised (an HTTP answer that quoted
        a secret past its first 188 characters showed twelve of its sixteen: a sweep's), and a window
        around the cut missed a private key or a token that began before it (a review's). What
        is cut from is bounded by its reader (an answer: 1 MiB; stderr: its last 64 KiB)."""
        masked = self.text(text)
        return masked[-most:] if end else masked[:most]

    def tree(self, data: Any, *, compared: bool = True, values: bool = False) -> Any:
        """A copy of ``data`` with secret keys' values fingerprinted and every string masked.
        ``compared`` False: what nothing will compare (a copy kept to be shown, as SO's request records):
        secret values are masked whole, not fingerprinted (a salted SHA-256 of a weak password, shown to a
        reader, was guessed in a hundred tries: an SO sweep's). ``values``: the tree holds values to be
        sent again or compared (params, outputs, attributes), not text to show: a string that holds a
        secret (a URL's password, a key, a known value) is fingerprinted whole, as a declared secret is,
        and a URL's query is masked only under a key that looks secret. Masked in part, a value was
        recorded as no value it had: sent so by the next run (an output read by a param), or never the
        request's again (a param changed in every plan after, or no plan: a secrets sweep's)."""
        if isinstance(data, str):
            if values:
                return data if self.text(data, queries=False) == data else self._hide(data, compared)
            return self.text(data)
        if isinstance(data, Mapping):
            named = self._named_secrets(data)
            return {k: self._hide(v, compared) if self._secret_key(k) or k in named
                    else self.tree(v, compared=compared, values=values) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.tree(v, compared=compared, values=values) for v in data]
        return data

    def event(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """An event's data; a plan (JSON the planner made from the models, no params) is kept as it is; the
        params sent and the outputs answered are values (``tree``)."""
        return {k: v if k == "plan" else self._hide(v) if self._secret_key(k) else self.tree(v, values=k in _VALUES)
                for k, v in data.items()}

    def run(self, info: T) -> T:
        """A run's row (``RunInfo``) with its summary masked: read back, as its events are, to be shown."""
        return dataclasses.replace(info, summary=self.tree(info.summary))

    def record(self, record: ObservedResource) -> ObservedResource:
        """A state record with its secret attributes fingerprinted. Its labels are kept as they are:
        policies read them (`protected: true`, an anti-affinity group), and a label key such as
        ``cpu-pin`` looks secret; fingerprinted, they changed what the next plan did (docs/security.md:
        labels hold no secrets)."""
        attributes = self.tree(record.attributes, values=True)
        return record if attributes == record.attributes else record.model_copy(update={"attributes": attributes})

    def _secret_key(self, key: Any) -> bool:
        return key in self._names or secret_name(key)

    def _named_secrets(self, data: Mapping) -> tuple[str, ...]:
        """The keys of the value in a name/value pair whose name looks secret (SO's userParams
        ``{"name": "password", "value": ...}``, a container's env, a tag ``{"Key": ..., "Value": ...}``,
        SDNC's ``{"attribute_name": ..., "attribute_value": ...}``, ``paramName``/``paramValue``), in any
        spelling of those keys ("NAME", "VALUE"): every key that is one of _PAIR_VALUES in lower case."""
        values = tuple(k for k in data if type(k) is str and len(k) <= 15 and k.lower() in _PAIR_VALUES)
        if values and any(type(k) is str and len(k) <= 14 and k.lower() in _PAIR_NAMES and isinstance(v, str)
                          and self._secret_key(v) for k, v in data.items()):
            return values
        return ()

    def _hide(self, value: Any, compared: bool = True) -> str:
        """The fingerprint of a secret (MASK when it is not ``compared``); its value is masked in text from
        now on (an error that quotes it)."""
        self.add_values(_leaves(value))
        return fingerprint(value) if compared else MASK


def _named_values(names: frozenset[str]) -> re.Pattern[str] | None:
    """Where a text gives a value under a declared secret's name, whatever the name looks like: after
    ``"kubeconfig":``, ``admin_pw=``, ``admin_pw =>``, ``--admin_pw``, ``<admin_pw>`` (with attributes, a
    namespace), ``\\"kubeconfig\\":`` (JSON in a JSON string), in any case (``KUBECONFIG=``). An answer that
    quotes a value not seen before (a controller's unreadable output, its error) showed it whole,
    ``kubeconfig`` not being a name that looks secret (a secrets sweep's); where the value ends is
    :func:`_value_end`'s."""
    spelled = sorted((re.escape(n) for n in names if isinstance(n, str) and n), key=len, reverse=True)
    if not spelled:
        return None
    alt = "|".join(spelled)
    return re.compile(rf"(?i)<(?:[\w.-]++:)?+(?:{alt})(?:[ \t][^<>]*+)?>"
                      rf"|(?<![\w-])(?:--?(?:{alt})(?:=|[ \t]++)"
                      rf"|(?P<q>\\?[\"']?)(?:{alt})(?P=q)[ \t]*+(?:=>|[:=])[ \t]*+)")


class _Finds:
    """Where a needle is next from ``at``, for ``at`` that only grow, each part of the text looked through
    once: a line's end was looked for again at each name on it (a megabyte on one line: seconds, a
    review's)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._last: dict[str, tuple[int, int]] = {}   # needle -> (looked from, found at or -1)
        self._ends: dict[str, list[int]] | None = None   # an end tag's name in lower case -> where each is

    def find(self, needle: str, at: int) -> int:
        """Where ``needle`` is next from ``at``, -1 if nowhere."""
        looked = self._last.get(needle)
        if looked is not None and at >= looked[0] and (looked[1] < 0 or looked[1] >= at):
            return looked[1]
        found = self.text.find(needle, at)
        self._last[needle] = (at, found)
        return found

    def end_tag(self, name: str, at: int) -> int:
        """Where the end tag of element ``name`` (in any case) is next from ``at``, -1 if nowhere: every end
        tag found in one pass (one pass per name was quadratic on tags of as many namespaces, a review's; and
        not in the text lowered: 'İ' lowered is two characters, and the places were off by one each)."""
        if self._ends is None:
            self._ends = {}
            for match in _END_TAG.finditer(self.text):
                self._ends.setdefault(match.group(1).lower(), []).append(match.start())
        places = self._ends.get(name.lower(), [])
        i = bisect.bisect_left(places, at)
        return places[i] if i < len(places) else -1


_END_TAG = re.compile(r"</([^\s<>/]++)")


def _mask_named(text: str, pattern: re.Pattern[str]) -> str:
    """``text`` with the value after each of ``pattern``'s matches masked, to where it ends. Linear:
    what a value's end is looked for through is masked (a value not closed, to the end of the text), or
    looked through once (:class:`_Finds`)."""
    out: list[str] = []
    last = 0
    finds = _Finds(text)
    for match in pattern.finditer(text):
        if match.start() < last:
            continue   # (inside a value masked already)
        begin = match.end()
        stop = _value_end(text, begin, match, finds)
        if stop <= begin:
            continue
        mark = text[begin] if text[begin] in "\"'" else ""
        out += [text[last:begin], f"{mark}{MASK}{mark}" if mark and text[stop - 1] == mark else MASK]
        last = stop
    return "".join(out) + text[last:] if out else text


def _value_end(text: str, at: int, match: re.Match[str], finds: _Finds) -> int:
    """Where the value that starts at ``at`` (after ``match``: its name and what parts them) ends, ``at``
    where there is none: a quoted string at its closing quote (JSON's and Python's escapes, YAML's '',
    TOML's and Python's triple quotes; in a JSON string, the inner one's); an object, a list or a tuple at
    the bracket that closes it; a YAML block (``|``, ``>``, a comment, or the name's line ending there) at
    the first line indented no more than the name's (but a list's items); an XML element's text at its end
    tag (none: to the next tag or the line's end; prose, ``open <kubeconfig>: no such file``, is none);
    after ':' the rest of the line and the lines folded after it, or in a flow mapping (the name after '{'
    or ',') up to a ',', '}' or ']'; after a spaced '=' (INI's) the rest of the line; after an '=' against
    the name up to a ';', '&', a quote or a closing bracket; after a flag the word. Not closed: the end of
    the text."""
    n = len(text)
    given = match.group(0)
    char = text[at] if at < n else "\n"
    if given.startswith("<"):   # (to its own end tag, in any case: another's further on is not its end)
        found = finds.end_tag(given[1:].rstrip(">").split()[0], at)
        if found >= 0:
            return found
        if char.isspace() or char in ":;,.!?)":   # (a name in brackets in prose)
            return at
        line_end = finds.find("\n", at)
        tag = finds.find("<", at)
        return min(n if line_end < 0 else line_end, n if tag < 0 else tag)
    if text.startswith('\\"', at):   # (JSON inside a JSON string: its escapes undone, the inner string's end)
        i, inner_escape = at + 2, False
        while i < n:
            c = text[i]
            if c == "\\":
                c = text[i + 1] if i + 1 < n else ""
                i += 2
            else:
                i += 1
            if inner_escape:
                inner_escape = False
            elif c == "\\":
                inner_escape = True
            elif c == '"':
                return i
        return n
    if text.startswith(('"""', "'''"), at):
        found = text.find(text[at:at + 3], at + 3)
        return n if found < 0 else found + 3
    if char in "\"'":
        i = at + 1
        while i < n:
            if text[i] == "\\":   # (JSON's escapes, Python's \')
                i += 2
                continue
            if text[i] == char:
                if char == "'" and text.startswith("''", i):   # (YAML's '')
                    i += 2
                    continue
                return i + 1
            i += 1
        return n
    if char in "{[(":
        depth, i, quote = 0, at, ""
        while i < n:
            c = text[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'":
                quote = c
            elif c in "{[(":
                depth += 1
            elif c in "}])":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return n
    line_end = finds.find("\n", at)
    line_end = n if line_end < 0 else line_end
    if ":" in given:
        before = match.start() - 1
        while before >= 0 and text[before] in " \t":
            before -= 1
        if before >= 0 and text[before] in "{,":   # (in a flow mapping: to the next entry)
            stop = at
            while stop < line_end and text[stop] not in ",}]":
                stop += 1
            return stop
        # the rest of the line (commas too: admin_pw: p,ss), and the lines after it indented more than the
        # name's (a YAML block, with a tag or an anchor; a plain scalar or a header folded over lines), or
        # empty; when the line ends there, a list's items at the name's indent too
        bare = _only(text, at, line_end, " \t\r") or char == "#" \
            or char in "|>" and _only(text, at + 1, line_end, " \t\r+-0123456789")
        head = text.rfind("\n", 0, match.start()) + 1
        indent = _only_end(text, head, match.start(), " \t") - head
        i = line_end
        while i < n:
            nxt = text.find("\n", i + 1)
            nxt = n if nxt < 0 else nxt
            inside = _only_end(text, i + 1, nxt, " \t")
            if inside < nxt and text[inside] != "\r" and (inside - i - 1 < indent or inside - i - 1 == indent and not (
                    bare and text[inside] == "-")):
                break
            i = nxt
        return i - 1 if i > at and text[i - 1] == "\r" else i
    if "=" in given and "=>" not in given and not given.startswith("-"):
        # a setting (admin_pw = two words, INI's) to the line's end; one against its name (.env, a connection
        # string: Admin_pw=pass word;Db=y) to a ';', '&' or the line's end (a word showed the rest, a review's)
        if given.rstrip(" \t")[:-1].endswith((" ", "\t")):   # (not to a ';': a password may hold one, a review's)
            return line_end - 1 if line_end > at and text[line_end - 1] == "\r" else line_end
        stop = at
        while stop < line_end and text[stop] not in "\"';&}]\r":
            stop += 1
        return stop
    return _word_end(text, at, "\"',;&}]")


def _word_end(text: str, at: int, ends: str) -> int:
    stop, n = at, len(text)
    while stop < n and not text[stop].isspace() and text[stop] not in ends:
        stop += 1
    return stop


def _only_end(text: str, begin: int, end: int, chars: str) -> int:
    """Where the first character not in ``chars`` is in ``text[begin:end]`` (``end`` if none)."""
    i = begin
    while i < end and text[i] in chars:
        i += 1
    return i


def _only(text: str, begin: int, end: int, chars: str) -> bool:
    """Whether ``text[begin:end]`` holds only ``chars``, looked through no further than its first other."""
    return _only_end(text, begin, end, chars) >= end


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [] if is_fingerprint(value) else [value]
