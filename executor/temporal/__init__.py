"""The run core's second host: runs as Temporal workflows, across workers (issue 11).

``workflow.py`` drives ``executor.core.RunCore`` in a workflow; ``activities.py``
does the I/O (journal, planner, guards, controllers); ``client.py`` runs workers
and starts and follows runs; ``wire.py`` is what crosses Temporal's payloads.
Importing this package does not import temporalio (an optional dependency: the
``temporal`` extra); its modules do.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from domain.errors import OrdoError

#: The main task queue (workflows, re-planning, journal); sweeps' scenarios go to ``<queue>.planning``, each
#: controller's calls to ``<queue>-<controller>``.
DEFAULT_QUEUE = "ordo"
#: Operations settled before a workflow hands its history on (continue-as-new).
DEFAULT_CONTINUE_EVERY = 1000


@dataclass(frozen=True)
class Temporal:
    """Where runs go when the engine is Temporal."""

    address: str                               # HOST:PORT of the Temporal frontend
    queue: str = DEFAULT_QUEUE
    continue_every: int = DEFAULT_CONTINUE_EVERY


class TemporalError(OrdoError):
    """The Temporal service cannot be reached, or refused what was asked (a queue no worker serves)."""


def workflow_id(journal_id: str, run: int) -> str:
    """One workflow per run of a journal: a second submission of the run finds the first."""
    return f"ordo-run-{journal_id[:12]}-{run}"


def workflow_command(verb: str, wid: str, address: str | None) -> str:
    """The `temporal` command that does ``verb`` (describe, terminate) to workflow ``wid``, at the address
    the run's Temporal has (the CLI's own default is another), quoted as a message shows it."""
    where = f" --address {address}" if address else ""
    return f"`temporal workflow {verb} -w {wid}{where}`"


def waits_refused(ops: list[str]) -> str | None:
    """Why a plan whose operations ``ops`` wait (``wait:`` in the catalog) is not carried out on Temporal;
    None when none waits. Checked for the first plan and for each re-plan (a rollback's plan may delete what
    the first only created, and its delete wait)."""
    if not ops:
        return None
    shown = ", ".join(sorted(ops)[:5]) + (" ..." if len(ops) > 5 else "")
    return f"the Temporal engine does not carry out declared waits yet ({shown}): apply without --engine temporal"


def load_client() -> ModuleType:
    """``executor.temporal.client``; a clear error when the ``temporal`` extra is not installed."""
    try:
        from executor.temporal import client as module
    except ImportError as exc:
        raise OrdoError(f"runs on Temporal need the temporal extra (pip install 'ordo[temporal]'): {exc}") from None
    return module
