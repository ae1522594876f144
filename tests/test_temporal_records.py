"""A worker's copy of the journal's records: brought up to date with what was written since its last
read (Journal.state_since), and read again in full when some were removed meanwhile."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from domain.formats import ObservedResource
from executor.journal import Event, Journal


def _rec(name: str, state: str = "active") -> ObservedResource:
    return ObservedResource(name=name, type="network", state=state)


def test_only_the_records_written_since_are_read_and_a_removal_is_noticed(tmp_path: Path):
    pytest.importorskip("temporalio")
    from executor.temporal.activities import _refresh

    with Journal(tmp_path / "journal.db") as jr, Journal(tmp_path / "journal.db") as other:
        run = jr.start_run(str(tmp_path), "r", {})
        jr.append(run, [Event("result", op="a/create")], state={"a": _rec("a"), "b": _rec("b")})
        worker = SimpleNamespace(executor=SimpleNamespace(journal=jr, _records={}), seen=-1)
        _refresh(worker)
        assert sorted(worker.executor._records) == ["a", "b"]
        changed, count, last = jr.state_since(worker.seen)
        assert changed == {} and count == 2 and last == worker.seen
        other.append(run, [Event("result", op="c/create")], state={"c": _rec("c"), "a": _rec("a", "assigned")})
        assert set(jr.state_since(worker.seen)[0]) == {"a", "c"}   # another writer's, and only those
        _refresh(worker)
        assert worker.executor._records["a"].state == "assigned" and "c" in worker.executor._records
        other.append(run, [Event("result", op="b/delete")], state={"b": None})
        _refresh(worker)
        assert sorted(worker.executor._records) == ["a", "c"]       # removed elsewhere: read again in full
        assert worker.executor._records == jr.state()


def _two_replan_attempts(vfw_copy, monkeypatch):
    """A vFW run on one journal as Temporal's activities see it, and two workers' activities, A and B:
    (path, run, ref, since, A's re-plan command, B's, A, B). A re-plans with region-two refused (vfw goes
    to region-one), B with region-one refused: their plans differ. No server: the activities' code,
    called as Temporal would."""
    pytest.importorskip("temporalio")
    import executor.temporal.activities as activities
    from domain.project import load_project
    from executor.core.loop import begun
    from executor.engine import ApplyOptions, run_started
    from executor.temporal import Temporal
    from executor.temporal.client import reference
    from planner.core import make_plan

    monkeypatch.setattr(activities.activity, "heartbeat", lambda *args: None)
    monkeypatch.setattr(activities.activity, "is_cancelled", lambda: False)   # asked after each beat
    project = load_project(vfw_copy)
    plan = make_plan(project).plan
    path = vfw_copy / ".ordo" / "journal.db"
    path.parent.mkdir(exist_ok=True)
    options = ApplyOptions()
    with Journal(path) as jr:
        run = jr.start_run(str(vfw_copy), "", {**options.as_dict(), "engine": "temporal", "temporal": "127.0.0.1:1"})
        jr.append(run, begun(plan, run_started(project, plan, options)))
        ref = reference(project, options, jr, run, plan, Temporal("127.0.0.1:1", "ordo"))
        since = jr.events(run)[-1].seq
    cmd = {"reason": "failed", "mode": "forward", "failed": [], "refused": ["region-two"],
           "placements": dict(plan.placements), "snapshot": {}}
    return path, run, ref, since, cmd, {**cmd, "refused": ["region-one"]}, activities.Activities(), \
        activities.Activities()


def test_a_replan_whose_append_failed_is_not_kept_by_its_worker(vfw_copy, monkeypatch):
    """Worker A's re-plan attempt fails to journal (retried by Temporal); the retry on worker B writes
    plan 2. A must read plan 2 from the journal, not keep the one it never wrote."""
    from executor.journal import JournalError
    from planner.plan import Plan

    path, run, ref, since, cmd, other, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    appended = Journal.append_once

    def fails_once(self, *args, **kwargs):
        monkeypatch.setattr(Journal, "append_once", appended)
        raise JournalError("cannot write to the journal: database is locked")

    try:
        monkeypatch.setattr(Journal, "append_once", fails_once)
        with pytest.raises(JournalError):
            a.replan(ref, 1, since, cmd)
        b.replan(ref, 1, since, other)
        with Journal(path) as jr:
            (journaled,) = [Plan.from_json(e.data["plan"]) for e in jr.events(run, kinds=("replan",))]
        run_a = a._run(ref)
        assert journaled.placements["vfw"] != "region-one"
        assert a._plan(ref, run_a, 2).placements == journaled.placements
    finally:
        a.close()
        b.close()


def test_two_attempts_of_one_replan_journal_one_plan(vfw_copy, monkeypatch):
    """Attempt A of a re-plan (timed out for Temporal, still running) and its retry B both plan; B
    journals plan 2 after A last looked and before A appends. Only one plan 2 is journaled, and A
    answers with B's (the look and the write are one transaction: Journal.append_once)."""
    from planner.plan import Plan

    path, run, ref, since, cmd, other, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    appended = Journal.append_once
    answers = {}

    def b_first(self, *args, **kwargs):   # A is about to append: B's whole attempt comes first
        monkeypatch.setattr(Journal, "append_once", appended)
        answers["b"] = b.replan(ref, 1, since, other)
        return appended(self, *args, **kwargs)

    try:
        monkeypatch.setattr(Journal, "append_once", b_first)
        answers["a"] = a.replan(ref, 1, since, cmd)
        with Journal(path) as jr:
            replans = jr.events(run, kinds=("replan",))
        assert len(replans) == 1
        journaled = Plan.from_json(replans[0].data["plan"])
        assert journaled.placements["vfw"] == "region-two"   # B's
        assert answers["a"]["seq"] == answers["b"]["seq"] == replans[0].seq
        assert a._plan(ref, a._run(ref), 2).placements == journaled.placements
    finally:
        a.close()
        b.close()


