"""A submission planned from a state that another run on the same resources was still
writing (a race the hostile-input sweep of 6 December found): the claims check after planning
passed once that run had ended, and the run went on with the stale plan (an ``unassign`` sent
for a service the other run had just activated; a second delete of a deleted service
accepted). The engine now plans again from the state as it is then, a few times at most."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from executor.claims import run_claims
from executor.journal import ClaimError, Event, Journal
from service.engine import PLAN_ATTEMPTS, Conflict, LocalEngine, Submission


def _other_run(engine: LocalEngine, claims: list[str]) -> int:
    with Journal(engine.path) as jr:
        return jr.start_run(str(engine.project), "other.yaml", {}, claims=claims)


def _end(engine: LocalEngine, run: int) -> None:
    with Journal(engine.path) as jr:
        jr.append(run, [Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete"})


def _wait(engine: LocalEngine, run: int) -> str:
    deadline = time.monotonic() + 120
    while engine.driving(run):
        assert time.monotonic() < deadline, engine.run(run).effective_status
        time.sleep(0.05)
    return engine.run(run).status


@pytest.fixture
def engine(vfw_copy: Path) -> Iterator[LocalEngine]:
    started = LocalEngine(vfw_copy)
    started.start()
    try:
        yield started
    finally:
        started.shutdown(30)


def planning_with(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[int], None]) -> list[int]:
    """Each plan of a submission made with ``meanwhile(n)`` (n: 1 for the first) done after it,
    before the claims are checked; the plans made, counted."""
    planned = engine._planned
    calls: list[int] = []

    def planned_and_meanwhile(submission):
        out = planned(submission)
        calls.append(1)
        meanwhile(len(calls))
        return out

    monkeypatch.setattr(engine, "_planned", planned_and_meanwhile)
    return calls


def test_a_run_on_the_same_resources_ending_while_it_is_planned_makes_it_plan_again(
        engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other_run(engine, ["vfw-service"])
    # it ends after the state was read, so the claims check after the plan passes
    calls = planning_with(engine, monkeypatch, lambda n: _end(engine, other) if n == 1 else None)
    run = engine.submit(Submission(), "test").run
    assert len(calls) == 2   # planned again, from the state after the other run
    assert _wait(engine, run) == "complete"


def test_a_disjoint_run_ending_meanwhile_costs_no_second_plan(engine: LocalEngine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other_run(engine, ["lab-net"])
    calls = planning_with(engine, monkeypatch, lambda n: _end(engine, other) if n == 1 else None)
    run = engine.submit(Submission(), "test").run
    assert len(calls) == 1
    assert _wait(engine, run) == "complete"


def test_resources_changed_by_other_runs_at_every_plan_are_a_conflict(engine: LocalEngine,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A run started and ended on the same resources while each plan was made (one started after
    the state was read counts too): after PLAN_ATTEMPTS plans, 409 to try again; nothing runs."""
    calls = planning_with(engine, monkeypatch, lambda n: _end(engine, _other_run(engine, ["vfw-service"])))
    with pytest.raises(Conflict, match="went on with the resources of this request or the targets it places on while "
                                       "it was planned"):
        engine.submit(Submission(), "test")
    assert len(calls) == PLAN_ATTEMPTS
    assert [info.request for info in engine.runs()] == ["other.yaml"] * PLAN_ATTEMPTS


def test_request_files_no_run_that_can_go_on_names_are_swept_after_a_grace(engine: LocalEngine) -> None:
    """Every request to the service was kept as a file for good, the plan-only and the refused
    ones too, secrets in them (the hostile-input sweep): those no run that can still go on names
    are removed once REQUEST_GRACE has passed since their last use."""
    import os

    from service import engine as service_engine

    folder = engine.path.parent / "requests"
    lab = [{"services": {"lab": {"networks": [{"name": f"lab-net-{i}", "params": {"cidr": "10.9.0.0/24"}}]}}}
           for i in range(4)]
    old = time.time() - service_engine.REQUEST_GRACE - 60

    def saved(i: int) -> Path:
        engine._swept = -1e9   # the next save sweeps
        engine.plan(lab[i])
        return max(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)

    plan_only, used_again, of_a_run = saved(0), saved(1), saved(2)
    for path in (plan_only, used_again, of_a_run):
        os.utime(path, (old, old))
    with Journal(engine.path) as jr:   # a run that can still go on, started from the third
        run = jr.start_run(str(engine.project), "lab", {}, claims=["lab-net-2"])
        jr.append(run, [Event("run-started", data={"files": {"request": str(of_a_run)}})])
    engine._swept = -1e9
    engine.plan(lab[1])   # used again: its time is now
    assert sorted(folder.iterdir()) == sorted([used_again, of_a_run])
    fresh = saved(3)
    assert sorted(folder.iterdir()) == sorted([used_again, of_a_run, fresh])


