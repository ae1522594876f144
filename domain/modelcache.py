"""The model last built of a project's own files, kept for the next command that loads the very
same inputs (``.ordo/cache/model/``).

A plan with nothing to change against 10,000 resources spent most of its time reading the
request and building the model of it (validating 10,000 resources, checking each against its
record, the whole-model checks): the same work for the same bytes each time a drift check runs.
The entry is named by a sha256 of everything the model is made of: the bytes of the project
file, catalog, inventory and request files (each the project's own: inside its folder, not
under ``.ordo``, so never a request kept elsewhere, which may hold secrets), the names messages
give them, the journal state's digest, and a fingerprint of the code that builds models (this
package's sources, pydantic's and Python's versions). A file edited, a record written by any run,
another ordo: another name, and the model is built anew.

An entry is written the second time in a row that the same inputs are built (the first time
only their name is kept): writing 10,000 resources out costs about as much as reading them back,
and a command whose inputs change every time (a plan, then its apply, against a state the apply
changes) would pay it for nothing. Entries are pickles read by an unpickler that makes nothing
but this package's data classes (``_Unpickler``), checked against the sha256 written beside
them (a damaged file is ignored); one entry a project, of at most ``MOST_BYTES``. Deleting the
folder is always safe. Whoever can write ``.ordo/`` can forge an entry, as they can forge the
parse cache's: docs/security.md.
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
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import domain.formats
import domain.model
import domain.yamlsrc
from domain.yamlsrc import TextPositions, make_private

#: Where a project's last model is kept, beside the journal.
MODEL_CACHE = Path(".ordo", "cache", "model")
#: The largest entry written (a pickled model of some 100,000 resources): a larger one is not kept.
MOST_BYTES = 64 * 2**20
_ENTRY = "model.bin"
_HEADER_MOST = 4096


@functools.cache
def fingerprint() -> str | None:
    """The code a model is made by: this package's sources (taken once a process, of the code it
    runs), pydantic's and Python's versions; None, and nothing read or kept, where the sources are
    not there to be read."""
    import pydantic
    import pydantic_core

    digest = hashlib.sha256(f"{sys.version}/{pydantic.VERSION}/{pydantic_core.__version__}".encode())
    try:
        for path in sorted(Path(__file__).parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    except OSError:
        return None
    return "model/" + digest.hexdigest()[:32]


def inputs_key(parts: list[Any]) -> str | None:
    """The name of the model made of ``parts`` (JSON values: files' names and sha256s, the journal's
    digest), by this code; None when no model is to be kept."""
    code = fingerprint()
    if code is None:
        return None
    return hashlib.sha256(json.dumps([code, parts], separators=(",", ":")).encode()).hexdigest()


class ModelCache:
    """The project's entry: ``get(key)`` the model kept for ``key``, ``put(key, model)`` after a build."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entry = folder / _ENTRY

    def get(self, key: str) -> Any | None:
        """The model kept for ``key``, made anew from the entry; None on a miss or a damaged entry."""
        try:
            with self.entry.open("rb") as f:
                header = json.loads(f.readline(_HEADER_MOST))
                if not isinstance(header, dict) or header.get("key") != key or "sha256" not in header:
                    return None
                size = header.get("size")
                if type(size) is not int or not 0 < size <= MOST_BYTES:
                    return None
                blob = f.read(size + 1)
            if len(blob) != size or hashlib.sha256(blob).hexdigest() != header["sha256"]:
                return None
            return _Unpickler(io.BytesIO(blob)).load()
        except (OSError, ValueError, pickle.UnpicklingError, EOFError, TypeError, AttributeError, KeyError,
                IndexError, RecursionError, MemoryError, UnicodeError):
            return None

    def put(self, key: str, model: Any) -> None:
        """After ``model`` was built for ``key``: kept when the entry names ``key`` already (built twice in
        a row), else ``key`` alone is noted. Nothing when the folder cannot be written."""
        try:
            seen = False
            with contextlib.suppress(OSError, ValueError):
                with self.entry.open("rb") as f:
                    header = json.loads(f.readline(_HEADER_MOST))
                seen = isinstance(header, dict) and header.get("key") == key
            if seen and "sha256" in header:
                return   # (kept already: another process wrote it meanwhile)
            blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL) if seen else b""
            if len(blob) > MOST_BYTES:
                blob, seen = b"", False
            head = {"key": key, "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)} if seen else {"key": key}
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


class _Unpickler(pickle.Unpickler):
    """Makes this package's data classes (dataclasses and pydantic models of ``domain``) and the
    function that remakes an ``Origin``; nothing else, so an entry names no function to call."""

    def find_class(self, module: str, name: str) -> Any:
        found = getattr(_MODULES[module], name, None) if module in _MODULES else None
        if isinstance(found, type) and (dataclasses.is_dataclass(found) or issubclass(found, BaseModel)) \
                or found is TextPositions or found is domain.model._origin:
            return found
        raise pickle.UnpicklingError(f"{module}.{name} is not kept in a model")


_MODULES = {"domain.model": domain.model, "domain.formats": domain.formats, "domain.yamlsrc": domain.yamlsrc}