def test_a_late_resume_attempt_does_not_claim_a_run_that_fell_out_again(vfw_copy, monkeypatch):
    """decide(resume): attempt B writes resume-requested and claims; the run resumes and falls out
    again; attempt A, late, finds B's event. The new fallout waits for a decision of its own: A must
    not claim the run (on SQLite a claim by a live pid would refuse the next decision)."""
    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    decision = {"action": "resume", "principal": "alice", "record": {}}
    fell_out = [Event("run-ended", data={"status": "fallout"})]
    try:
        with Journal(path) as jr:
            jr.append(run, fell_out, status="fallout", summary={"status": "fallout"})
            b.decide(ref, since, decision)
            assert jr.run(run).status == "running"
            b._forget(ref)
            jr.append(run, fell_out, status="fallout", summary={"status": "fallout"})   # fell out again
            a.decide(ref, since, decision)
            assert jr.run(run).status == "fallout"
            assert len(jr.events(run, kinds=("resume-requested",))) == 1
    finally:
        a.close()
        b.close()


def test_a_worker_redacts_the_catalogs_secrets_before_it_makes_a_controller(vfw_copy, monkeypatch):
    """A record step may be written by a worker that has called no controller (another worker made
    the call): the catalog's secret outputs are redacted there too, and a retry of it matches."""
    catalog = vfw_copy / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("  network:\n    lifecycle: standard\n",
                                                   "  network:\n    lifecycle: standard\n    secrets: [psk]\n", 1))
    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    try:
        worker = a._run(ref)
        a._project(ref, worker, 1)
        assert worker.executor.journal.redactor.event({"outputs": {"psk": "s3cr3t"}}) != {"outputs": {"psk": "s3cr3t"}}
    finally:
        a.close()
        b.close()


