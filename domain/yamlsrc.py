"""YAML loading that remembers where every value came from.

Error messages name the file, the line and the path inside the document
(``services.vfw.vnfs[1].type``), so we keep a map from paths to positions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from domain.errors import Diagnostic, DiagnosticsError
from domain.secrets import scrub, scrub_sentence

PathKey = tuple[str | int, ...]


#: A key longer than this is shortened where a message names it (it may come from a hostile file).
PATH_PART_MAX = 80


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + path_part(str(part))
    return out


def path_part(text: str) -> str:
    """A key as ``format_path`` writes it: one longer than PATH_PART_MAX cut short."""
    return text if len(text) <= PATH_PART_MAX else f"{text[:60]}...({len(text):,} characters)"


#: A key YAML surely reads as text (letters, digits, `_-` and no more, starting with a letter other
#: than those of its booleans and null): not parsed again to find how a non-text key was written.
_YAML_TEXT = re.compile(r"(?![yYnNoOtTfF~])[A-Za-z][A-Za-z0-9_-]*")


@dataclass
class Source:
    """A loaded YAML document with the position of each value."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]]
    # where each mapping key itself stands (positions holds where its value does)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    sha256: str = ""  # of the bytes read, for the plan's digest
    prefix: PathKey = ()  # where this document sits in its file (a model written inline), for messages

    @classmethod
    def unwalked(cls, file: str, data: Any, node: yaml.Node | None, sha256: str, text: str | None = None) -> Source:
        """A document whose positions are recorded from its composed ``node`` when first asked for:
        most loads never report a problem, and a large file's positions are most of its loading.
        With ``text`` instead of a node (data from the parse cache), the text is composed then."""
        src = cls(file=file, data=data, positions={}, sha256=sha256)
        del src.positions, src.key_positions
        # one attribute, read once per lookup: safe while another thread walks
        src._unwalked = (node, {}) if text is None else TextPositions(text)
        return src

    def deferred(self, path: PathKey) -> tuple:
        """Where ``path`` stands as (line, column); for a source from the parse cache, not parsed
        yet, (its ``TextPositions``, path) instead, to be resolved by ``resolve`` when a message
        needs it (domain.model keeps a resource's and a reference's so, not the whole source)."""
        unwalked = self.__dict__.get("_unwalked")
        if isinstance(unwalked, TextPositions) and not unwalked.parsed:
            return unwalked, tuple(path)
        return self.where(path)

    def _tree(self) -> tuple | None:
        """``_unwalked``, the text composed first if the data came from the parse cache."""
        unwalked = self.__dict__.get("_unwalked")
        return unwalked.tree() if isinstance(unwalked, TextPositions) else unwalked

    def __getattr__(self, name: str) -> Any:
        # only for positions and key_positions of a source made by unwalked(), on first use
        if name not in ("positions", "key_positions") or "_unwalked" not in self.__dict__:
            raise AttributeError(name)
        unwalked = self._tree()
        walker = _Walker(self.file, aliases=False)
        if unwalked[0] is not None:
            walker.walk(unwalked[0], ())
        self.positions, self.key_positions = walker.positions, walker.key_positions
        self.__dict__.pop("_unwalked", None)
        return getattr(self, name)

    def key_written(self, parent: PathKey, key: Any) -> str | None:
        """How a key of the mapping at ``parent`` that YAML read as something else than text (``on``:
        true, ``2024-01-01``: a date) is written in the file (positions keep keys so); None when not
        found. The keys that YAML reads so are found once per source, by their mapping (asked of every
        key position for each key, a request of 10,000 `on:` took 27 s to check)."""
        if isinstance(key, str):
            return None
        for text, read in self._keys_read.get(tuple(parent), ()):
            if type(read) is type(key) and read == key:
                return text
        return None

    @functools.cached_property
    def _keys_read(self) -> dict[PathKey, list[tuple[str, Any]]]:
        """The keys YAML read as something else than text, as written and as read, by their mapping."""
        written: dict[PathKey, list[tuple[str, Any]]] = {}
        for path in self.key_positions:
            text = path[-1] if path else None
            if isinstance(text, str) and not _YAML_TEXT.fullmatch(text):
                with contextlib.suppress(yaml.YAMLError):
                    read = yaml.safe_load(text)
                    if not isinstance(read, str):
                        written.setdefault(path[:-1], []).append((text, read))
        return written

    def where_key(self, path: PathKey) -> tuple[int, int]:
        unwalked = self._tree()
        if unwalked is not None:
            node, key = _find(unwalked, tuple(path))
            return _mark(key or node)
        return self.key_positions.get(tuple(path)) or self.where(path)

    def where(self, path: PathKey) -> tuple[int, int]:
        """Line and column of the value at path, or of its nearest parent."""
        path = tuple(path)
        unwalked = self._tree()
        if unwalked is not None:
            return _mark(_find(unwalked, path)[0])
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def sub(self, path: PathKey) -> Source:
        """The value at path as a document of its own, positions kept (a model
        written inline in another file, e.g. a policy test case)."""
        path = tuple(path)
        value = self.data
        for part in path:
            value = value[part]
        cut = len(path)
        positions = {k[cut:]: v for k, v in self.positions.items() if k[:cut] == path}
        keys = {k[cut:]: v for k, v in self.key_positions.items() if k[:cut] == path and len(k) > cut}
        digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
        return Source(file=self.file, data=value, positions=positions, key_positions=keys, sha256=digest,
                      prefix=self.prefix + path)

    def diagnostic(self, path: PathKey, summary: str, detail: str = "", code: str = "") -> Diagnostic:
        """A problem at ``path``; what looks secret in its path and summary, which may quote the input (a
        field named by a URL with its password, a reference to one), masked (a review's); in the summary,
        not a word of the sentence after a secret-looking name, a resource's or a file's ("'mgmt-token-net':
        it is placed on nothing" lost its "it": a review's), but all of what it quotes."""
        line, column = self.where(path)
        return Diagnostic(
            file=self.file, line=line, column=column, path=scrub(format_path(self.prefix + tuple(path))),
            summary=scrub_sentence(summary), detail=detail, code=code,
        )


