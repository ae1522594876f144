"""Runs that claim resources share a journal; a run without claims holds all of it. On SQLite and
on PostgreSQL (``journal_url``), and across processes."""

from __future__ import annotations

import threading

import pytest

from executor.journal import ClaimError, Event, Journal, JournalError, RequestIdTaken, target_claim
from tests.stores import Owner, eventually


def test_disjoint_claims_go_side_by_side_overlapping_ones_are_refused(journal_url: str) -> None:
    with Journal(journal_url) as jr:
        first = jr.start_run("p", "a", {}, claims=["vfw", "vfw-base"])
        second = jr.start_run("p", "b", {}, claims=["lab-net"])
        assert (first, second) == (1, 2) and jr.claims(first) == ["vfw", "vfw-base"]
        with pytest.raises(ClaimError, match=r"run 1 \(running\) holds vfw-base"):
            jr.start_run("p", "c", {}, claims=["vfw-base", "other"])
        region = target_claim("region-two")   # a run adding load to a target holds it as well
        third = jr.start_run("p", "t", {}, claims=["vnf-a", region])
        with pytest.raises(ClaimError, match=rf"run {third} \(running\) holds target region-two: wait"):
            jr.start_run("p", "u", {}, claims=["vnf-b", region])
        jr.append(third, [Event("run-ended", data={"status": "complete"})], status="complete")
        with pytest.raises(JournalError, match="in progress"):  # `ordo apply` needs the whole journal
            jr.start_run("p", "d", {})
        jr.append(first, [Event("run-ended", data={"status": "complete"})], status="complete")
        jr.check_claims(["vfw-base"])  # the claim lapsed with the run's end
        assert jr.start_run("p", "e", {}, claims=["vfw-base"]) >= 3


def test_a_crashed_owners_claims_stay_held_until_it_is_aborted(journal_url: str) -> None:
    with Owner(journal_url, claims=["vfw"]) as owner, Journal(journal_url) as jr:
        with pytest.raises(ClaimError, match=rf"run {owner.run} \(running\) holds vfw"):
            jr.check_claims(["vfw"])
        jr.check_claims(["lab-net"])
        owner.kill()
        assert eventually(lambda: jr.run(owner.run).effective_status == "crashed")
        with pytest.raises(ClaimError, match=rf"run {owner.run} \(crashed\) holds vfw"):
            jr.check_claims(["vfw"])
        jr.append(owner.run, [Event("run-ended", data={"status": "aborted"})], status="aborted")
        jr.check_claims(["vfw"])


def test_a_run_without_claims_holds_everything(journal_url: str) -> None:
    with Journal(journal_url) as jr:
        jr.start_run("p", "apply", {})
        with pytest.raises(ClaimError, match="holds the whole journal"):
            jr.start_run("p", "b", {}, claims=["anything"])
        with pytest.raises(JournalError, match="at least one"):
            jr.start_run("p", "c", {}, claims=[])


@pytest.mark.parametrize("round_", range(3))
def test_claims_hold_across_connections_racing_for_them(journal_url: str, round_: int) -> None:
    """Eight writers, each with its own connection, start at once: all claim "shared", each one a
    resource of its own. Exactly one gets "shared"; the others are refused, then get their own alone."""
    Journal(journal_url).close()
    barrier = threading.Barrier(8)
    won: list[int] = []
    refused: list[str] = []
    alone: list[int] = []

    def start(n: int) -> None:
        with Journal(journal_url) as jr:
            barrier.wait()
            try:
                won.append(jr.start_run("p", f"r{n}", {}, claims=["shared", f"own-{n}"]))
            except ClaimError as exc:
                refused.append(str(exc))
                alone.append(jr.start_run("p", f"r{n}", {}, claims=[f"own-{n}"]))
            barrier.wait()  # every run's owner is there until all have tried

    threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1 and len(refused) == 7 and len(alone) == 7
    assert all(f"run {won[0]} (running) holds shared" in text for text in refused), (won, refused)
    with Journal(journal_url) as jr:
        holders = [r.id for r in jr.runs() if "shared" in jr.claims(r.id)]
        assert holders == won