def test_two_attempts_of_a_runs_end_journal_one_end(vfw_copy, monkeypatch):
    """Attempt A of ``end`` looked before B wrote (has_event said no), and its summary differs from
    B's (each made from its worker's copy): still one run-ended, B's."""
    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    try:
        b.end(ref, "completed", "", since)
        monkeypatch.setattr(Journal, "has_event", lambda *args, **kwargs: False)   # A looked before B wrote
        answer = a.end(ref, "completed", "a different reason", since)
        with Journal(path) as jr:
            ended = jr.events(run, kinds=("run-ended",))
            assert answer["summary"] == jr.run(run).summary and answer["reason"] == ""   # the end that stands
        assert len(ended) == 1 and "reason" not in ended[0].data
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("when", ["before", "after the resume-requested"])
def test_a_decision_on_a_run_superseded_meanwhile_ends_the_workflow(vfw_copy, monkeypatch, when):
    """A run fell out; `ordo apply --supersede` ends it before the decision's activity writes, or between
    its resume-requested and its claim. The decision does not carry the superseded run on (nor mark it
    running): it answers with the run's end, and the workflow ends with it."""
    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    decision = {"action": "resume", "principal": "alice", "record": {}}
    appended = Journal.append_once

    def supersede(where):
        with Journal(where) as other:
            other.start_run(str(vfw_copy), "another request", {}, supersede=True)

    def superseded_after(self, *args, **kwargs):
        answer = appended(self, *args, **kwargs)
        supersede(path)
        return answer

    try:
        with Journal(path) as jr:
            jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout",
                      summary={"status": "fallout"})
        if when == "before":
            supersede(path)
        else:
            monkeypatch.setattr(Journal, "append_once", superseded_after)
        answer = a.decide(ref, since, decision)
        assert answer["status"] == "superseded" and "seq" not in answer, answer
        aborted = b.decide(ref, since, {**decision, "action": "abort"})
        assert aborted["status"] == "superseded"
        with Journal(path) as jr:
            assert jr.run(run).status == "superseded"
            assert [e.data["status"] for e in jr.events(run, kinds=("run-ended",))] == ["fallout", "superseded"]
            assert len(jr.events(run, kinds=("resume-requested",))) == (0 if when == "before" else 1)
    finally:
        a.close()
        b.close()


def test_a_sweep_names_a_database_without_its_password_and_a_worker_uses_its_own_journal(monkeypatch):
    """Sweep jobs go into Temporal's history: a journal's URL without its password or query; a planning
    worker given its own --journal plans on that."""
    pytest.importorskip("temporalio")
    import executor.temporal.activities as activities
    from executor.temporal.client import crossing

    url = "postgresql://ordo:s3cr3t-pw@db.example:5432/ordo?sslmode=verify-full&password=other"
    job = {"project": "/p", "request": None, "inventory": None, "timeout": None, "concurrency": None,
           "targets_down": [], "without_policies": []}
    jobs = crossing([{**job, "journal": url}, {**job, "journal": "/p/.ordo/journal.db"}, {**job, "journal": None}])
    assert jobs == [{**job, "journal": "postgresql://ordo@db.example:5432/ordo"},
                    {**job, "journal": "/p/.ordo/journal.db"}, {**job, "journal": None}]
    monkeypatch.setattr(activities, "plan_job", lambda job, plans: job)
    monkeypatch.setattr(activities.activity, "heartbeat", lambda *args: None)
    monkeypatch.setattr(activities.activity, "is_cancelled", lambda: False)   # asked after each beat
    own, given = activities.Activities(journal=url), activities.Activities()
    try:
        assert own.whatif(jobs[0])["journal"] == url and given.whatif(jobs[0])["journal"] == jobs[0]["journal"]
    finally:
        own.close()
        given.close()