def test_a_refused_request_leaves_no_file(engine: LocalEngine) -> None:
    """A request with problems was kept as a file for an hour: one client sending distinct invalid
    requests of 1 MB wrote 25 MB a second (the fourth sweep). Not kept; one that is there already
    (another's, in use) is left as it is."""
    from domain.errors import DiagnosticsError

    folder = engine.path.parent / "requests"
    for i in range(3):
        with pytest.raises(DiagnosticsError):
            engine.plan({"services": {"lab": {"networks": [{"name": f"n{i}", "bogus": "x" * 1000}]}}})
    assert not list(folder.glob("*.yaml"))
    good = {"services": {"lab": {"networks": [{"name": "lab-net-9", "params": {"cidr": "10.9.0.0/24"}}]}}}
    engine.plan(good)
    (kept,) = folder.glob("*.yaml")
    text = yaml.safe_load(kept.read_text())
    text["services"]["lab"]["networks"][0]["bogus"] = 1
    kept.write_text(yaml.safe_dump(text))   # refused when read again
    with pytest.raises(DiagnosticsError):
        engine.plan(good)
    assert list(folder.glob("*.yaml")) == [kept]


def test_a_request_file_another_thread_took_is_not_removed_by_a_refusal(engine: LocalEngine,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Thread A writes a request's file and is refused on reading it (the state changed meanwhile),
    after thread B read the same file well and may start a run from it: A, the last reader, removed
    it (the review of 6 December)."""
    import threading

    from domain.errors import OrdoError
    from executor import runs
    from tests.servicekit import LAB

    real, b_read = runs.load_with_journal, threading.Event()

    def load(*args, **options):
        if threading.current_thread().name == "A":
            b_read.wait(10)
            raise OrdoError("refused on this read")
        return real(*args, **options)

    monkeypatch.setattr(runs, "load_with_journal", load)
    refused: list[str] = []

    def a() -> None:
        with pytest.raises(OrdoError):
            engine._load(LAB)
        refused.append("A")

    first = threading.Thread(target=a, name="A")
    first.start()
    time.sleep(0.2)   # A has written the file and waits in its read
    project = engine._load(LAB)
    b_read.set()
    first.join(10)
    assert refused == ["A"] and project.request_path.exists()


def test_no_lock_is_kept_for_an_idempotency_key_no_submission_holds(engine: LocalEngine) -> None:
    """A lock was kept for every key ever sent, for good (the fourth sweep, by reading)."""
    from domain.errors import DiagnosticsError

    for i in range(3):
        with pytest.raises(DiagnosticsError):
            engine.submit(Submission(request={"services": {"lab": {"bogus": i}}}), "test", f"key-{i}")
    assert engine._keys == {}


def test_a_service_run_takes_over_only_what_is_in_doubt_on_its_own_resources(engine: LocalEngine) -> None:
    """A run observes what it takes over from an aborted run, and writes the records: one of the
    service's took over all of it, and wrote the record of a resource another run may hold (the
    review of 6 December). It takes over what is on the resources it claims."""
    from tests.servicekit import LAB

    with Journal(engine.path) as jr:
        old = jr.start_run(str(engine.project), "old.yaml", {}, claims=["onap-mgmt-net", "lab-net"])
        jr.append(old, [Event("intent", op="onap-mgmt-net/update", key="k-mgmt", data={"attempt": 1}),
                        Event("intent", op="lab-net/create", key="k-lab", data={"attempt": 1})])
        jr.append(old, [Event("run-ended", data={"status": "aborted"})], status="aborted")
    run = engine.submit(Submission(request=LAB), "test").run
    assert _wait(engine, run) == "complete"
    started = engine.events(run)[0]
    assert started.kind == "run-started" and started.data["in_doubt"] == {"lab-net/create": "k-lab"}


def test_a_run_started_between_the_reads_of_runs_now_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runs_now read the runs that can go on, then the last run's number, in two statements: a run
    committed between them was in neither, and changed_since missed it (the reviewer of 6 December)."""
    path = tmp_path / "journal.db"
    reader, other = Journal(path), Journal(path)
    real = Journal._runs_locked
    started: list[int] = []

    def runs_locked(self, statuses=None):
        out = real(self, statuses)
        if self is reader and not started:
            started.append(other.start_run("/p", "other.yaml", {}, claims=["svc"]))
        return out

    monkeypatch.setattr(Journal, "_runs_locked", runs_locked)
    then = reader.runs_now()
    monkeypatch.setattr(Journal, "_runs_locked", real)
    other.append(started[0], [Event("run-ended", data={"status": "complete"})], status="complete",
                 summary={"status": "complete"})
    assert reader.changed_since(then, ["svc"]) == started
    reader.close()
    other.close()