def test_a_request_id_names_one_run(journal_url):
    """A client's own request id (SO's X-ONAP-RequestID) taken by a run is refused to the next, in the
    transaction that would insert it (two servers on one journal), and nothing of that run is kept."""
    with Journal(journal_url) as jr:
        first = jr.start_run("p", "a", {"request_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}, claims=["vfw"])
        with pytest.raises(RequestIdTaken, match="RequestId: 1b4e28ba-2fa1-11d2-883f-0016d3cca427 already exists"):
            jr.start_run("p", "b", {"request_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}, claims=["lab-net"])
        assert [r.id for r in jr.runs()] == [first]
        assert jr.request("1b4e28ba-2fa1-11d2-883f-0016d3cca427")[1].id == first
        jr.check_claims(["lab-net"])   # the refused run claimed nothing


def test_a_run_extends_its_claims_all_or_none(journal_url: str) -> None:
    """What a re-plan takes beyond the claims its run started with (executor/engine.py)."""
    with Journal(journal_url) as jr:
        first = jr.start_run("p", "a", {}, claims=["vnf-a", target_claim("region-two")])
        second = jr.start_run("p", "b", {}, claims=["vnf-b", target_claim("region-one")])
        assert jr.extend_claims(first, ["vnf-a", target_claim("region-one"), target_claim("region-three")]) == {
            target_claim("region-one"): second}
        assert jr.claims(first) == ["@region-two", "vnf-a"]   # none taken
        assert jr.extend_claims(first, ["vnf-a", target_claim("region-three")]) == {}
        assert jr.claims(first) == ["@region-three", "@region-two", "vnf-a"]
        with pytest.raises(ClaimError, match=rf"run {first} \(running\) holds target region-three"):
            jr.check_claims([target_claim("region-three")])
        jr.append(second, [Event("run-ended", data={"status": "complete"})], status="complete")
        assert jr.extend_claims(first, ["vnf-b"]) == {} and "vnf-b" in jr.claims(first)
        jr.append(first, [Event("run-ended", data={"status": "complete"})], status="complete")
        whole = jr.start_run("p", "apply", {})
        assert jr.extend_claims(whole, ["anything"]) == {} and jr.claims(whole) == []


def test_a_run_with_claims_is_taken_over_while_another_process_runs_others(journal_url: str) -> None:
    """Resuming a service run was refused while any other process had a run in progress, even on other
    resources, so servers sharing a journal could not take over each other's runs while they ran their
    own (the review of 6 December). Now it is refused only by a run on its resources or on the whole
    journal, as when it started (no run starts on them while it can be resumed)."""
    with Journal(journal_url) as jr:
        cut = jr.start_run("p", "a", {"principal": "x"}, claims=["vfw"])
        jr.append(cut, [Event("interrupted", data={})], status="interrupted")
    with Owner(journal_url, claims=["lab-net"]), Journal(journal_url) as jr:
        assert jr.claim(cut).id == cut and jr.run(cut).effective_status == "running"
        jr.append(cut, [Event("run-ended", data={"status": "complete"})], status="complete")


def test_a_run_another_live_process_resumed_is_not_claimed_again(journal_url: str) -> None:
    """The claim of a run with claims checked only other runs' claims (so that servers take over each
    other's runs while they run their own), and on SQLite, whose owner is a pid, let a second process
    claim a run a live one had just resumed (the review of 6 December): both would have driven it."""
    with Journal(journal_url) as jr:
        cut = jr.start_run("p", "a", {"principal": "x"}, claims=["vfw"])
        jr.append(cut, [Event("interrupted", data={})], status="interrupted")
    with Owner(journal_url, resume=cut), Journal(journal_url) as jr:
        assert jr.run(cut).effective_status == "running"
        with pytest.raises(JournalError, match=rf"run {cut} is (in progress|carried on by another process)"):
            jr.claim(cut)