def test_a_call_sends_the_inputs_its_intent_was_made_of_or_nothing(monkeypatch):
    """ordo.call's _sent: the inputs crossed the history redacted, with a digest of the raw ones. Resolved
    again where the call runs, they are sent when they match the digest, and the values the intent masked
    inside a text are taught to this worker's redactor; a mismatch, a missing digest, or inputs that cannot
    be resolved again are a permanent refusal with nothing applied, never a fingerprint sent."""
    pytest.importorskip("temporalio")
    from temporalio.exceptions import ApplicationError

    import executor.temporal.activities as activities
    from domain.secrets import fingerprint
    from executor.engine import SecretUnavailable
    from executor.redact import Redactor

    monkeypatch.setattr(activities, "_refresh", lambda run: None)
    raw = {"pin": "declared-pin-93c7", "note": "use tok-only-main-1234 here", "ports": {80: 8080}}
    journaled = {"pin": fingerprint(raw["pin"]), "note": "use *** here", "ports": {"80": 8080}}
    resolved = {"now": raw}

    def inputs(rs, model, res):
        if isinstance(resolved["now"], Exception):
            raise resolved["now"]
        return resolved["now"]

    redactor = Redactor(environ={})
    ex = SimpleNamespace(_project=SimpleNamespace(model=SimpleNamespace(resources={"r": object()})), _inputs=inputs,
                         journal=SimpleNamespace(redactor=redactor))
    run = SimpleNamespace(executor=ex)
    request = {"run": "1", "key": "k", "resource": "r", "type": "t", "operation": "create", "from_state": "absent",
               "to_state": "present", "inputs": journaled, "outputs": []}

    def payload(**more):
        return {"token": 7, "op": "r/create", "request": request, "inputs_digest": fingerprint(raw), **more}

    sent = activities._sent(run, {"run": 1}, payload())
    assert sent.inputs == raw
    assert redactor.text("echo tok-only-main-1234") == "echo ***"   # learnt from the masked text

    def refusal(**more) -> str:
        with pytest.raises(ApplicationError) as caught:
            activities._sent(run, {"run": 1}, payload(**more))
        (details,) = caught.value.details
        assert caught.value.non_retryable and details["error"]["code"] == "inputs-changed"
        assert details["error"]["applied"] is False and details["token"] == 7
        return str(caught.value)

    assert "carries no digest" in refusal(inputs_digest=None)
    resolved["now"] = {**raw, "pin": "another-pin"}
    assert "changed after its intent was journaled" in refusal()
    for error in (SecretUnavailable("db", "psk"), KeyError("psk")):
        resolved["now"] = error
        assert "cannot be resolved as its intent was" in refusal()


def test_a_call_that_cannot_read_the_journal_lets_its_connection_go(vfw_copy, monkeypatch):
    """A worker that serves only the controllers' queues: its call activity, which reads the journal (the
    project of a new plan, the records a secret input reads), failed on a connection a PostgreSQL restart
    had closed, and every retry failed the same (the sweep of 6 December). As the steps do, it lets the
    run's connection go on a journal error: the retry opens one of its own."""
    from executor.journal import JournalError

    _, _, ref, _, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    b.close()

    def closed(*args):
        raise JournalError("cannot read the journal: the connection is closed")

    try:
        monkeypatch.setattr(a, "_project", closed)
        with pytest.raises(JournalError):
            a.call(ref, {"plan_no": 1, "controller": "sdnc"})
        assert a._runs == {}
    finally:
        a.close()