def test_a_journal_another_process_makes_between_two_reads_is_not_taken_for_foreign(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    """Its version read first (none yet), its tables after (made meanwhile, with the version, in one
    transaction): read again, the version says the tables are ordo's (the reviewer of 6 December)."""
    from executor.store.sqlite import SqliteBackend

    path = tmp_path / "journal.db"
    Journal(path).close()
    first: list[int] = []
    real = SqliteBackend.version

    def version(self) -> int:
        if not first:   # the first read: before the other process's transaction
            first.append(0)
            return 0
        return real(self)

    monkeypatch.setattr(SqliteBackend, "version", version)
    Journal(path).close()   # not refused


def _vnf_request(name: str) -> dict:
    return {"name": name, "resources": [{"name": name, "type": "vnf", "requires": {"vcpu": 8, "memory_gb": 16}}]}


def test_runs_placing_on_one_target_at_once_do_not_overcommit_it(engine: LocalEngine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two submissions each wanting 8 of a region's 10 vcpu, the second planned and run while the
    first was planned: both went to the cheapest region (the hostile-input sweep of 6 December: six
    at once put 48 vcpu there, and every later plan had no answer). A run claims the targets it
    adds load to, so the first plans again and sees the second's VNF there."""
    def meanwhile(n: int) -> None:
        if n == 1:   # after the first plan of vnf-a: vnf-b planned (n == 2) and run to its end
            other = engine.submit(Submission(request=_vnf_request("vnf-b")), "test").run
            assert _wait(engine, other) == "complete"

    calls = planning_with(engine, monkeypatch, meanwhile)
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "complete"
    assert len(calls) == 3   # vnf-a's, vnf-b's, and vnf-a's again
    state = engine.state()
    assert state["vnf-b"].placement == "region-two"   # the cheapest
    assert state["vnf-a"].placement not in (None, "region-two"), state["vnf-a"]
    assert engine.claims(run) == ["@" + state["vnf-a"].placement, "vnf-a"]


@pytest.fixture
def refusing(vfw_copy: Path) -> Iterator[LocalEngine]:
    """An engine on the vFW whose region-two refuses to assign a VNF: its run re-plans."""
    world = vfw_copy / "simulations" / "assign-refused.yaml"
    world.write_text("faults:\n  - { target: region-two, operation: assign, error: refused }\n")
    started = LocalEngine(vfw_copy, simulation=world)
    started.start()
    try:
        yield started
    finally:
        started.shutdown(30)


def _no_plan(engine: LocalEngine, run: int) -> Event:
    ended = [ev for ev in engine.events(run) if ev.kind == "no-plan"]
    assert len(ended) == 1, ended
    return ended[0]


def test_a_re_plan_does_not_place_on_a_target_another_run_holds(refusing: LocalEngine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's claims were taken when it started; a re-plan after a failure that moved a resource
    to another target placed it there even while another run held that target (each then planned
    with capacity the other was taking). The re-plan now claims what its plan adds load to, and a
    target another run holds is one it does not place on: region-two refuses, region-one (the next
    cheapest) is held, so the VNF goes to region-three, in one plan (the targets held were found one
    plan at a time before: a plan for each)."""
    import executor.engine

    engine, plans, make_plan = refusing, [], executor.engine.Executor._make_plan

    def counted(self, project, asked):
        plans.append(sorted(project.model.claimed_elsewhere))
        return make_plan(self, project, asked)

    monkeypatch.setattr(executor.engine.Executor, "_make_plan", counted)
    other = _other_run(engine, ["@region-one", "elsewhere"])
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "complete"
    assert plans == [["region-one"]]   # one plan, keeping off the target held when it began
    assert engine.state()["vnf-a"].placement == "region-three"
    assert engine.claims(run) == ["@region-three", "@region-two", "vnf-a"]
    replans = [ev for ev in engine.events(run) if ev.kind == "replan"]
    assert len(replans) == 1 and engine.claims(other) == ["@region-one", "elsewhere"]


def test_a_re_plan_with_no_target_left_but_held_ones_names_their_runs(refusing: LocalEngine) -> None:
    """region-two refuses, and other runs hold region-one and region-three: no plan, and the run
    holding the target its plan would take were they free is named first (the planner alone would
    say to relax avoid-refused-targets); not every target runs hold (there may be hundreds)."""
    engine = refusing
    first, _ = _other_run(engine, ["@region-one"]), _other_run(engine, ["@region-three"])
    _other_run(engine, [f"@region-{n:03d}" for n in range(40)])   # held, and no target of this project
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "fallout"
    ended = _no_plan(engine, run)
    summary = ended.data["explanation"]["summary"]
    assert ended.data["status"] == "held" and summary.startswith(
        f"no plan keeps off the targets other runs hold now; it would add load to region-one (run {first}): "
        "resume this run once they have ended (the planner, without them: "), summary
    assert ended.data["explanation"]["kind"] == "conflict"   # the planner's explanation is kept
    assert engine.claims(run) == ["@region-two", "vnf-a"]


def test_a_re_plan_working_on_a_resource_another_run_holds_falls_out_naming_it(
        refusing: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its new plan would work on a resource another run holds (here: as if the plan touched it): the
    run falls out, saying which run holds what, and takes none of the claims."""
    import executor.engine

    def claims_and_elsewhere(project, plan):
        return [*run_claims(project, plan), "elsewhere"]

    monkeypatch.setattr(executor.engine, "run_claims", claims_and_elsewhere)
    engine = refusing
    other = _other_run(engine, ["elsewhere"])
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "fallout"
    ended = _no_plan(engine, run)
    assert ended.data["status"] == "held" and ended.data["explanation"]["summary"] == (
        f"the new plan works on elsewhere, which run {other} holds: resume this run once that one has ended")
    assert engine.claims(run) == ["@region-two", "vnf-a"]


def _ending_other_on_region_one(engine: LocalEngine, other: list[int]) -> None:
    """The other run places vnf-b (8 of region-one's 10 vcpu) there and ends."""
    from domain.formats import ObservedResource

    vnf = ObservedResource(name="vnf-b", type="vnf", state="active", placement="region-one",
                           requires={"vcpu": 8, "memory_gb": 16})
    with Journal(engine.path) as jr:
        jr.append(other[0], [Event("run-ended", data={"status": "complete"})], state={"vnf-b": vnf},
                  status="complete", summary={"status": "complete"})


@pytest.mark.parametrize("when", ["while-it-plans", "after-the-state-is-read"])
def test_a_re_plan_reads_the_state_again_when_a_run_there_ended_meanwhile(
        refusing: LocalEngine, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """Another run placed a VNF of 8 vcpu on region-one and ended while the re-plan was made (it
    started after the re-plan read which targets runs hold), or held region-one when the re-plan read
    the state and ended before it planned (the review of 6 December found the runs going on taken
    after the read, which missed it): the claims were then free, but the plan was made without that
    VNF (region-one with 16 of its 10 vcpu). The re-plan reads the state again and plans again."""
    import executor.engine

    engine, other, plans, replans = refusing, [], [], []
    make_plan, replan, state = executor.engine.Executor._make_plan, executor.engine.Executor._replan, Journal.state

    def and_the_other_ends(self, project, asked):
        out = make_plan(self, project, asked)
        plans.append(1)
        if len(plans) == 1 and when == "while-it-plans":
            other.append(_other_run(engine, ["@region-one", "vnf-b"]))
            _ending_other_on_region_one(engine, other)
        return out

    def replanning(self, *args, **kwargs):
        replans.append(1)
        return replan(self, *args, **kwargs)

    def read_then_the_other_ends(self):   # the re-plan's first read of the state
        out = state(self)
        if replans == [1] and when == "after-the-state-is-read" and len(other) == 1:
            _ending_other_on_region_one(engine, other)
            other.append(0)
        return out

    monkeypatch.setattr(executor.engine.Executor, "_make_plan", and_the_other_ends)
    monkeypatch.setattr(executor.engine.Executor, "_replan", replanning)
    monkeypatch.setattr(Journal, "state", read_then_the_other_ends)
    if when == "after-the-state-is-read":
        other.append(_other_run(engine, ["@region-one", "vnf-b"]))
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "complete"
    assert len(plans) == 2   # the re-plan, and the same after reading the state again
    assert engine.state()["vnf-a"].placement == "region-three"


def test_a_submission_is_placed_where_no_other_run_adds_load(engine: LocalEngine) -> None:
    """Another run holds region-two, the cheapest: a VNF was planned there and refused with 409 while
    region-one was free (the sweep of 6 December). It is now planned on region-one and runs. With every
    region held it is planned as before, and refused with 409 naming the run in its way (not 422)."""
    other = _other_run(engine, ["@region-two"])
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "complete" and engine.state()["vnf-a"].placement == "region-one"
    _other_run(engine, ["@region-one", "@region-three"])
    with pytest.raises(ClaimError, match=rf"run {other} \(running\) holds target region-two"):
        engine.submit(Submission(request=_vnf_request("vnf-b")), "test")


def test_one_idempotency_key_sent_to_two_servers_at_once_answers_one_run(
        engine: LocalEngine, vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key's lock is one server's: the second server found no run for the key, planned, and was refused
    with 409 by the first's run on the same resources (the sweep of 6 December). It now reads the key
    again when refused, and answers the same run, replayed."""
    import threading

    other = LocalEngine(vfw_copy)
    other.start()
    try:
        started = threading.Event()
        planned = other._planned

        def after_the_first_started(submission):
            assert started.wait(60)
            return planned(submission)

        monkeypatch.setattr(other, "_planned", after_the_first_started)
        answers: dict[str, object] = {}
        request = Submission(request=_vnf_request("vnf-a"))

        def send() -> None:
            answers["other"] = other.submit(request, "test", "key-1")

        second = threading.Thread(target=send)
        second.start()
        answers["first"] = engine.submit(request, "test", "key-1")
        started.set()
        second.join(60)
        first, again = answers["first"], answers["other"]
        assert (first.run, first.replayed) == (again.run, False) and again.replayed
        assert _wait(engine, first.run) == "complete"
    finally:
        other.shutdown(30)


def test_a_plan_beside_held_targets_is_made_as_if_they_were_free_only_when_there_is_none() -> None:
    """A search that ran out of time with the held targets kept off proves nothing: it was made again
    as if they were free, and the run fell out saying they stood in its way (the review of 6 December)."""
    from types import SimpleNamespace

    from executor.claims import plan_beside
    from planner.core import Outcome

    project = SimpleNamespace(model=SimpleNamespace(claimed_elsewhere=set()))
    for status, expected in (("timeout", [["region-one"]]), ("no_plan", [["region-one"], []])):
        asked: list[list[str]] = []

        def make(status: str = status, asked: list = asked) -> Outcome:
            asked.append(sorted(project.model.claimed_elsewhere))
            return Outcome(status=status)

        outcome, kept_off = plan_beside(project, make, {"region-one": 7})
        assert asked == expected and outcome.status == status
        assert (kept_off is None) == (status == "timeout")


def test_a_target_a_run_claims_while_a_submission_is_planned_makes_it_plan_again_beside_it(
        engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that arrive together are planned together, all on the cheapest region: the first to
    start claimed it, and the others were refused with 409 while three regions were free (the sweep
    of 6 December: 20 at once, one accepted). A target claimed after the held ones were read is
    planned again beside; one held already when it was planned is still refused (409)."""
    others: list[int] = []

    def meanwhile(n: int) -> None:
        if n == 1:   # vnf-a planned on region-two, the cheapest: another run claims it now
            others.append(_other_run(engine, ["@region-two", "vnf-b"]))

    calls = planning_with(engine, monkeypatch, meanwhile)
    run = engine.submit(Submission(request=_vnf_request("vnf-a")), "test").run
    assert _wait(engine, run) == "complete"
    assert len(calls) == 2 and engine.state()["vnf-a"].placement == "region-one"
    _other_run(engine, ["@region-one", "@region-three"])   # every region held before it is planned
    with pytest.raises(ClaimError):
        engine.submit(Submission(request=_vnf_request("vnf-c")), "test")
    assert len(calls) == 3   # planned once (then as if free: one plan call), not again and again
