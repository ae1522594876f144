"""What an earlier run left in doubt, read from a few of its events (Journal.doubt_events): the same
operations and keys as the run's state read back from all its events, whatever the events were."""

from __future__ import annotations

import random
from pathlib import Path

from executor.engine import left_in_doubt, rebuild
from executor.journal import Event, Journal

RESOURCES = ("net", "vnf", "vnf-base")
OPERATIONS = ("create", "assign", "activate")


def _random_events(rng: random.Random, n: int) -> list[Event]:
    """A run's events in a random order of what hosts write: intents, results, sends, observations,
    retries and failures (in doubt or not) of a few operations on three resources, after a
    ``run-started`` that may take some over."""
    ops = [f"{r}/{o}" for r in RESOURCES for o in OPERATIONS]
    taken = rng.sample(ops, rng.randint(0, 2))
    events = [Event("run-started", data={"snapshot": {},
                                         **({"in_doubt": {op: rng.choice([None, f"old:{op}"]) for op in taken}}
                                            if taken else {})})]
    for i in range(n):
        op = rng.choice(ops)
        kind = rng.choice(("intent", "intent", "result", "sent", "observed", "retry", "failed"))
        if kind == "intent":
            events.append(Event("intent", op=op, key=f"k{i}:{op}", data={"attempt": i, "controller": "c"}))
        elif kind == "result":
            events.append(Event("result", op=op, data={"outputs": {}}))
        elif kind == "sent":
            events.append(Event("sent", op=op, data={"outputs": {}}))
        elif kind == "observed":
            events.append(Event("observed", data={"settled": rng.sample(ops, rng.randint(0, 2))}))
        else:
            events.append(Event(kind, op=op, data={"error": "e", "scope": "resource", "target": None,
                                                   "in_doubt": rng.random() < 0.5}))
    return events


def test_the_few_events_read_give_what_all_the_events_give(journal_url: str) -> None:
    """On SQLite and on PostgreSQL (``journal_url``)."""
    rng = random.Random(12)
    with Journal(journal_url) as jr:
        for _ in range(200):
            run = jr.start_run("/p", "r.yaml", {})
            jr.append(run, _random_events(rng, rng.randint(0, 14)))
            jr.append(run, [Event("run-ended", data={"status": "aborted"})], status="aborted",
                      summary={"status": "aborted"})
            whole = rebuild(jr, run)
            events, last = jr.doubt_events(run)
            few = rebuild(jr, run, events)
            assert few.in_doubt == whole.in_doubt
            assert {op: few.keys.get(op) for op in few.in_doubt} == {op: whole.keys.get(op) for op in whole.in_doubt}
            assert last == whole.seq
            assert [ev.kind for ev in events].count("run-started") == 1


def test_a_run_that_settled_all_it_did_is_not_read_whole(tmp_path: Path) -> None:
    """A run's plans and what it settled are not read: only the operation still in doubt."""
    with Journal(tmp_path / "journal.db") as jr:
        run = jr.start_run("/p", "r.yaml", {})
        done = [e for i in range(50) for e in (Event("intent", op=f"r{i}/create", key=f"k{i}", data={"attempt": 1}),
                                              Event("result", op=f"r{i}/create", data={}))]
        jr.append(run, [Event("run-started", data={"snapshot": {}}), Event("plan", data={"number": 1}), *done,
                        Event("intent", op="r7/activate", key="k-last", data={"attempt": 1}),
                        Event("run-ended", data={"status": "aborted"})], status="aborted")
        events, _ = jr.doubt_events(run)
        assert [(ev.kind, ev.op) for ev in events] == [
            ("run-started", None), ("intent", "r7/create"), ("result", "r7/create"), ("intent", "r7/activate")]
        assert left_in_doubt(jr, False) == {"r7/activate": "k-last"}