def test_a_run_no_activity_used_for_a_while_is_let_go(vfw_copy, monkeypatch):
    """Each run a worker served kept its executor and journal connection until ``ordo.end``, which a
    worker of the controllers' queues never runs: one PostgreSQL connection per run ever called (the
    sweep of 6 December). A run idle for RUN_IDLE is let go when another is taken; one in use is kept."""
    import executor.temporal.activities as activities

    path, _, ref, _, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    b.close()
    with Journal(path) as jr:   # another run of the journal's (a worker refuses one the journal does not hold)
        jr.append(ref["run"], [Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete"})
        other = {**ref, "run": jr.start_run(str(vfw_copy), "", {"engine": "temporal", "temporal": "127.0.0.1:1"})}
    try:
        with a._use(ref) as first:
            pass
        with a._use(other):
            pass
        assert len(a._runs) == 2    # idle for less than RUN_IDLE: kept
        monkeypatch.setattr(activities, "RUN_IDLE", 0.0)
        with a._use(other):
            assert list(a._runs.values()) != [first] and first not in a._runs.values()   # let go, closed
        with a._use(ref) as again, a._use(other):
            assert again is not first and len(a._runs) == 2   # in use: kept
        # let go (a journal error) while another activity uses it: closed once that one ends, not under it
        with a._use(ref) as busy:
            a._forget(ref)
            assert busy.executor.journal.run(ref["run"]).id == ref["run"]
        with pytest.raises(Exception):   # noqa: B017 (closed: whatever the store raises)
            busy.executor.journal.run(ref["run"])
    finally:
        a.close()


def test_a_replan_whose_operations_wait_is_refused_on_temporal(vfw_copy, monkeypatch):
    """The first plan of a run on Temporal is refused when an operation waits (``wait:``, which the engine
    does not carry out yet); a re-plan's was taken, and its waits silently dropped: the operations after
    them went on before what they waited for (the sweep of 6 December). The run falls out, saying why."""
    from executor.journal import Journal as J

    catalog = vfw_copy / "catalog.yaml"
    text = catalog.read_text()
    waits = "      activate: { wait: { observe: { state: active }, every: 1, deadline: 30 } }\n"
    catalog.write_text(text.replace("      healthcheck:   { controller: cds }\n",
                                    "      healthcheck:   { controller: cds }\n" + waits))
    assert catalog.read_text() != text
    path, run, ref, since, cmd, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    try:
        answer = a.replan(ref, 1, since, cmd)
        assert answer["status"] == "error", answer
        assert "does not carry out declared waits yet (vfw/activate" in answer["explanation"]["summary"]
        with J(path) as jr:
            assert jr.events(run, kinds=("replan",)) == []
    finally:
        a.close()
        b.close()


def test_a_follower_that_lost_its_connection_holds_again_only_a_run_that_runs(tmp_path: Path, monkeypatch):
    """The process following a run on Temporal opens the journal anew after its connection was lost, and
    holds the run again. It took it with ``claim``, which also takes a run that fell out (or failed) to
    resume it: the run read as running, then as crashed once the follower exited (a review's repro)."""
    import asyncio

    pytest.importorskip("temporalio")
    from executor.journal import JournalLost
    from executor.temporal import client

    path = tmp_path / "journal.db"
    with Journal(path) as jr:
        falls = jr.start_run(str(tmp_path), "r", {})
        jr.append(falls, [Event("run-ended", data={"status": "fallout"})], status="fallout")
    lost = {"once": True}
    events = Journal.events

    def lose_once(self, *args, **kwargs):
        if lost.pop("once", False):
            raise JournalLost("cannot read the journal: the connection is closed")
        return events(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "events", lose_once)
    monkeypatch.setattr(client, "REOPEN_FOR", 5.0)
    with Journal(path) as jr:
        reader = client._Reader(jr, falls)
        try:
            assert [ev.kind for ev in asyncio.run(reader.events(0))] == ["run-ended"]
        finally:
            reader.close()
        assert jr.run(falls).status == "fallout" and not jr.hold_again(falls)
    other = tmp_path / "other.db"   # a run that runs, its holder gone: held again by this process
    with Journal(other) as jr:
        runs = jr.start_run(str(tmp_path), "r", {})
    with sqlite3.connect(other) as db:
        db.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (runs,))
    with Journal(other) as jr:
        assert jr.run(runs).effective_status == "crashed"
        assert jr.hold_again(runs) and jr.run(runs).effective_status == "running"


def test_a_follower_that_gives_up_on_the_journal_says_the_run_goes_on(tmp_path: Path, monkeypatch):
    """Past a minute without its journal, `ordo apply --engine temporal` exited 1 with the driver's
    words alone ("cannot read the journal: the connection is closed"), while its run's workflow went on
    waiting for the journal (an end-to-end check of a PostgreSQL outage)."""
    import asyncio

    pytest.importorskip("temporalio")
    from executor.journal import JournalLost
    from executor.temporal import client

    path = tmp_path / "journal.db"
    with Journal(path) as jr:
        run = jr.start_run(str(tmp_path), "r", {})

    def lost(self, *args, **kwargs):
        raise JournalLost("cannot read the journal: the connection is closed")

    monkeypatch.setattr(Journal, "events", lost)
    monkeypatch.setattr(client, "REOPEN_FOR", 0.5)
    with Journal(path) as jr:
        reader = client._Reader(jr, run)
        try:
            with pytest.raises(JournalLost) as raised:
                asyncio.run(reader.events(0))
        finally:
            reader.close()
    said = str(raised.value)
    assert said.startswith("cannot read the journal: the connection is closed; run 1 goes on in its workflow")
    assert f"`ordo abort {run}` stops it" in said and raised.value.run == run


def test_a_forged_decision_cannot_rewrite_the_end_it_journals(vfw_copy, monkeypatch):
    """The decide signal is sent by whoever may signal the workflow: its record made an aborted run's
    end event say "complete, 999 created", kind "run-started", with a 300 KB principal (a sweep's). The
    run's summary stands, the event's kind is its own, the principal and the record are bounded."""
    from executor.core.event import Event as CoreEvent

    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    forged = {"action": "abort", "principal": "\x1b[2J" + "p" * 300_000,
              "record": {"status": "complete", "reason": "all good", "created": 999, "kind": "run-started",
                         "seq": 1, "nested": {"deep": [1, 2]}, "request_id": "r-1", "bad name": "x"}}
    try:
        with Journal(path) as jr:
            jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout",
                      summary={"status": "fallout", "created": 3})
        a.decide(ref, since, forged)
        with Journal(path) as jr:
            end = jr.events(run, kinds=("run-ended",))[-1]
            assert jr.run(run).status == "aborted"
        assert end.data["status"] == "aborted" and end.data["created"] == 3
        assert end.data["reason"] == "aborted while fallout" and end.data["request_id"] == "r-1"
        assert "nested" not in end.data and "bad name" not in end.data and len(end.data["principal"]) == 200
        shown = end.as_dict()
        assert shown["kind"] == "run-ended" and shown["seq"] == end.seq
        assert CoreEvent("result", data={"kind": "x", "seq": 0}, seq=5).as_dict()["kind"] == "result"
    finally:
        a.close()
        b.close()


