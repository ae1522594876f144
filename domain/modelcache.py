"""The model last built of a project's own files, kept for the next command that loads the very
same inputs (``.ordo/cache/model/``).

A plan with nothing to change against 10,000 resources spent most of its time reading the
request and building the model of it (validating 10,000 resources, checking each against its
record, the whole-model checks): the same work for the same bytes each time a drift check runs.
The entry is named by a sha256 of everything the model is made of: the bytes of the project
file, catalog, inventory and request files (each the project's own: inside its folder, not
under ``.ordo``, so never a request kept elsewhere, which may hold secrets), the names messages
give them, the journal state's digest, and a fingerprint of the code that builds models (this
package's sources; pydantic's, Python's, PyYAML's and libyaml's versions). A file edited, a record written by any run,
another ordo: another name, and the model is built anew.

An entry is written the second time in a row that the same inputs are built (the first time
only their name is kept): writing 10,000 resources out costs about as much as reading them back,
and a command whose inputs change every time (a plan, then its apply, against a state the apply
changes) would pay it for nothing. An entry is a pickle of calls of one maker per data class
(``_maker``), the only names its unpickler finds (``_Unpickler``): it can call no other function
and change no class. It is checked against the sha256 written beside it (a damaged entry is
ignored, and written again by the next build); two entries a project (the last model with journal
records, the last without: ``ENTRIES``), each of at most ``MOST_BYTES``. Deleting the folder is
always safe. Whoever can write ``.ordo/`` can forge an entry, as they can forge the parse cache's:
docs/security.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import domain.formats
import domain.model
import domain.yamlsrc
from domain.yamlsrc import TextPositions, code_fingerprint, make_private, open_entry, own_folder

#: Where a project's last model is kept, beside the journal.
MODEL_CACHE = Path(".ordo", "cache", "model")
#: The largest entry written (a pickled model of some 170,000 resources): a larger one is not kept.
MOST_BYTES = 64 * 2**20
#: The entries a project keeps: the last model with journal records, and the last without (ordo check
#: reads no journal; ordo plan does: taking turns, neither would find its own).
ENTRIES = ("model.bin", "model-files.bin")
_HEADER_MOST = 4096


@functools.cache
def fingerprint() -> str | None:
    """The code a model is made by: this package's sources (taken once a process, of the code it
    runs), pydantic's, Python's, PyYAML's and libyaml's versions; None, and nothing read or kept,
    where the sources are not there to be read."""
    import pydantic
    import pydantic_core

    try:
        parser = domain.yamlsrc.parser_fingerprint()
    except OSError:
        return None
    return code_fingerprint("model", sorted(Path(__file__).parent.glob("*.py")), sys.version, pydantic.VERSION,
                            pydantic_core.__version__, parser)


def inputs_key(parts: list[Any]) -> str | None:
    """The name of the model made of ``parts`` (JSON values: files' names and sha256s, the journal's
    digest), by this code; None when no model is to be kept."""
    code = fingerprint()
    if code is None:
        return None
    return hashlib.sha256(json.dumps([code, parts], separators=(",", ":")).encode()).hexdigest()


class ModelCache:
    """A project's entry: ``get(key)`` the model kept for ``key``, ``put(key, model)`` after a build."""

    def __init__(self, folder: Path, recorded: bool = True) -> None:
        """``recorded``: the entry of a model with the journal's records, else that of one without."""
        self.folder = folder
        self.entry = folder / ENTRIES[0 if recorded else 1]

    def get(self, key: str) -> domain.model.Model | None:
        """The model kept for ``key``, made anew from the entry; None on a miss or a damaged entry."""
        try:
            with open_entry(self.entry) as f:
                header = json.loads(f.readline(_HEADER_MOST))
                if not isinstance(header, dict) or header.get("key") != key or "sha256" not in header:
                    return None
                size = header.get("size")
                if type(size) is not int or not 0 < size <= MOST_BYTES:
                    return None
                blob = f.read(size + 1)
            if len(blob) != size or hashlib.sha256(blob).hexdigest() != header["sha256"]:
                return None
            model = _Unpickler(io.BytesIO(blob)).load()
            return model if isinstance(model, domain.model.Model) else None
        except (OSError, ValueError, pickle.UnpicklingError, EOFError, TypeError, AttributeError, KeyError,
                IndexError, RecursionError, MemoryError, UnicodeError):
            return None

    def put(self, key: str, model: Any) -> None:
        """After ``model`` was built for ``key``: kept when the entry names ``key`` already (built twice in
        a row), else ``key`` alone is noted. Nothing when the folder cannot be written."""
        try:
            seen = False   # (a model kept for ``key`` that ``get`` could not read is written again)
            if not own_folder(self.folder):
                return
            with contextlib.suppress(OSError, ValueError):
                with open_entry(self.entry) as f:
                    header = json.loads(f.readline(_HEADER_MOST))
                seen = isinstance(header, dict) and header.get("key") == key
                if seen and header.get("larger"):
                    return   # (written out once for these inputs already: too large to keep)
            blob = b""
            if seen:
                buffer = io.BytesIO()
                _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(model)
                blob = buffer.getvalue()
            if len(blob) > MOST_BYTES:
                head: dict[str, Any] = {"key": key, "larger": True}
                blob = b""
            else:
                head = {"key": key, "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)} if seen \
                    else {"key": key}
            self._write(json.dumps(head).encode() + b"\n" + blob)
        except (OSError, pickle.PicklingError, TypeError, ValueError, RecursionError, MemoryError):
            pass

    def _write(self, data: bytes) -> None:
        make_private(self.folder)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        now = time.time()   # what a writer killed mid-write left, an hour on
        for left in self.folder.glob(".tmp-*.bin"):
            with contextlib.suppress(OSError):
                if now - left.stat(follow_symlinks=False).st_mtime > 3600 and left.is_file(follow_symlinks=False):
                    left.unlink()


def _kept_classes() -> tuple[type, ...]:
    """What a kept model is made of: domain.model's dataclasses and ``Origin``, domain.formats'
    pydantic models, ``TextPositions``."""
    found: list[type] = [domain.model.Origin, TextPositions]
    for module in (domain.model, domain.formats):
        for _name, value in sorted(vars(module).items()):
            if isinstance(value, type) and value.__module__ == module.__name__ and (
                    dataclasses.is_dataclass(value) or issubclass(value, BaseModel)):
                found.append(value)
    return tuple(found)


def _maker(cls: type) -> Any:
    """The function that makes a ``cls`` of the state ``_Pickler`` wrote of one: the only things an
    entry can name, each taking that one argument. None of them hands out a class, so no entry can
    change one (pickle's BUILD sets attributes on whatever it is given: here, at most on one of
    these functions, which read none of theirs)."""
    new, put, origin = object.__new__, object.__setattr__, domain.model._origin
    if cls is TextPositions:
        def make(state: Any) -> Any:
            return TextPositions(str(state))
    elif cls is domain.model.Origin:
        def make(state: Any) -> Any:
            file, at = state
            return origin(str(file), tuple(at))
    elif issubclass(cls, BaseModel):
        def make(state: Any) -> Any:
            obj = new(cls)
            obj.__setstate__(state)
            return obj
    else:
        def make(state: Any) -> Any:
            obj = new(cls)
            put(obj, "__dict__", state)   # (a frozen one too; TypeError for what is no dict)
            return obj
    where = cls.__module__.rpartition(".")[2]
    make.__name__ = make.__qualname__ = f"_make_{where}_{cls.__name__}"   # (pickled by its name in this module)
    make.__module__ = __name__
    return make


_MAKERS = {cls: _maker(cls) for cls in _kept_classes()}
_BY_NAME = {make.__name__: make for make in _MAKERS.values()}
_FUNCTIONS = frozenset(_BY_NAME.values())
_PLAIN = (int, float, str, bytes, bool, type(None), list, tuple, dict, set, frozenset)
globals().update(_BY_NAME)


class _Pickler(pickle.Pickler):
    """Writes every object of the model as a call of its kind's maker with its state; one of any
    other kind (no model holds one) fails the entry."""

    def reducer_override(self, obj: Any) -> Any:
        make = _MAKERS.get(type(obj))
        if make is None:
            if isinstance(obj, _PLAIN) or (isinstance(obj, types.FunctionType) and obj in _FUNCTIONS):
                return NotImplemented   # (plain values; a maker itself, pickled by its name)
            raise pickle.PicklingError(f"{type(obj).__name__} is not kept in a model")
        if type(obj) is TextPositions:
            return make, (obj.text,)
        if type(obj) is domain.model.Origin:
            return make, ((obj.file, obj._at),)
        return make, (obj.__getstate__() if isinstance(obj, BaseModel) else obj.__dict__,)


class _Unpickler(pickle.Unpickler):
    """Finds the makers (``_maker``) and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name in _BY_NAME:
            return _BY_NAME[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not kept in a model")