class TextPositions:
    """Where the values of a document from the parse cache stand, found by composing its text when
    first asked for (the same bytes composed before, so without error). Shared by the resources
    and references of one file (``Source.deferred``), and pickled as the text alone."""

    __slots__ = ("text", "_tree")

    def __init__(self, text: str):
        self.text, self._tree = text, None

    @property
    def parsed(self) -> bool:
        return self._tree is not None

    def tree(self) -> tuple:
        """(root node, key index), as ``Source.unwalked`` keeps them."""
        tree = self._tree
        if tree is None:
            tree = self._tree = (_compose_text(self.text), {})   # one assignment: safe between threads
        return tree

    def where(self, path: PathKey) -> tuple[int, int]:
        return _mark(_find(self.tree(), tuple(path))[0])

    def __reduce__(self) -> tuple:
        return TextPositions, (self.text,)


def resolve(at: tuple) -> tuple[int, int]:
    """(line, column) of what ``Source.deferred`` gave."""
    return at[0].where(at[1]) if isinstance(at[0], TextPositions) else at


def name_problem(*names: str) -> Diagnostic | None:
    """A file's names (as given, as messages show it) that are no UTF-8 text (a byte the system's
    encoding cannot read, kept as a lone surrogate): the plan names its files, as text; None when
    they are text."""
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            shown = names[-1].encode("utf-8", "backslashreplace").decode()   # (a lone surrogate: \\udcff)
            with contextlib.suppress(UnicodeEncodeError):   # (a byte the file system kept: \\xff)
                shown = names[-1].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            return Diagnostic(file=shown, summary="the file's name is not UTF-8 text",
                              detail="rename it: a plan and every message name their files as text")
    return None