def test_a_run_that_ended_is_not_begun_again(vfw_copy, monkeypatch):
    """A workflow started by hand with a finished run's input (copied from its history) carried its plan
    out again, every call sent anew and a second end journaled (a sweep's): its first step refuses."""
    from temporalio.exceptions import ApplicationError

    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    try:
        with Journal(path) as jr:
            jr.append(run, [Event("run-ended", data={"status": "complete"})], status="complete",
                      summary={"status": "complete"})
        with pytest.raises(ApplicationError, match=f"run {run} is complete: its plan is not carried out again"):
            a.begin(ref)
    finally:
        a.close()
        b.close()


def test_an_activity_of_another_workflow_than_the_run_s_own_is_refused(vfw_copy, monkeypatch):
    """A workflow started by hand with a running run's input (another id) carried the run out beside its
    own, every call sent twice (a sweep's): each of its activities is refused."""
    from types import SimpleNamespace

    from temporalio.exceptions import ApplicationError

    from executor.temporal import workflow_id

    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    try:
        with Journal(path) as jr:
            own = workflow_id(jr.id, run)
        monkeypatch.setattr(activities_module().activity, "info", lambda: SimpleNamespace(workflow_id="hostile-1"))
        with pytest.raises(ApplicationError, match=f"workflow 'hostile-1' is not run {run}'s \\({own}\\)"):
            a.begin(ref)
        monkeypatch.setattr(activities_module().activity, "info", lambda: SimpleNamespace(workflow_id=own))
        assert a.begin(ref)["seq"] > 0
    finally:
        a.close()
        b.close()


def activities_module():
    import executor.temporal.activities as activities

    return activities


