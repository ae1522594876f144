"""Ground and solve in a child process, under a time limit and a memory cap.

clingo cannot interrupt grounding, and a policy can ground without end
(``big(A,B,C,D) :- n(A), n(B), n(C), n(D).``). So ``make_plan`` grounds and
solves in a child process: the child caps its own address space
(RLIMIT_AS) and bounds its search; the parent kills it when grounding is
not done by the deadline. The child's answer crosses back small: the shown
atoms as text, the cost, the explanation of "no plan" (computed in the
child, on its ground program). When a limit strikes, a second child grounds
the policy files one program part at a time and the one it is grounding
when the limit strikes again (or else the one that grounded most atoms) is
named in the error.

The child is forked, which copies nothing; from a process that runs threads
(the executor's workers) forking is unsafe, so it comes from a fork server
instead, and the policies are parsed again there (clingo's AST nodes do not
pickle).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

import clingo
from clingo import ast

from domain.errors import DiagnosticsError, OrdoError
from domain.model import Model
from domain.procs import stat_fields
from domain.project import Project
from planner import machine
from planner.explain import Explanation, MinimalConflict, conflict_here, explain_no_plan, goals_to_drop
from planner.parameters import apply_parameters
from planner.program import GLUE, STRICT, Program, load_program
from planner.slots import CANCEL_POLL, PlanCancelled
from planner.solve import (
    SEARCH_RESERVE_MB,
    SolveResult,
    _ground,
    join,
    keep_search_reserve,
    solve,
    solve_parts,
    solver_refused,
    with_symbols,
)

if TYPE_CHECKING:
    from planner.plan import Plan
    from planner.why import Alternative, PlacementWhy

#: Seconds at most for finding the policy that grounds largest, after a limit struck.
PROBE_SECONDS = 10.0
#: The longest the parent waits for its children at once (it waits again while the limit is ahead).
LONGEST_WAIT = 3600.0
#: Seconds a child has, past its own time limits, to hand its answer over.
GRACE_SECONDS = 30.0


#: Where the limits of a plan are set, unless the command gave them (planner.core.limit_hints).
LIMIT_HINTS = ("settings.solve_timeout in ordo.yaml", "settings.memory_limit_mb in ordo.yaml")


class PlanningLimitError(OrdoError):
    """Planning went past the time limit (``kind`` "time") or the memory cap ("memory")."""

    def __init__(self, kind: str, message: str, file: str = ""):
        super().__init__(message)
        self.kind = kind
        self.file = file   # the policy file that grounds largest, as the user knows it


class PoliciesChanged(OrdoError):
    """A policy file changed between the parent's read and the planning child's: plan again (a
    moment later, the files are read anew and agree)."""


class ChildEnded(OrdoError):
    """The child ended without an answer (killed by the system, say, when out of memory)."""


def memory_for(project: Project, given: int | None = None) -> int:
    """The memory cap of a child planning for ``project``: the one given, else
    its settings.memory_limit_mb, else ``default_memory_mb``."""
    return given or project.settings.memory_limit_mb or default_memory_mb()


#: The least memory cap a planning child gets when several share one (threads' stacks and arenas count too).
MIN_SHARE_MB = 1024


def workers_for(project: Project, memory_mb: int) -> int:
    """How many children solve a plan's parts at once: settings.planning_workers (default 2), no
    more than the CPUs this process may use (its container's CPU quota too: planner.machine),
    nor than leave each MIN_SHARE_MB of ``memory_mb``."""
    return max(1, min(project.settings.planning_workers or 2, machine.cpus(), memory_mb // MIN_SHARE_MB))


def default_memory_mb() -> int:
    """4 GB: ten times what a 10,000-resource plan takes; but at most half of
    the memory this process may use (the machine's, or its container's limit:
    planner.machine), so that a runaway policy leaves room for the rest and
    meets the cap, with a message, before the kernel's OOM killer."""
    total = machine.memory_mb()
    return 4096 if total is None else max(256, min(4096, total // 2))


@dataclass
class _Job:
    """What a child needs. Pickled only for a fork server: then the policy
    files are parsed again, and must be the bytes the parent parsed."""

    program: Program | None
    facts: list[str]
    model: Model | None
    deadline: float          # time.monotonic() by which grounding and solving end
    timeout: float
    memory_mb: int
    problem: str = ""        # why the program could not be rebuilt (fork server)
    project: Project | None = None   # conflict_bounded's: the child checks and grounds its policies
    placement: tuple[Plan, str] | None = None   # placement_bounded's: the plan and the resource to explain
    explain: bool = True     # _plan_child's: explain "no plan"
    parts: list[list[str]] | None = None   # _plan_child's: the facts of each part (planner/slice.py), or None
    workers: int = 1         # children sharing memory_mb (each caps itself at its share)
    parent: int = field(default_factory=os.getpid)   # the process that asked: the child ends with it
    #: what a user raises when the time limit or the memory cap strikes
    hints: tuple[str, str] = LIMIT_HINTS

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.program is None:   # conflict_bounded's: the child checks and loads the project's policies
            return state
        state["program"] = [(f.path, f.display, f.origin, f.sha256, f.meta) for f in self.program.files]
        state["parameters"] = {f.path.stem: f.parameters for f in self.program.files if f.origin == "library"}
        state["root"] = self.program.root
        return state

    def __setstate__(self, state: dict) -> None:
        if state["program"] is None:
            self.__dict__.update(state)
            return
        files, root, parameters = state.pop("program"), state.pop("root"), state.pop("parameters")
        self.__dict__.update(state)
        # every file, included ones too, in the parent's order: an include of a file already listed is skipped
        self.program = load_program([(path, display, origin) for path, display, origin, _, _ in files], root)
        if len(self.program.files) != len(files) or any(
                pfile.sha256 != sha for pfile, (_, _, _, sha, _) in zip(self.program.files, files, strict=False)):
            self.problem = "a policy file changed while planning; plan again"
        for pfile, (_, _, _, _, meta) in zip(self.program.files, files, strict=False):
            pfile.meta = meta
        apply_parameters(self.program, parameters, None)  # as the parent did (planner.core.checked_program)


def solve_bounded(program: Program, facts: list[str], model: Model, *, timeout: float, memory_mb: int,
                  deadline: float | None = None, explain: bool = True, parts: list[list[str]] | None = None,
                  workers: int = 1, cancelled: Callable[[], bool] | None = None,
                  hints: tuple[str, str] = LIMIT_HINTS) -> tuple[SolveResult, Explanation | None, float]:
    """Ground and solve in a child within ``timeout`` seconds together (or
    by ``deadline``, a ``time.monotonic()``, when an earlier solve used part
    of the time; ``timeout`` is then the limit the user set, as errors name
    it) and ``memory_mb``; with no plan, explain it there too, unless not
    ``explain``. Returns the result (shown atoms as text), the explanation
    and the seconds it took. Raises PlanningLimitError when a limit strikes,
    DiagnosticsError on errors in the policies. ``parts``: instead of
    ``facts``, programs solved one after the other (``solve_parts``; a part
    without a plan is not explained), by up to ``workers`` children at once,
    each with a run of consecutive parts and its share of ``memory_mb``;
    their answers are joined in the parts' order (``join``). ``cancelled``:
    asked every planner.slots.CANCEL_POLL seconds; once it says so, the
    children are ended and PlanCancelled raised. ``hints``: what the user raises when the time limit or
    the memory cap strikes."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    if parts is None or workers < 2 or len(parts) < 2:
        job = _Job(program, facts, model, deadline, timeout, memory_mb, explain=explain and parts is None,
                   parts=parts, hints=hints)
        _, result, explanation, seconds = _answers(_plan_child, [job], cancelled=cancelled)[0]
        return with_symbols(result), explanation, seconds
    shares = _shares(parts, workers)
    jobs = [_Job(program, [], model, deadline, timeout, memory_mb, explain=False, parts=share, workers=len(shares),
                 hints=hints) for share in shares]
    answers = _answers(_plan_child, jobs, cancelled=cancelled)
    return with_symbols(join([answer[1] for answer in answers], True)), None, 0.0


def ground_bounded(program: Program, facts: list[str], *, timeout: float, memory_mb: int) -> list[str]:
    """Ground only (``ordo check``), in a child within the limits: clingo's messages."""
    return _answer(_ground_child, _Job(program, facts, None, time.monotonic() + timeout, timeout, memory_mb))[1]


def conflict_bounded(project: Project, *, timeout: float, memory_mb: int) -> MinimalConflict | None:
    """``explain.conflict_here`` in a forked child within ``timeout`` seconds
    (grounding and search together) and ``memory_mb``: the policies are
    checked, grounded and searched there, and the answer crosses back. The
    facts are made here, before the fork (made there, every resource of the
    model the child reads would be copied). From a process that runs threads
    the child comes from the fork server, the project pickled to it."""
    from planner.facts import model_facts

    deadline = time.monotonic() + timeout
    job = _Job(None, model_facts(project.model), project.model, deadline, timeout, memory_mb, project=project,
               hints=("--timeout", "settings.memory_limit_mb in ordo.yaml"))
    return _answer(_conflict_child, job)[1]


def placement_bounded(project: Project, program: Program, plan: Plan, resource: str, *, timeout: float,
                      memory_mb: int, decided: dict[str, tuple[Alternative, bool]]) -> PlacementWhy:
    """``why.placement_here`` in a forked child within ``timeout`` seconds
    (every grounding it starts ends by then; a search it starts then has its
    share of them) and ``memory_mb``: the resource is planned on each other
    target there, and the answer crosses back. Each target is put in
    ``decided`` as the child decides it, with whether only for now (its
    explanation on the whole model under way): when a limit strikes after
    one was, PlanningLimitError without probing for the policy that grounds
    largest (the caller answers with what was decided). From a process that runs
    threads the child comes from the fork server, the project and the plan
    pickled to it."""
    from planner.facts import model_facts

    def heard(message: tuple) -> None:
        decided[message[1].target] = (message[1], message[2])

    job = _Job(program, model_facts(project.model), project.model, time.monotonic() + timeout, timeout, memory_mb,
               project=project, placement=(plan, resource),
               hints=("--timeout", "settings.memory_limit_mb in ordo.yaml"))
    return _answers(_placement_child, [job], probe=lambda: not decided, on_partial=heard)[0][1]


def goals_bounded(program: Program, facts: list[str], model: Model, *, timeout: float,
                  memory_mb: int) -> list[tuple[str, str, str]] | None:
    """``explain.goals_to_drop`` in a child within ``timeout`` seconds
    (grounding and search together) and ``memory_mb``. None when a limit
    strikes or the child ends without an answer, as when its search finds
    nothing in time: the goals are the second answer of ``ordo explain``,
    after the explanation of "no plan" that the same limits allowed, so no
    policy is probed for the culprit."""
    job = _Job(program, facts, model, time.monotonic() + timeout, timeout, memory_mb)
    try:
        return _answer(_goals_child, job, probe=False)[1]
    except (PlanningLimitError, ChildEnded):
        return None


def _answer(target, job: _Job, *, probe: bool = True) -> tuple:
    """The ("done", ...) message of ``target`` run in a child; errors and limits
    raise (PlanningLimitError naming the policy that grounds largest, found by
    a probe child, unless ``probe`` is False)."""
    return _answers(target, [job], probe=probe)[0]


def _answers(target, jobs: list[_Job], *, probe: bool | Callable[[], bool] = True,
             on_partial: Callable[[tuple], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> list[tuple]:
    """``_answer`` of each job, their children all running at once and heard
    as they speak: the first error or limit of any raises, and ends the others.
    ``on_partial`` is given each ("partial", ...) message, part of an answer
    that stands if a limit strikes later; ``probe``, if a callable, is asked
    then whether to probe for the policy that grounds largest. ``cancelled``:
    asked every CANCEL_POLL seconds; once it says so, PlanCancelled (the
    children ended)."""
    from multiprocessing.connection import wait

    with contextlib.ExitStack() as stack:
        children = [stack.enter_context(_Child(target, job)) for job in jobs]
        answers: list[tuple | None] = [None] * len(jobs)
        until = [job.deadline for job in jobs]   # a grounding cannot be stopped: the parent ends it
        grounded = [False] * len(jobs)
        failed: tuple[int, str] | None = None
        ended: int | None = None   # how a child that hit the memory cap ended, when it did not say so itself
        while failed is None and (waiting := [i for i, answer in enumerate(answers) if answer is None]):
            first = min(until[i] for i in waiting)
            # (in spells of at most LONGEST_WAIT: the system's wait takes no longer one, and a limit of
            # 1e6 s or more, doubled once grounded, was "a bug in ordo")
            pause = min(max(0.0, first - time.monotonic()), LONGEST_WAIT)
            ready = set(wait([children[i].conn for i in waiting], pause if cancelled is None else
                             min(pause, CANCEL_POLL)))
            if cancelled is not None and cancelled():
                raise PlanCancelled("stopped while the plan was being made")
            for i in waiting:
                if children[i].conn not in ready:
                    if time.monotonic() >= until[i] and not children[i].conn.poll(0):   # (one there now is read)
                        failed = (i, "time")
                        break
                    continue
                message = children[i].next()
                tag = message[0]
                if tag == "grounding":   # the next part (planner.solve.solve_parts)
                    grounded[i], until[i] = False, jobs[i].deadline
                elif tag == "grounded":
                    grounded[i], until[i] = True, jobs[i].deadline + jobs[i].timeout + GRACE_SECONDS
                elif tag == "done":
                    answers[i] = message
                elif tag == "partial" and on_partial is not None:
                    on_partial(message)
                elif tag == "memory" or (tag == "ended" and message[1] in ENDED_AT_CAP):
                    failed = (i, "memory")
                    ended = message[1] if tag == "ended" else None
                    break
                else:
                    _raise(message)
        if failed is None:
            return answers
    i, kind = failed
    job = jobs[i]
    share = job.memory_mb // job.workers
    cap = f"{job.memory_mb} MB" if job.workers == 1 else \
        f"{job.memory_mb} MB, {share} MB for each of {job.workers} planning processes"
    limit, hint = ((f"the time limit ({job.timeout:g} s)", job.hints[0]) if kind == "time" else
                   (f"the memory cap ({cap})", job.hints[1]))
    phase = "solving" if grounded[i] else "grounding"
    struck, exceeded = f"{limit} struck", f"{phase} exceeded {limit}"
    if ended is not None:   # the C library's or clingo's own end, not a MemoryError the child reported: likely
        how = (f"the planning process ended with {_how(ended)}, most likely at {limit} (clingo and the C library "
               "end it so when an allocation fails there)")
        struck, exceeded = how, f"{phase}: {how}"
    if not (probe() if callable(probe) else probe):
        raise PlanningLimitError(kind, f"{struck}; raise {hint}")
    program, facts = job.program, job.facts if job.parts is None else max(job.parts, key=len)   # (the largest part)
    if program is None:   # built in the child (conflict_bounded): built again, as it was, to be probed
        from planner.core import load_policies

        program = load_policies(job.project, warnings=False)
    index = _largest(program, facts, min(job.timeout, PROBE_SECONDS), share)
    advice = f"Raise {hint}"
    if index is None:
        culprit = "not known (no policy file of the project or library grounds any atom)"
    elif index < 0:
        whose = "the model's" if job.parts is None else "the largest part's"
        culprit = f"none: the base library with {whose} {len(facts):,} facts is that large by itself"
    else:
        pfile = program.files[index]
        culprit = f"{pfile.meta.name} ({pfile.display})"
        if pfile.origin == "project":
            advice = f"Fix that policy, or raise {hint}"
        else:   # ordo's own: not the project's to fix (it may leave it out); the model is that large for the limit
            culprit += ", one of ordo's own policies (the model is that large for this limit)"
    raise PlanningLimitError(kind, f"{exceeded}; the policy that grounds largest is {culprit}. {advice}",
                             program.files[index].display if index is not None and index >= 0 else "")


def _raise(message: tuple) -> None:
    """A child's error message, raised."""
    tag = message[0]
    if tag == "diagnostics":
        raise DiagnosticsError(message[1])
    if tag == "error":
        raise OrdoError(message[1])
    if tag == "changed":
        raise PoliciesChanged(message[1])
    if tag == "ended":
        raise ChildEnded(f"the planning process ended unexpectedly (exit code {message[1]})")
    raise OrdoError(f"the planning process sent what it should not: {tag!r}")


def _shares(parts: list[list[str]], workers: int) -> list[list[list[str]]]:
    """The parts in at most ``workers`` runs of consecutive parts, of about as many facts each."""
    total = sum(len(part) for part in parts)
    shares: list[list[list[str]]] = [[]]
    done = 0
    for part in parts:   # a part goes to the next run when more than half of it would be over this run's share
        if shares[-1] and len(shares) < workers and done + len(part) / 2 > total * len(shares) / workers:
            shares.append([])
        shares[-1].append(part)
        done += len(part)
    return shares


def _largest(program: Program, facts: list[str], budget: float, memory_mb: int) -> int | None:
    """The index of the policy file that grounds largest: the one the probe was
    grounding when it ran out of time or memory, else the one that grounded
    most atoms; -1 for the base library with the facts."""
    job = _Job(program, facts, None, time.monotonic() + budget, budget, memory_mb)
    current, sizes = None, {}
    with _Child(_probe_child, job) as child:
        while (message := child.receive(job.deadline)) is not None and message[0] in ("part", "size"):
            if message[0] == "part":
                current = message[1]
            else:
                current, sizes[message[1]] = None, message[2]
        if message is not None and message[0] != "memory":
            current = None   # done, or stopped by an error: not by a limit
    if current is None and sizes:
        current = max(sorted(sizes), key=lambda i: sizes[i])
    return current


class _Child:
    """A child process running ``target(conn, job)``, and what it sends."""

    def __init__(self, target, job: _Job):
        ctx = _context()
        self.conn, sender = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=target, args=(sender, job), daemon=True, name="ordo-planner")
        for stream in (sys.stdout, sys.stderr):  # a forked child must not write the parent's buffers again
            if stream is not None:
                stream.flush()
        self.proc.start()
        sender.close()

    def receive(self, deadline: float) -> tuple | None:
        """The next message; None at the deadline; ("ended", exit code) when the child is gone."""
        if not self.conn.poll(max(0.0, deadline - time.monotonic())):
            return None
        return self.next()

    def next(self) -> tuple:
        """The next message, there to read (``wait`` said so); ("ended", exit code) when the child is gone."""
        try:
            return self.conn.recv()
        except EOFError:
            self.proc.join()
            return ("ended", self.proc.exitcode)

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *_exc) -> None:
        """A child still alive (freeing its ground program, or past a limit) is killed and
        not waited for: the system takes its memory back (20 ms at 10,000 resources) on
        another core while this process goes on. multiprocessing reaps it when the next
        child starts, or at exit."""
        if self.proc.is_alive():
            self.proc.kill()
        else:
            self.proc.join()
        self.conn.close()


def _can_fork() -> bool:
    """Whether a child may be forked from this process: not from one that runs threads."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def _context() -> multiprocessing.context.BaseContext:
    if _can_fork():
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    _start_forkserver()
    return ctx


_FORKSERVER = threading.Lock()


def _start_forkserver() -> None:
    """Start the fork server without the current folder on its module path.
    Python 3.11's fork server ignores the parent's ``sys.path`` and puts the
    current folder first, so in a project folder with its own ``policies/``
    that folder would stand in for ordo's package (with an editable install);
    PYTHONSAFEPATH keeps it off. Set only while the server starts."""
    from multiprocessing import forkserver

    with _FORKSERVER:
        saved = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = saved


def _start_child(job: _Job, *, searches: bool = True) -> None:
    """What every child does first: end with the process that asked for it;
    cap its memory at its share (one malloc arena; a child that ``searches``
    keeps part of it aside for its searches' thread: planner.solve.searching);
    leave Ctrl-C to the parent, which ends it; and no garbage collection,
    which would touch (and so copy) every object it shares with a forked parent."""
    _end_with(job.parent)
    _one_arena()
    share = job.memory_mb // job.workers
    _limit_memory(share)
    if searches and share >= 3 * SEARCH_RESERVE_MB:   # (below, the reserve would take what a small plan needs)
        keep_search_reserve(SEARCH_RESERVE_MB)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()


#: prctl's option that has the kernel signal a process when its parent ends (linux/prctl.h)
PR_SET_PDEATHSIG = 1


def _end_with(parent: int) -> None:
    """Be killed when ordo's process ``parent`` ends, however it ends. Only the
    parent ends a grounding that does not end, so a child of a parent killed
    outright (SIGKILL, the kernel's OOM killer, a lost worker's host going on)
    would otherwise go on grounding, up to its memory cap, with nobody to read
    its answer. Linux signals a process when the one that forked it ends
    (PR_SET_PDEATHSIG): ordo itself, or its fork server. The fork server ends
    when no process holds its "alive" pipe open any more, and multiprocessing
    hands that pipe to every child too (a child may start children of its
    own; ours start none): the child closes it, so that the server ends with
    ordo, and the child with the server. A parent that ended before the signal
    was asked for is seen here, and the child ends at once. Elsewhere than on
    Linux, nothing is done."""
    if not sys.platform.startswith("linux"):
        return
    # A process that never imported the fork server's module has no fork server, nor its pipe: a
    # child forked from ordo itself (the command line) is spared the import (5 ms before it grounds).
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(alive, int):
        with contextlib.suppress(OSError):
            os.close(alive)
        server._forkserver_alive_fd = None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if not _running(parent):
        os._exit(1)


def _running(pid: int) -> bool:
    """Whether process ``pid`` is running (not ended, nor a zombie waiting to be reaped). Linux."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X", "x")


#: How a child under the memory cap may end when an allocation fails where nothing reports it: the
#: C library's dynamic loader when it finds no room for a new thread's thread-local data (exit 127),
#: clingo's grounder on some of its paths (SIGSEGV; SIGBUS, SIGABRT alike). Reported as the cap,
#: most likely, having struck: the message says how the process ended.
ENDED_AT_CAP = frozenset({127, -signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT})


def _how(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"

#: mallopt's parameter for the number of malloc arenas (glibc's malloc.h)
M_ARENA_MAX = -8


def _one_arena() -> None:
    """One malloc arena for the child's threads (glibc): each thread's arena of its own sets 64 MB
    of address space aside, which the memory cap (RLIMIT_AS) counts, and a search's thread then
    found no room for its thread-local data near the cap, ending the child with the C library's
    message instead of the cap's. The child's threads are clingo's search and the facts' parse,
    which rarely allocate at the same moment. Elsewhere than glibc: nothing."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def _limit_memory(megabytes: int) -> None:
    """Cap this process's address space at what it holds now plus ``megabytes``
    (a forked child holds its parent's pages already). Linux only."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            held = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = held + megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    except (ImportError, OSError, ValueError, OverflowError):
        pass


def _plan_child(conn: Connection, job: _Job) -> None:
    """Ground, solve and explain "no plan"; send ("grounded",), then the answer. In parts:
    ("grounding",) before each part after the first, ("grounded",) after each."""
    _start_child(job)
    # The ground program and the symbols, freed only once the answer is sent (by
    # then the parent goes on, and ends this process if it is still freeing them).
    kept: list = []

    def grounded(_seconds: float) -> float:
        conn.send(("grounded",))
        return max(0.0, job.deadline - time.monotonic())

    def plan() -> tuple:
        _unchanged(job)
        if job.parts is not None:
            result = solve_parts(job.program, job.parts, timeout=job.timeout, on_grounded=grounded,
                                 on_grounding=lambda: conn.send(("grounding",)))
            return ("done", result, None, 0.0)
        result = solve(job.program, job.facts, timeout=job.timeout, keep_control=True, on_grounded=grounded)
        explanation, seconds = None, 0.0
        if result.status == "unsatisfiable" and job.explain:
            started = time.perf_counter()
            explanation = explain_no_plan(job.program, job.facts, job.model, timeout=job.timeout,
                                          control=result.control)
            seconds = time.perf_counter() - started
        kept.extend((result.control, result.symbols))
        result.control = None
        result.texts()
        result.symbols = []
        return ("done", result, explanation, seconds)

    _reply(conn, plan, job.program)


def _conflict_child(conn: Connection, job: _Job) -> None:
    """Check and ground the project's policies, search for a minimal conflict."""
    _search_child(conn, job, lambda grounded, left: conflict_here(job.project, timeout=left, facts=job.facts,
                                                                  on_grounded=grounded))


def _placement_child(conn: Connection, job: _Job) -> None:
    """Plan the resource on each other target; ("grounding",) and ("grounded",) around each grounding,
    ("partial", Alternative, only for now) as each target is decided."""
    _start_child(job)

    from planner.why import placement_here

    def work() -> tuple:
        _unchanged(job)
        assert job.program is not None and job.project is not None and job.placement is not None
        plan, resource = job.placement
        return ("done", placement_here(job.project, job.program, plan, resource,
                                       timeout=max(0.0, job.deadline - time.monotonic()), facts=job.facts,
                                       on_grounding=lambda: conn.send(("grounding",)),
                                       on_grounded=lambda: conn.send(("grounded",)),
                                       on_decided=lambda found, provisional: conn.send(
                                           ("partial", found, provisional))))

    _reply(conn, work)


def _goals_child(conn: Connection, job: _Job) -> None:
    """The fewest goals to give up."""
    _search_child(conn, job, lambda grounded, left: goals_to_drop(job.program, job.facts, job.model, timeout=left,
                                                                  on_grounded=grounded))


def _search_child(conn: Connection, job: _Job, search) -> None:
    """``search(grounded, seconds left)``, which calls ``grounded`` with its
    grounded Control: send ("grounded",), then the answer. The ground program
    is never freed: the process ends once the answer is sent."""
    _start_child(job)
    kept: list[clingo.Control] = []

    def grounded(ctl: clingo.Control) -> None:
        kept.append(ctl)
        conn.send(("grounded",))

    def work() -> tuple:
        _unchanged(job)
        return ("done", search(grounded, max(0.0, job.deadline - time.monotonic())))

    _reply(conn, work)


def _ground_child(conn: Connection, job: _Job) -> None:
    _start_child(job, searches=False)
    _reply(conn, lambda: ("done", _ground(_unchanged(job).program, job.facts, STRICT, [])[1]))


def _unchanged(job: _Job) -> _Job:
    """The job, unless a policy file changed before a fork server's child read it again."""
    if job.problem:
        raise PoliciesChanged(job.problem)
    return job


def _reply(conn: Connection, work, program: Program | None = None) -> None:
    """Send what ``work()`` returns, or what went wrong (``program``: the policies it grounds, which
    a refusal of their weights names)."""
    out_of_memory = False
    try:
        conn.send(work())
    except DiagnosticsError as exc:
        conn.send(("diagnostics", exc.diagnostics))
    except PoliciesChanged as exc:
        conn.send(("changed", str(exc)))
    except OrdoError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        out_of_memory = True
    except (RecursionError, NotImplementedError):   # RuntimeErrors of Python's, not clingo's: a bug
        raise
    except RuntimeError as exc:   # clingo's own refusals (a #minimize whose weights overflow ...)
        conn.send(("error", solver_refused(exc, program)))
    if out_of_memory:  # sent once the exception (and the ground program it holds) is gone
        conn.send(("memory",))


def _probe_child(conn: Connection, job: _Job) -> None:
    """Ground the base library with the facts, then each other policy file as
    its own program part (seeing what was grounded before it); send
    ("part", index) before each (-1: the base) and ("size", index, atoms) after."""
    _start_child(job, searches=False)
    ctl = clingo.Control(["--parallel-mode=1"], logger=lambda _code, _msg: None)
    parts = []
    with ast.ProgramBuilder(ctl) as builder:
        for index, pfile in enumerate(job.program.files):
            part = "base" if pfile.origin == "base" else f"__file{index}"
            if part != "base":
                parts.append((index, part))
            for stm in pfile.statements:
                if stm.ast_type == ast.ASTType.Program and stm.name == "base":
                    stm = stm.update(name=part)
                builder.add(stm)
    out_of_memory = False
    try:
        ctl.add("base", [], GLUE + "\n".join(job.facts))
        conn.send(("part", -1))
        ctl.ground([("base", [])])
        before = len(ctl.symbolic_atoms)
        for index, part in parts:
            conn.send(("part", index))
            ctl.ground([(part, [])])
            now = len(ctl.symbolic_atoms)
            conn.send(("size", index, now - before))
            before = now
        conn.send(("done",))
    except RuntimeError:  # an error in one part (a redefined atom): what was measured stands
        conn.send(("failed",))
    except MemoryError:
        out_of_memory = True
    if out_of_memory:
        del ctl
        conn.send(("memory",))