def load_yaml(path: Path, display: str | None = None, *, cache: Path | None = None) -> Source:
    """Read one YAML file. Raises DiagnosticsError naming file and line.
    ``cache``: a folder for the parse cache (``ParseCache``), used for files of
    ``CACHE_MIN_BYTES`` or more."""
    shown = display or str(path)
    if (problem := name_problem(str(path), shown)) is not None:
        raise DiagnosticsError([problem])
    try:
        with path.open("rb") as handle:
            raw = read_at_most(handle, MAX_YAML_BYTES)
        if raw is None:
            raise DiagnosticsError([Diagnostic(
                file=shown, summary=f"file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MB: not read",
                detail="a model or request file of 100,000 resources is about 10 MB")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise DiagnosticsError([Diagnostic(file=shown, summary="file not found")]) from None
    except UnicodeDecodeError as exc:
        raise DiagnosticsError([not_utf8(shown, raw, exc.start, "a YAML file")]) from None
    except OSError as exc:
        raise DiagnosticsError([Diagnostic(file=shown, summary=f"cannot read file: {exc}")]) from None
    sha = hashlib.sha256(raw).hexdigest()
    store = ParseCache(cache, path) if cache is not None and len(raw) >= CACHE_MIN_BYTES else None
    if store is not None and (hit := store.get(sha, len(raw))) is not None:
        return Source.unwalked(shown, hit[0], None, sha, text=text)
    try:
        node = _compose_text(text)
        if "&" not in text:  # no anchor, no alias: built in one pass, positions recorded when first asked for
            fast = _plain(node)
            if fast is not _CHECK:
                if store is not None:
                    store.put(sha, fast)
                return Source.unwalked(shown, fast, node, sha)
        # Walked before anything is built: a document too deep, too large or
        # containing itself is refused before the recursive builders see it.
        # Without an anchor ('&') there is no alias: each node is visited once,
        # and the walk's own count bounds the size.
        walker = _Walker(shown, aliases="&" in text)
        if node is not None and walker.aliases and (too_large := _expanded_problem(node)) is not None:
            walker._problem(node.start_mark, (), too_large)  # an alias bomb: refused without expanding it
        elif node is not None:
            walker.walk(node, ())
        if walker.problems:
            raise DiagnosticsError(walker.problems)
        data = _data(node, walker._loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "syntax error"
        raise DiagnosticsError(
            [Diagnostic(file=shown, line=line, column=column, summary=f"invalid YAML: {problem}")]) from None
    except yaml.reader.ReaderError as exc:   # a character YAML does not take (a control character)
        line, column = text_position(text, exc.position)
        raise DiagnosticsError([Diagnostic(
            file=shown, line=line, column=column,
            summary=f"invalid YAML: the character {chr(exc.character)!r} is not allowed in YAML, even in a comment",
            detail="remove it (a control character: pasted terminal colours, say)")]) from None
    except yaml.YAMLError as exc:
        raise DiagnosticsError([Diagnostic(file=shown, summary=f"invalid YAML: {exc}")]) from None
    return Source(file=shown, data=data, positions=walker.positions, key_positions=walker.key_positions,
                  sha256=sha)


def text_position(text: str, at: int) -> tuple[int, int]:
    """The line and column (from 1, in characters) of offset ``at`` of ``text``."""
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def not_utf8(shown: str, raw: bytes, start: int, what: str) -> Diagnostic:
    """The first byte of ``raw`` that is not UTF-8, where an editor shows it (not its offset): ``what``
    (a YAML file, a policy file) is UTF-8 text."""
    line = raw.count(b"\n", 0, start) + 1
    column = len(raw[raw.rfind(b"\n", 0, start) + 1:start].decode("utf-8", "replace")) + 1
    return Diagnostic(file=shown, line=line, column=column, summary=f"not UTF-8 text (byte 0x{raw[start]:02x})",
                      detail=f"{what} is UTF-8 text: save it so (an editor's 'Latin-1' or 'UTF-16' is not)")


def dump_yaml(data: Any) -> str:
    """YAML text that :func:`load_yaml` reads back as ``data`` (plain JSON values: text, numbers,
    true/false, null, lists and mappings with text keys), its keys in their order.

    JSON's text is YAML, but not quite, for YAML 1.1 as PyYAML reads it: a float without a point
    (``1e+20``) reads as text, a character outside YAML's printable set (DEL, a C1 control,
    U+FFFE) may not stand in it as itself, JSON's escape of one beyond U+FFFF (a pair of
    ``\\uD83D\\uDE00``) is no YAML escape, and a key of more than 1,024 characters cannot be read. So
    the JSON text is written with a point in each such float and those characters escaped; where
    that is not enough (such a key, a lone surrogate), PyYAML writes the document (six times
    slower: 0.33 s for 10,000 resources)."""
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:   # (NaN, an infinity: JSON's words for them read as text; YAML's own, .nan and .inf)
        return _dumped(data)
    if _UNREADABLE.search(text) is not None:
        if _SURROGATE.search(text) is not None:
            return _dumped(data)
        text = _UNREADABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)   # (all within the BMP)
    long_key = False

    def fixed(match: re.Match) -> str:
        nonlocal long_key
        if match["float"] is not None:
            return match["float"].replace("e", ".0e", 1)
        long_key = long_key or (match["key"] is not None and len(match[0]) > 1000)
        return match[0]

    text = _JSON_TOKEN.sub(fixed, text)
    return _dumped(data) if long_key else text


#: Characters YAML may not hold as themselves (outside its printable set), as JSON writes them out
#: (C0 controls escaped already).
_UNREADABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A JSON text's strings (a key: followed by ':'), and its floats written without a point.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(?P<key>\s*:)?|(?P<float>(?<![0-9.])-?[0-9]+e[-+][0-9]+)')


def _dumped(data: Any) -> str:
    """PyYAML's text of ``data``, in ASCII, block style, no anchors."""
    options = {"sort_keys": False, "default_flow_style": False, "allow_unicode": False, "width": 2**30}
    if _CDumper is not None:
        try:
            return yaml.dump(data, Dumper=_CDumper, **options)
        except UnicodeEncodeError:   # (a lone surrogate, which libyaml cannot write: Python's escapes it)
            pass
    return yaml.dump(data, Dumper=_Dumper, **options)


class _NoAliases:
    """A dumper that writes each value out where it stands (no anchors and aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper = type("_Dumper", (_NoAliases, yaml.SafeDumper), {})   # PyYAML's safe dumper
_CDumper = type("_CDumper", (_NoAliases, yaml.CSafeDumper), {}) if hasattr(yaml, "CSafeDumper") else None


#: The largest YAML file read, in bytes (the node count, MAX_NODES, bounds what a smaller one builds).
MAX_YAML_BYTES = 64 * 1024 * 1024


#: The largest piece read at once from a file that is not regular (a pipe) or grows while read.
READ_BYTES = 16 * 1024 * 1024


def read_at_most(handle: BinaryIO, limit: int) -> bytes | None:
    """The file's bytes, or None when there are more than ``limit``: read in one piece of the
    size the file has (none larger is made ready for it), then in pieces of at most
    READ_BYTES should it be longer than that (a pipe, /dev/zero, a file still being written)."""
    size = os.fstat(handle.fileno()).st_size
    if size > limit:
        return None
    raw = handle.read(size + 1)
    if len(raw) <= size:
        return raw
    pieces, total = [raw], len(raw)
    while total <= limit and (piece := handle.read(min(READ_BYTES, limit + 1 - total))):
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces) if total <= limit else None


#: Files smaller than this are parsed every time: the cache would save them little.
CACHE_MIN_BYTES = 64 * 1024
#: An entry not written for this long is removed when another is written (a file renamed or gone).
CACHE_DAYS = 30


class ParseCache:
    """What a large YAML file parsed to, kept as JSON beside the project's
    journal (``.ordo/cache/yaml``), so that the next command reading the same
    bytes skips the parse (0.17 s of a 10,000-resource request, against 10 ms
    for the JSON). One entry per file (its name: a hash of the file's path),
    holding the file's sha256 and a fingerprint of the parser (this module's
    source, PyYAML's and libyaml's versions): a file that changed, or another
    ordo, is parsed again and the entry replaced. Only documents of the plain
    kind are kept (no anchors; text, numbers, booleans, null, lists and
    mappings with text keys), the ones whose parse JSON gives back exactly;
    the caps on depth and size were checked when they were parsed. Positions
    for messages are found by parsing the text again, only when a message
    needs one (``TextPositions``). An entry that cannot be read (damaged, or
    written by another version) is ignored and replaced; a folder that cannot
    be written leaves the cache off; entries not written for ``CACHE_DAYS``
    are removed when another is written. Deleting the folder is always safe.
    The caller decides which files may be kept (domain.project: the
    project's own, never a file from elsewhere, which may hold secrets its
    owner keeps out of the project).

    Other derived data is kept the same way (planner/lint.py: what each policy
    file defines and reads): ``path`` is then the text the entry is named by,
    and ``fingerprint`` what makes the data, instead of the parser's."""

    def __init__(self, folder: Path, path: Path | str, fingerprint: str | None = None):
        self.folder = folder
        named = str(path.absolute()) if isinstance(path, Path) else path
        name = hashlib.sha256(named.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self.entry = folder / f"{name}.json"
        self.fingerprint = fingerprint

    def get(self, sha256: str, size: int) -> tuple[Any] | None:
        """``(data,)`` as parsed from the file whose bytes have ``sha256`` and ``size``; None on a miss."""
        try:
            with open_entry(self.entry) as f:
                text = f.read(4 * size + 4096)   # JSON of a document is about its size: never read more
            entry = json.loads(text)
            if (isinstance(entry, dict) and entry.get("sha256") == sha256
                    and entry.get("parser") == (self.fingerprint or parser_fingerprint()) and "data" in entry):
                return (entry["data"],)
        except (OSError, ValueError, RecursionError):
            pass
        return None

    def put(self, sha256: str, data: Any) -> None:
        """Keep ``data`` for the file's bytes; nothing when the folder cannot be written."""
        try:
            if not own_folder(self.folder):
                return
            text = json.dumps({"parser": self.fingerprint or parser_fingerprint(), "sha256": sha256, "data": data},
                              ensure_ascii=False, separators=(",", ":"))
            make_private(self.folder)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(text.encode("utf-8"))
                os.replace(tmp, self.entry)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._prune()
        except (OSError, ValueError, RecursionError, UnicodeError):
            pass

    def _prune(self) -> None:
        """Remove entries not written for CACHE_DAYS, and what a writer killed mid-write left (an hour
        on): only files named as this class names them, whatever else the folder holds."""
        now = time.time()
        with os.scandir(self.folder) as found:
            for item in found:
                kind = _CACHE_NAMES.fullmatch(item.name)
                if kind is None or item.path == str(self.entry) or not item.is_file(follow_symlinks=False):
                    continue
                age = now - item.stat(follow_symlinks=False).st_mtime
                if age > (3600 if kind[1] else CACHE_DAYS * 86400):
                    with contextlib.suppress(OSError):
                        os.unlink(item.path)


#: An entry's name (32 hex digits) or a temporary one's (mkstemp's ".tmp-XXXXXXXX"), group 1 set for the latter.
_CACHE_NAMES = re.compile(r"[0-9a-f]{32}\.json|(\.tmp-[A-Za-z0-9_]{8})\.json")


def open_entry(path: Path) -> BinaryIO:
    """A cache entry opened for reading, as a regular file of its own folder (``own_folder``): never
    waited on (a FIFO put in its place would hang the command: it is opened without blocking, and
    refused) nor read through a folder that leads elsewhere. OSError for anything else."""
    if not own_folder(path.parent):
        raise OSError(f"{path.parent}: a symbolic link, not a folder of the project's")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def own_folder(folder: Path) -> bool:
    """Whether a cache's folder (``.ordo/cache/<kind>``) and the cache folder above it are folders and
    not symbolic links: ordo makes them, and one that leads elsewhere is not written or read through
    (it would write, read and prune outside the project)."""
    return not (folder.is_symlink() or folder.parent.is_symlink())


def make_private(folder: Path) -> None:
    """``folder`` and the folders missing above it made as the journal makes ``.ordo`` (owner
    only: a folder made here first must not be laxer), with a .gitignore keeping it out of git.
    OSError when something else stands in its way (a file of that name)."""
    if folder.is_dir():
        return
    missing = []
    part = folder
    while not part.exists() and not part.is_symlink():
        missing.append(part)
        part = part.parent
    if not missing or not part.is_dir():
        raise NotADirectoryError(f"{part} is not a folder")
    for made in reversed(missing):
        made.mkdir(mode=0o700, exist_ok=True)
    (folder / ".gitignore").write_text("# ordo's parse cache: safe to delete\n*\n")


def code_fingerprint(kind: str, files: Iterable[Path | str | None], *versions: str) -> str | None:
    """``kind/`` and a sha256 of ``versions`` and of the ``files``' names and bytes: what a cache's
    data depends on besides its inputs (the code that makes it, taken of the code this process runs,
    and the versions of what it uses); None, and nothing read or kept, where a file is not there
    to be read (a module without a file: None)."""
    digest = hashlib.sha256("/".join(versions).encode())
    try:
        for path in files:
            if path is None:
                return None
            path = Path(path)
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    except OSError:
        return None
    return f"{kind}/{digest.hexdigest()[:32]}"


@functools.cache
def parser_fingerprint() -> str:
    """What the cached data depends on besides the file: this module, PyYAML and libyaml."""
    own = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    libyaml = "none"
    if _CLoader is not None:
        with contextlib.suppress(Exception):
            from yaml import _yaml

            libyaml = _yaml.get_version_string()
    return f"{own}/{yaml.__version__}/{libyaml}"


_SIMPLE = "tag:yaml.org,2002:"


def _mark(node: yaml.Node | None) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)

#: Deeper nesting than this is refused: no model needs a tenth of it, and
#: PyYAML's composer and constructor recurse once per level (a file nested
#: 50,000 levels deep ended in a RecursionError).
MAX_DEPTH = 100
TOO_DEEP = f"invalid YAML: nested more than {MAX_DEPTH} levels deep"


def nested_deeper(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and mappings in ``value`` (data parsed from JSON) nest deeper than ``limit``,
    as YAML files may not: what reads such data recurses (a translation, the redaction of secrets).
    Walked without recursion."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, refusing to compose deeper than MAX_DEPTH."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, TOO_DEEP.removeprefix("invalid YAML: "),
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_CSafeLoader = getattr(yaml, "CSafeLoader", None)
_CLoader = None
if _CSafeLoader is not None:
    class _CLoader(_CSafeLoader):
        """libyaml's parser, resolving each distinct scalar's tag once: the safe
        loader has no path resolvers, so a tag depends on nothing but (kind,
        value, implicit), and an inventory repeats its types and states
        thousands of times."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._tags: dict[tuple, str] = {}

        def resolve(self, kind: type, value: str | None, implicit: Any) -> str:
            key = (kind, value, implicit)
            tag = self._tags.get(key)
            if tag is None:
                tag = self._tags[key] = super().resolve(kind, value, implicit)
            return tag

        def descend_resolver(self, parent: Any, index: Any) -> None:
            """Nothing to track without path resolvers."""

        def ascend_resolver(self) -> None:
            """Nothing to track without path resolvers."""


def _compose_text(text: str) -> yaml.Node | None:
    """libyaml's parser when present: ten times faster on large inventories. On a syntax error
    (or text libyaml refuses and PyYAML takes: a tab opening a block scalar's line), the
    pure-Python parser's, whose message says more."""
    try:
        return _compose(text, _CLoader or _SafeLoader)
    except yaml.YAMLError:
        return _compose(text, _SafeLoader)


def _compose(text: str, loader_class: type) -> yaml.Node | None:
    loader = loader_class(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _data(node: yaml.Node | None, loader: _SafeLoader | None = None) -> Any:
    """Plain data from a walked node; ``loader``: the walk's, which built some of its scalars already
    (``_Walker._unbuildable``), each then taken as it is."""
    if node is None:
        return None
    try:
        return _build(node, [0])
    except _Unusual:
        loader = loader or _SafeLoader("")
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()


class _Unusual(Exception):
    """A node the fast builder leaves to PyYAML's constructor (anchors' merge keys, timestamps ...)."""


def _build(node: yaml.Node, count: list[int]) -> Any:
    """Plain data from a composed node: PyYAML's constructor does the same,
    three times slower; anything beyond str/int/float/bool/null/map/seq falls
    back to it (as do alias-expanded documents: it shares aliases)."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _Unusual
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        value = node.value
        if tag == _SIMPLE + "str":
            return value
        digits = value.lstrip("+-")
        if tag == _SIMPLE + "int" and digits.isascii() and digits.isdigit() and (digits[0] != "0" or digits == "0"):
            # (a leading zero is YAML 1.1's octal, PyYAML's to read: 012 was 12 here, and 10 where anything
            # else in the file sent the whole file to PyYAML)
            if _too_long(node):
                raise _Unusual   # int() would raise: named by the walk, which runs before the builders
            return int(value)
        if tag == _SIMPLE + "bool" and value.lower() in _BOOLS:   # (another, tagged !!bool: the walk names it)
            return _BOOLS[value.lower()]
        if tag == _SIMPLE + "null":
            return None
        if tag == _SIMPLE + "float" and value.isascii() \
                and value.lstrip("+-").replace(".", "", 1).replace("e", "", 1).isdigit():
            return float(value)
        raise _Unusual
    if isinstance(node, yaml.SequenceNode) and tag == _SIMPLE + "seq":
        return [_build(item, count) for item in node.value]
    if isinstance(node, yaml.MappingNode) and tag == _SIMPLE + "map":
        out = {}
        for key, value in node.value:
            if key.tag == _SIMPLE + "merge":
                raise _Unusual
            built = _build(key, count)
            if isinstance(built, (list, dict)):
                raise _Unusual
            out[built] = _build(value, count)
        return out
    raise _Unusual


_CHECK = object()  # what _plain returns for a document it leaves to the walk and the builders above


def _plain(node: yaml.Node | None) -> Any:
    """Plain data from a document without aliases, in one pass, or _CHECK for
    one the walk must see first (too deep, too large, a duplicate key, a key
    that is not text) or that _build leaves to PyYAML (_Unusual): those take
    the way above, which finds and names every problem as it always did."""
    if node is None:
        return None
    try:
        return _plain_node(node, 0, [0])
    except _Unusual:
        return _CHECK


def _plain_node(node: yaml.Node, depth: int, count: list[int]) -> Any:
    count[0] += 1
    if depth >= MAX_DEPTH or count[0] > MAX_NODES:
        raise _Unusual
    kind = node.__class__
    if kind is yaml.MappingNode and node.tag == _MAP:
        out = {}
        for key, value in node.value:
            if key.__class__ is not yaml.ScalarNode or key.tag != _STR:
                raise _Unusual  # a merge key, a key that is not text: compared as text by the walk
            out[key.value] = _plain_node(value, depth + 1, count)
        if len(out) != len(node.value):
            raise _Unusual  # a duplicate key
        return out
    if kind is yaml.SequenceNode and node.tag == _SEQ:
        return [_plain_node(item, depth + 1, count) for item in node.value]
    if kind is yaml.ScalarNode:
        if node.tag == _STR:
            return node.value
        return _build(node, [0])
    raise _Unusual


_MAP, _SEQ, _STR = _SIMPLE + "map", _SIMPLE + "seq", _SIMPLE + "str"
#: The scalar types whose PyYAML constructors raise on text that is not one of theirs (not a YAMLError).
_BUILT_TAGS = frozenset(_SIMPLE + name for name in ("int", "float", "bool", "null", "timestamp"))
_NUMBER_TAGS = frozenset((_SIMPLE + "int", _SIMPLE + "float"))
#: YAML 1.1's words for true and false, as PyYAML reads them.
_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}


def _too_long(node: yaml.ScalarNode) -> bool:
    """An integer of more digits than Python converts from text (``sys.get_int_max_str_digits``,
    4,300 unless set, never under 640; 0: no limit): int() would raise, in the middle of building."""
    return len(node.value) > 640 and node.tag == _SIMPLE + "int" and 0 < sys.get_int_max_str_digits() < len(node.value)

#: More nodes than this (through aliases) is an alias bomb, not a model.
MAX_NODES = 2_000_000


def _too_large() -> str:
    return f"document too large: more than {MAX_NODES:,} values (are aliases expanding without end?)"


#: More characters than this in a document's scalars, its aliases expanded: a 1 MB string named by
#: 2,000 aliases was a request of 1 MB that took 4 GB to apply. As much as the largest file holds.
MAX_EXPANDED_TEXT = MAX_YAML_BYTES


def _expanded_problem(root: yaml.Node) -> str | None:
    """Why the document, its aliases expanded, is too large (more than MAX_NODES values, or more than
    MAX_EXPANDED_TEXT characters in its keys and values), or None."""
    values, text = _expanded_size(root, MAX_NODES, MAX_EXPANDED_TEXT)
    if values > MAX_NODES:
        return _too_large()
    if text > MAX_EXPANDED_TEXT:
        return (f"document too large: more than {MAX_EXPANDED_TEXT:,} characters of text with its aliases "
                "expanded (an alias repeats its anchor's whole value)")
    return None


def _expanded_size(root: yaml.Node, limit: int, text_limit: int) -> tuple[int, int]:
    """How many values the document holds with its aliases expanded, and how many characters its
    scalars (keys too) hold then, each capped just past its limit. Each distinct node is counted once
    and its size reused wherever an alias stands for it, so this costs what the file's text does,
    however large the expansion (a billion values in a few lines)."""
    size: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in size or (key in open_nodes and not children_done):
            continue  # known; or a node inside itself, which the walker names
        if isinstance(node, yaml.ScalarNode):
            size[key] = (1, len(node.value))
            continue
        mapping = isinstance(node, yaml.MappingNode)
        kids = [value for _, value in node.value] if mapping else node.value
        keys = [k for k, _ in node.value] if mapping else []
        if children_done:
            open_nodes.discard(key)
            known = [size.get(id(kid), (1, 0)) for kid in kids]
            texts = [size.get(id(k), (1, 0))[1] for k in keys]
            size[key] = (min(limit + 1, 1 + sum(n for n, _ in known)),
                         min(text_limit + 1, sum(t for _, t in known) + sum(texts)))
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in (*keys, *kids))
    return size[id(root)]


class _Walker:
    """Record positions, and find duplicate keys and recursive aliases."""

    def __init__(self, file: str, aliases: bool = True) -> None:
        self.file = file
        self.aliases = aliases  # False: the document has no anchor, so no node is inside itself
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self.key_positions: dict[PathKey, tuple[int, int]] = {}
        self.problems: list[Diagnostic] = []
        self.visited = 0
        self._loader: _SafeLoader | None = None

    def _problem(self, mark: yaml.Mark, path: PathKey, summary: str) -> None:
        self.problems.append(Diagnostic(file=self.file, line=mark.line + 1, column=mark.column + 1,
                                        path=format_path(path), summary=summary))

    def _unbuildable(self, node: yaml.ScalarNode) -> str | None:
        """What is wrong with a scalar whose text is not a value of its type (``0x_``, ``!!int ²``,
        ``!!timestamp soon``: PyYAML's constructors would raise mid-build), or None."""
        if node.tag not in _BUILT_TAGS:
            return None   # (a tag of no type: the constructor names it, at its place)
        if not node.value.isascii() and node.tag in _NUMBER_TAGS:   # (!!int ٣: PyYAML reads it as 3)
            return f"invalid YAML: not a valid {node.tag.rpartition(':')[2]} (its digits are not 0-9)"
        try:
            _build(node, [0])
            return None
        except _Unusual:
            pass
        if self._loader is None:   # (one for the walk: a file of 100,000 hex numbers made as many)
            self._loader = _SafeLoader("")
        try:
            self._loader.construct_object(node)
            return None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError):
            return f"invalid YAML: not a valid {node.tag.rpartition(':')[2]} (written or tagged as one)"
        except yaml.YAMLError:
            return None   # (named by the build, with its place)

    def walk(self, root: yaml.Node, path: PathKey) -> None:
        # Iterative, with the chain of open nodes, so that a recursive alias
        # is reported instead of recursing forever.
        stack: list[tuple[yaml.Node, PathKey, frozenset[int]]] = [(root, path, frozenset())]
        while stack:
            node, path, open_nodes = stack.pop()
            self.visited += 1
            if self.visited > MAX_NODES:
                self.problems = []  # as when the count before the walk found it too large
                self._problem(root.start_mark, (), _too_large())
                return
            self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
            if len(path) >= MAX_DEPTH:
                self._problem(node.start_mark, path, TOO_DEEP)
                return
            if isinstance(node, yaml.ScalarNode):
                if _too_long(node):
                    self._problem(node.start_mark, path, f"an integer of more than {sys.get_int_max_str_digits():,} "
                                                         "digits")
                elif (why := self._unbuildable(node)) is not None:
                    self._problem(node.start_mark, path, why)
                continue
            if id(node) in open_nodes:
                self._problem(node.start_mark, path, "recursive YAML alias: a value contains itself")
                return
            inner = open_nodes | {id(node)} if self.aliases else open_nodes
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, _ in node.value:
                    key = str(key_node.value)
                    if isinstance(key_node, yaml.ScalarNode) and (why := self._unbuildable(key_node)) is not None:
                        self._problem(key_node.start_mark, path + (key,), why)
                    if key in seen:
                        self._problem(key_node.start_mark, path + (key,), f"duplicate key '{key}'")
                    seen.add(key)
                    self.key_positions.setdefault(path + (key,), (key_node.start_mark.line + 1,
                                                                  key_node.start_mark.column + 1))
                stack.extend((value, path + (str(key.value),), inner) for key, value in reversed(node.value))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, path + (index,), inner) for index, item in reversed(list(enumerate(node.value))))


def _find(unwalked: tuple, path: PathKey) -> tuple[yaml.Node | None, yaml.Node | None]:
    """In a source not walked yet (its root node and its mappings' key indexes): the node at
    path or its nearest parent, and the key node of path's last step when path was found and
    ends in a mapping's key."""
    node, index = unwalked
    key = None
    for part in path:
        key = None
        if node.__class__ is yaml.MappingNode and isinstance(part, str):
            keys = index.get(id(node))
            if keys is None:
                keys = index[id(node)] = {k.value: (k, v) for k, v in reversed(node.value)}
            key, child = keys.get(part, (None, None))
        elif node.__class__ is yaml.SequenceNode and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        else:
            child = None
        if child is None:
            return node, None
        node = child
    return node, key