def test_a_worker_carries_out_only_its_projects_runs_on_temporal_that_have_not_ended(vfw_copy, monkeypatch, tmp_path):
    """A hostile sweep of the Temporal host started workflows by hand: with "carried" (the first step's checks
    skipped) an aborted run's plan was carried out again; a run of the embedded engine, live, had calls
    dispatched beside it; a reference naming another folder had that folder's catalog's controllers run.
    Each is refused for good (not retried 20 times, as a run the journal does not hold was)."""
    import shutil

    from temporalio.exceptions import ApplicationError

    path, run, ref, _, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(vfw_copy, elsewhere, ignore=shutil.ignore_patterns(".ordo"))
    from executor.temporal.activities import Activities

    serving_other = Activities(project=elsewhere)
    try:
        def refused(activities, ref, words):
            with pytest.raises(ApplicationError, match=words) as caught:
                activities.begin(ref)
            assert caught.value.non_retryable and caught.value.type == "ordo-inputs"

        refused(b, {**ref, "run": 99}, "no run 99")
        (tmp_path / "garbage.db").write_text("not a database\n" * 100)
        refused(b, {**ref, "journal": str(tmp_path / "garbage.db")}, "not an ordo journal")
        refused(b, {**ref, "journal": str(tmp_path / "none.db")}, "no journal here")
        refused(b, {**ref, "root": str(elsewhere)}, r"project is .* \(as its journal recorded it\), not the reference")
        refused(serving_other, ref, "this worker serves")
        with Journal(path) as jr:
            jr.append(run, [Event("run-ended", data={"status": "aborted"})], status="aborted",
                      summary={"status": "aborted"})
            local = jr.start_run(str(vfw_copy), "", {})   # the embedded engine's
        refused(b, {**ref, "run": local}, f"run {local} was not started on Temporal")
        with pytest.raises(ApplicationError, match=f"run {run} is aborted: its plan is not carried out again"):
            a.state(ref)   # (the first step of a workflow continued as new)
    finally:
        a.close()
        b.close()
        serving_other.close()


def test_an_abort_decided_for_a_crashed_run_says_it_was_crashed(vfw_copy, monkeypatch):
    """The decide activity wrote "aborted while fallout" whatever the run was (a crashed one: the resume
    that took it died before its decision reached the workflow); `ordo abort` says what it was (a
    layering review's): the same words now."""
    path, run, ref, since, _, _, a, _ = _two_replan_attempts(vfw_copy, monkeypatch)
    with Journal(path) as jr:
        jr._store.execute("UPDATE runs SET pid=1, host='elsewhere' WHERE id=?", (run,))   # its owner is gone
        assert jr.run(run).effective_status == "crashed"
    a.decide(ref, since, {"action": "abort", "principal": "alice", "record": {}})
    with Journal(path) as jr:
        end = jr.events(run, kinds=("run-ended",))[-1]
        assert jr.run(run).status == "aborted"
    assert end.data["reason"] == "aborted while crashed", end.data


def test_the_workflows_end_is_written_after_one_its_follower_wrote(vfw_copy, monkeypatch):
    """The follower ended the run failed (Temporal did not say how its workflow went), and the workflow went
    on to its end: that end was not written, an end standing after what it knew, and the run read failed
    (a review's). The workflow's end is written; the follower's does not count as one."""
    path, run, ref, since, _, _, a, b = _two_replan_attempts(vfw_copy, monkeypatch)
    try:
        with Journal(path) as jr:
            jr.append(run, [Event("run-ended", data={"status": "failed", "reason": "transport error",
                                                     "follower": True})], status="failed",
                      summary={"status": "failed", "reason": "transport error"})
        a.end(ref, "complete", "", since)
        b.end(ref, "complete", "", since)   # (another attempt: still one end of the workflow's)
        with Journal(path) as jr:
            ends = [ev.data.get("status") for ev in jr.events(run, kinds=("run-ended",))]
            assert ends == ["failed", "complete"] and jr.run(run).effective_status == "complete", ends
    finally:
        a.close()
        b.close()
