"""Planning stops at the time limit and at the memory cap, even while grounding,
and names the policy that grounds largest (planner/bounded.py)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from domain.errors import DiagnosticsError, OrdoError
from domain.project import load_project
from planner import bounded, core
from planner.bounded import PlanningLimitError
from planner.core import load_policies, make_plan
from planner.facts import model_facts
from planner.solve import ground_only, solve
from tests.conftest import EXAMPLES, run_ordo

# 200^4 candidate bindings and none satisfies the comparison: grounding runs
# for minutes and takes no memory.
SLOW = "% slow: grounds for minutes\nn(1..200).\n:- n(A), n(B), n(C), n(D), A+B+C+D < 0.\n"
# 200^4 atoms: gigabytes within seconds.
BIG = "% big: grounds 200^4 atoms\nn(1..200).\nbig(A,B,C,D) :- n(A), n(B), n(C), n(D).\n"


def add_policy(project, name: str, text: str, settings: str = "") -> None:
    (project / "policies" / name).write_text(text)
    ordo = project / "ordo.yaml"
    body = ordo.read_text().replace("    - policies/config-after-modules.lp\n",
                                    f"    - policies/config-after-modules.lp\n    - policies/{name}\n")
    ordo.write_text(body.replace("  solve_timeout: 20            # seconds\n",
                                 "  solve_timeout: 20            # seconds\n" + settings))


def test_grounding_past_the_time_limit_exits_4_naming_the_policy(vfw_copy):
    add_policy(vfw_copy, "slow.lp", SLOW)
    started = time.monotonic()
    run = run_ordo("plan", "-C", vfw_copy, "--timeout", "1")
    took = time.monotonic() - started
    assert run.code == 4, run.text
    assert ("grounding exceeded the time limit (1 s); the policy that grounds largest is slow "
            "(policies/slow.lp)") in run.err
    assert "Fix that policy, or raise --timeout\n" in run.err   # the option that set the limit
    assert "Traceback" not in run.text
    assert took < 15  # 1 s to plan, at most 1 s to find the policy, and starting Python
    (vfw_copy / "ordo.yaml").write_text((vfw_copy / "ordo.yaml").read_text().replace(
        "solve_timeout: 20 ", "solve_timeout: 1 "))
    run = run_ordo("plan", "-C", vfw_copy)   # the limit of the project's settings: the setting is named
    assert run.code == 4 and "Fix that policy, or raise settings.solve_timeout in ordo.yaml\n" in run.err, run.text


def test_grounding_past_the_memory_cap_exits_1_naming_the_policy(vfw_copy):
    add_policy(vfw_copy, "big.lp", BIG)
    started = time.monotonic()
    run = run_ordo("plan", "-C", vfw_copy, "--memory-limit", "64", "--timeout", "60")
    took = time.monotonic() - started
    assert run.code == 1, run.text
    assert ("grounding exceeded the memory cap (64 MB); the policy that grounds largest is big "
            "(policies/big.lp)") in run.err
    assert "Fix that policy, or raise --memory-limit" in run.err   # the option that set the cap
    assert "Traceback" not in run.text
    assert took < 40


def test_explaining_a_placement_grounds_within_the_limits(vfw_copy):
    """`ordo explain plan.json RESOURCE` plans the resource elsewhere in a child
    within the limits, as a plan is: here the project changed since the plan
    was made (a policy added that grounds for minutes, then one that grounds
    gigabytes), so the explanation grounds the whole model again."""
    assert run_ordo("plan", "-C", vfw_copy, "--out", "plan.json").code == 0
    add_policy(vfw_copy, "slow.lp", SLOW)
    started = time.monotonic()
    run = run_ordo("explain", "-C", vfw_copy, "plan.json", "vfw", "--timeout", "1")
    assert run.code == 4, run.text
    assert ("grounding exceeded the time limit (1 s); the policy that grounds largest is slow "
            "(policies/slow.lp)") in run.err
    assert "Traceback" not in run.text and time.monotonic() - started < 15
    (vfw_copy / "policies" / "slow.lp").write_text("% slow: now harmless\n")
    add_policy(vfw_copy, "big.lp", BIG, settings="  memory_limit_mb: 64\n")
    run = run_ordo("explain", "-C", vfw_copy, "plan.json", "vfw", "--timeout", "60")
    assert run.code == 1, run.text
    assert ("grounding exceeded the memory cap (64 MB); the policy that grounds largest is big "
            "(policies/big.lp)") in run.err


def test_the_memory_cap_is_a_project_setting(vfw_copy):
    add_policy(vfw_copy, "big.lp", BIG, settings="  memory_limit_mb: 64\n")
    project = load_project(vfw_copy)
    assert project.settings.memory_limit_mb == 64
    with pytest.raises(PlanningLimitError) as caught:
        make_plan(project, timeout=60)
    assert caught.value.kind == "memory"
    assert "memory cap (64 MB)" in str(caught.value) and "big (policies/big.lp)" in str(caught.value)


def test_without_a_limit_striking_the_policy_with_most_atoms_is_named(vfw_copy):
    add_policy(vfw_copy, "pairs.lp", "% pairs\nm(1..60).\npair(A,B) :- m(A), m(B).\n")
    project = load_project(vfw_copy)
    program, facts = load_policies(project), model_facts(project.model)
    index = bounded._largest(program, facts, 10.0, 300)
    assert program.files[index].display == "policies/pairs.lp"


def test_check_grounds_within_the_limits_too(vfw_copy):
    add_policy(vfw_copy, "slow.lp", SLOW)
    project = load_project(vfw_copy)
    started = time.monotonic()
    with pytest.raises(DiagnosticsError) as caught:
        ground_only(load_policies(project), model_facts(project.model), timeout=1)
    assert time.monotonic() - started < 10
    [problem] = caught.value.diagnostics
    assert problem.file == "policies/slow.lp"
    assert problem.summary.startswith("grounding exceeded the time limit (1 s); the policy that grounds largest "
                                      "is slow")


def in_process(program, facts, model, *, timeout, memory_mb, deadline=None, explain=True, parts=None, workers=1,
               cancelled=None, hints=None):
    """make_plan as it was: ground and solve in this process."""
    from planner.explain import explain_no_plan
    from planner.solve import solve_parts, with_symbols

    if parts is not None:
        return with_symbols(solve_parts(program, parts, timeout=timeout)), None, 0.0
    result = solve(program, facts, timeout=timeout, keep_control=True)
    explanation = None
    if result.status == "unsatisfiable" and explain:
        explanation = explain_no_plan(program, facts, model, timeout=timeout, control=result.control)
    result.control = None
    return result, explanation, 0.0


def test_plans_are_the_same_as_in_process(vfw_copy, monkeypatch):
    # An advisory violation (its atoms cross as text and are read back) and concurrency groups.
    add_policy(vfw_copy, "groups.lp", "% groups\ngroup(R,T) :- located(R,T).\ngroup_limit(T,2) :- target(T).\n")
    ordo = vfw_copy / "ordo.yaml"
    ordo.write_text(ordo.read_text().replace("policies:\n", "policies:\n  enforcement:\n"
                                             "    capacity: { level: advisory }\n", 1))
    child = make_plan(load_project(vfw_copy)).plan
    monkeypatch.setattr(core, "solve_bounded", in_process)
    here = make_plan(load_project(vfw_copy)).plan
    assert here.violations and here.groups
    assert child.to_json() == here.to_json()


@pytest.fixture()
def in_parts(tmp_path, monkeypatch) -> Path:
    """generate.py's 200 resources, cut into parts of about 50 (PART_MIN, PART_SIZE lowered)."""
    import planner.slice as slicing
    from benchmarks.generate import write_project

    write_project(200, tmp_path / "p")
    monkeypatch.setattr(slicing, "PART_MIN", 100)
    monkeypatch.setattr(slicing, "PART_SIZE", 50)
    project = load_project(tmp_path / "p")
    assert len(slicing.prune(load_policies(project), project.model, {}, {}).parts) >= 3
    return tmp_path / "p"


def workers(root: Path, count: int) -> None:
    ordo = root / "ordo.yaml"
    ordo.write_text(ordo.read_text().replace("settings:\n", f"settings:\n  planning_workers: {count}\n", 1))


def test_plans_in_parts_are_the_same_as_in_process(in_parts, monkeypatch):
    child = make_plan(load_project(in_parts)).plan   # two children, by default on this machine's CPUs
    monkeypatch.setattr(core, "solve_bounded", in_process)
    here = make_plan(load_project(in_parts)).plan
    assert child.status == "optimal" and child.to_json() == here.to_json()


def test_parts_solved_by_one_or_several_children_give_the_same_plan(in_parts, monkeypatch):
    shares = []
    real = bounded._shares
    monkeypatch.setattr(bounded, "_shares", lambda parts, n: shares.append(real(parts, n)) or shares[-1])
    plans = []
    for count in (1, 3, 2):
        workers(in_parts, count)
        body = json.loads(make_plan(load_project(in_parts)).plan.to_json())
        del body["digest"], body["inputs"]   # (ordo.yaml differs)
        plans.append(body)
        (in_parts / "ordo.yaml").write_text((in_parts / "ordo.yaml").read_text().replace(
            f"  planning_workers: {count}\n", ""))
    assert plans[0] == plans[1] == plans[2]
    cpus = len(os.sched_getaffinity(0))   # no more children than CPUs; one worker: one child, no shares
    assert [len(s) for s in shares] == [n for n in (min(3, cpus), min(2, cpus)) if n > 1]


def test_shares_are_runs_of_consecutive_parts_of_about_as_many_facts():
    def sizes(counts, workers):
        parts = [["a"] * n for n in counts]
        shares = bounded._shares(parts, workers)
        assert [p for share in shares for p in share] == parts
        return [sum(map(len, share)) for share in shares]

    assert sizes((5, 1, 1, 1, 4, 4), 2) == [8, 8]
    assert sizes((10, 10, 10, 70), 2) == [30, 70] and sizes((1, 1, 100), 2) == [2, 100]
    assert sizes((30, 30, 40), 3) == [30, 30, 40]
    assert len(sizes((5, 1, 1, 1, 4, 4), 10)) == 6 and sizes((7,), 4) == [7]


def test_several_children_need_a_gigabyte_each_and_a_cpu(vfw_copy):
    project = load_project(vfw_copy)
    cpus = len(os.sched_getaffinity(0))
    assert bounded.workers_for(project, 4096) == min(2, cpus)
    assert bounded.workers_for(project, 1500) == 1 and bounded.workers_for(project, 64) == 1


def _stand_in(conn, job):
    """A planning child that does what its job's ``problem`` names (for _answers)."""
    if job.problem == "error at once":
        conn.send(("error", "the second child failed"))
        return
    if job.problem == "grounding forever":
        conn.send(("grounded",))
        conn.send(("grounding",))   # the next part: its grounding never ends
    if job.problem == "decided one, then grounding forever":
        from planner.why import Alternative

        conn.send(("partial", Alternative("region-a", "plan", cost=((1, 3),), optimal=True), False))
        conn.send(("grounding",))
    if job.problem in ("exit 127", "segfault"):   # as the C library and clingo end a child at the cap
        conn.send(("grounded",))
        if job.problem == "exit 127":
            os._exit(127)
        import faulthandler

        faulthandler.disable()   # (pytest's, inherited: it would print the test's stack as a crash's)
        os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(60)
    conn.send(("done", None))


def stand_in(problem: str, seconds: float) -> bounded._Job:
    return bounded._Job(None, [], None, time.monotonic() + seconds, seconds, 512, problem=problem)


def test_the_first_child_to_fail_is_heard_at_once_not_after_the_others():
    started = time.monotonic()
    with pytest.raises(OrdoError, match="the second child failed"):
        bounded._answers(_stand_in, [stand_in("slow", 30), stand_in("error at once", 30)], probe=False)
    assert time.monotonic() - started < 20   # not after the first child's 60 s


def test_a_later_part_grounding_past_the_deadline_is_stopped_at_the_deadline():
    started = time.monotonic()
    with pytest.raises(PlanningLimitError, match="time limit"):
        bounded._answers(_stand_in, [stand_in("grounding forever", 1)], probe=False)
    assert time.monotonic() - started < 20   # not the deadline + the limit + the grace given to a search


def test_what_a_child_decided_before_a_limit_struck_is_kept_and_nothing_probed():
    """explain plan.json RESOURCE: the targets decided before a later grounding
    ran past the deadline stand (planner.bounded.placement_bounded)."""
    decided = []
    started = time.monotonic()
    with pytest.raises(PlanningLimitError, match=r"^the time limit \(1 s\) struck; raise "):
        bounded._answers(_stand_in, [stand_in("decided one, then grounding forever", 1)],
                         probe=lambda: not decided, on_partial=lambda message: decided.append(message[1]))
    assert [(alt.target, alt.status) for alt in decided] == [("region-a", "plan")]
    assert time.monotonic() - started < 15   # no probe child


def test_the_first_part_that_fails_decides_as_one_child_would():
    from planner.solve import SolveResult, join

    ok = SolveResult(status="optimal", cost=[3], priorities=[1], bound=[3], shown=['place("a","t")'])
    late, none = SolveResult(status="timeout"), SolveResult(status="unsatisfiable")
    assert join([ok, late, none], True).status == "timeout"
    assert join([ok, none, late], True).status == "unsatisfiable"
    both = join([ok, SolveResult(status="satisfiable", cost=[4], priorities=[1], bound=[2], shown=[])], True)
    assert (both.status, both.cost, both.bound) == ("satisfiable", [7], [5])


def test_a_time_limit_in_one_child_of_several_names_the_limit(in_parts):
    with pytest.raises(PlanningLimitError) as caught:
        make_plan(load_project(in_parts), timeout=0.001)
    assert caught.value.kind == "time" and "time limit (0.001 s)" in str(caught.value)


@pytest.mark.parametrize("origin", ["library", "project", "base", "none"])
def test_a_limit_asks_to_fix_only_a_policy_of_the_project(vfw_copy, monkeypatch, origin):
    """Where the policy that grounds largest is one of ordo's own, the model is
    that large for the limit: nobody can fix that policy, so only the limit is
    offered; as where it is the base library with the facts, or not known."""
    project = load_project(vfw_copy)
    program = load_policies(project)
    index = {"base": -1, "none": None}.get(origin) if origin in ("base", "none") else \
        next(i for i, f in enumerate(program.files) if f.origin == origin)
    monkeypatch.setattr(bounded, "_largest", lambda *args: index)
    with pytest.raises(PlanningLimitError) as caught:
        make_plan(project, timeout=0.001, program=program)
    message = str(caught.value)
    if origin == "project":
        assert f"the policy that grounds largest is {program.files[index].meta.name}" in message
        assert "Fix that policy, or raise " in message and "ordo's own" not in message
        return
    assert "Fix that policy" not in message and ". Raise " in message
    if origin == "library":
        assert f"the policy that grounds largest is {program.files[index].meta.name}" in message
        assert "one of ordo's own policies (the model is that large for this limit). Raise " in message
    else:
        assert ("none: the base library" if origin == "base" else "not known") in message


def test_a_process_with_threads_plans_parts_through_a_fork_server(in_parts):
    single = make_plan(load_project(in_parts)).plan.to_json()
    with another_thread():
        assert bounded._context().get_start_method() == "forkserver"
        assert make_plan(load_project(in_parts)).plan.to_json() == single


def test_explanations_are_the_same_as_in_process(vfw_copy, monkeypatch):
    args = ("requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    child = make_plan(load_project(vfw_copy, *args))
    monkeypatch.setattr(core, "solve_bounded", in_process)
    here = make_plan(load_project(vfw_copy, *args))
    assert child.status == here.status == "no_plan"
    assert child.explanation.conflicts
    assert child.explanation.to_dict() == here.explanation.to_dict()


def test_a_sliced_no_plan_is_solved_again_by_the_same_deadline(tmp_path, monkeypatch):
    # The slice's "no plan" is explained on the whole model, so the slice's child does not explain it,
    # and the whole model's solve has what is left of the time limit, not a limit of its own.
    from tests.test_slice import library_only

    root = tmp_path / "vfw"
    library_only(EXAMPLES / "vfw", root)   # stock policies only: the request's slice is solved
    request = (root / "requests/instantiate.yaml").read_text()
    (root / "requests/too-big.yaml").write_text(request.replace(
        "    vnfs:\n", "    vnfs:\n      - name: vbig\n        requires: { vcpu: 80, memory_gb: 4 }\n", 1))
    calls = []
    real = core.solve_bounded

    def recorded(program, facts, model, **kwargs):
        calls.append((len(facts), kwargs["timeout"], kwargs["deadline"], kwargs["explain"]))
        return real(program, facts, model, **kwargs)

    monkeypatch.setattr(core, "solve_bounded", recorded)
    started = time.monotonic()
    outcome = make_plan(load_project(root, "requests/too-big.yaml", "inventory-deployed.yaml"), timeout=45)
    assert outcome.status == "no_plan"
    assert [c.policy for c in outcome.explanation.conflicts] == ["capacity"]
    (sliced, _, first, explained), (whole, timeout, second, explained_whole) = calls
    assert sliced < whole and not explained and explained_whole
    assert timeout == 45 and first == second and started < first - 45 < time.monotonic()


@contextlib.contextmanager
def another_thread():
    """A second thread running while the block runs: planning children then come from the fork server."""
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def test_a_process_with_threads_explains_a_placement_through_a_fork_server(vfw_copy):
    from planner.why import explain_placement

    plan = make_plan(load_project(vfw_copy)).plan
    alone = explain_placement(load_project(vfw_copy), plan, "vfw", timeout=20)
    assert len(alone.alternatives) == 2 and all(alt.status == "plan" for alt in alone.alternatives)
    with another_thread():
        assert bounded._context().get_start_method() == "forkserver"
        assert explain_placement(load_project(vfw_copy), plan, "vfw", timeout=20) == alone


def test_a_process_with_threads_plans_through_a_fork_server(vfw_copy):
    single = make_plan(load_project(vfw_copy)).plan.to_json()
    with another_thread():
        assert bounded._context().get_start_method() == "forkserver"
        assert make_plan(load_project(vfw_copy)).plan.to_json() == single
    assert bounded._context().get_start_method() == "fork"


def test_a_policy_changed_before_the_fork_server_reads_it_is_refused(vfw_copy):
    project = load_project(vfw_copy)
    job = bounded._Job(load_policies(project), [], None, 0.0, 1.0, 100)
    assert pickle.loads(pickle.dumps(job)).problem == ""
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    policy.write_text(policy.read_text() + "\n% changed\n")
    assert "changed while planning" in pickle.loads(pickle.dumps(job)).problem


def test_the_default_memory_cap():
    assert 256 <= bounded.default_memory_mb() <= 4096


def test_the_fork_server_imports_ordo_not_a_policies_folder_in_the_current_folder(vfw_copy, tmp_path):
    """Python 3.11's fork server puts the current folder first on its module
    path: in a project folder with its own policies/, that folder stood in for
    ordo's package (with an editable install) and every re-plan failed. The
    script runs from a file elsewhere, as the console script does."""
    script = tmp_path / "plan_with_a_thread.py"
    script.write_text(textwrap.dedent("""
        import threading
        from domain.project import load_project
        from planner.core import make_plan
        if __name__ == "__main__":
            stop = threading.Event()
            threading.Thread(target=stop.wait, daemon=True).start()
            print(make_plan(load_project(".")).status)
            stop.set()
    """))
    proc = subprocess.run([sys.executable, str(script)], cwd=vfw_copy, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["optimal"]


def test_explain_finds_the_goals_to_give_up_in_a_child_within_the_limits(vfw_copy, monkeypatch):
    """`ordo explain`'s second answer (the goals to give up) is searched in a
    child under the same limits as the plan: the same goals as in-process,
    and None, with no policy probed, when a limit strikes or the child ends
    without an answer."""
    from planner.explain import goals_to_drop

    project = load_project(vfw_copy, "requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    program, facts = load_policies(project), model_facts(project.model)
    here = goals_to_drop(program, facts, project.model, timeout=10)
    assert here == [("onap-mgmt-net", "absent", "requests/delete-mgmt-net.yaml:5")]
    assert bounded.goals_bounded(program, facts, project.model, timeout=10, memory_mb=1024) == here

    def probed(*_args):
        raise AssertionError("no policy is probed for the goals")

    monkeypatch.setattr(bounded, "_largest", probed)
    with monkeypatch.context() as patch:   # the child (forked: it has the patch too) dies without an answer
        patch.setattr(bounded, "goals_to_drop", lambda *_a, **_k: os._exit(9))
        assert bounded._context().get_start_method() == "fork"
        assert bounded.goals_bounded(program, facts, project.model, timeout=10, memory_mb=1024) is None
    add_policy(vfw_copy, "slow.lp", SLOW)
    project = load_project(vfw_copy, "requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    program = load_policies(project)
    assert bounded.goals_bounded(program, facts, project.model, timeout=1, memory_mb=1024) is None
    (vfw_copy / "policies" / "slow.lp").write_text("% slow: now harmless\n")
    add_policy(vfw_copy, "big.lp", BIG)
    program = load_policies(load_project(vfw_copy, "requests/delete-mgmt-net.yaml", "inventory-deployed.yaml"))
    started = time.monotonic()
    assert bounded.goals_bounded(program, facts, project.model, timeout=60, memory_mb=64) is None
    assert time.monotonic() - started < 30   # the memory cap struck, not the time limit


def test_a_policy_changed_before_the_fork_server_reads_it_is_refused_by_every_child(vfw_copy):
    from domain.errors import OrdoError

    project = load_project(vfw_copy, "requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    program, facts = load_policies(project), model_facts(project.model)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        assert bounded._context().get_start_method() == "forkserver"
        policy = vfw_copy / "policies" / "config-after-modules.lp"
        policy.write_text(policy.read_text() + "\n% changed\n")
        for call in (lambda: bounded.goals_bounded(program, facts, project.model, timeout=10, memory_mb=1024),
                     lambda: bounded.ground_bounded(program, facts, timeout=10, memory_mb=1024)):
            with pytest.raises(OrdoError, match="changed while planning"):
                call()
    finally:
        stop.set()
        worker.join()


def test_a_process_with_threads_searches_a_conflict_through_the_fork_server_within_the_limits(vfw_copy):
    from planner.explain import project_conflict

    args = ("requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    single = project_conflict(load_project(vfw_copy, *args), timeout=30).to_dict()
    add_policy(vfw_copy, "big.lp", BIG, settings="  memory_limit_mb: 64\n")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        assert bounded._context().get_start_method() == "forkserver"
        (vfw_copy / "policies" / "big.lp").write_text("% big: now harmless\n")
        assert project_conflict(load_project(vfw_copy, *args), timeout=30).to_dict() == single
        (vfw_copy / "policies" / "big.lp").write_text(BIG)
        with pytest.raises(PlanningLimitError) as caught:
            project_conflict(load_project(vfw_copy, *args), timeout=30)
        assert caught.value.kind == "memory" and caught.value.file == "policies/big.lp"
    finally:
        stop.set()
        worker.join()


def _zombies() -> int:
    """This process's children that ended and were not reaped (Linux)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        count += fields[0] == "Z" and int(fields[1]) == os.getpid()
    return count


def test_children_killed_and_not_waited_for_do_not_pile_up(vfw_copy):
    """A planning child still alive when its answer is in is killed and not
    waited for (its memory goes back on another core); multiprocessing reaps
    it when the next child starts, so however many plans, at most the last
    one or two are left."""
    project = load_project(vfw_copy)
    assert bounded._context().get_start_method() == "fork"   # a fork server reaps its children itself
    multiprocessing.active_children()   # reaps what ended
    before = _zombies()                 # another test's, not reaped
    for _ in range(6):
        assert make_plan(project).plan is not None
        # the last child, and the one before it if it was still ending when the last started
        assert _zombies() <= before + 2
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:   # reaps what ended
        time.sleep(0.05)
    assert _zombies() <= before


# A process that plans vfw_copy with SLOW added: with a thread of its own
# ("threads"), its planning child comes from its fork server.
ASKER = """
import sys, threading, time
from pathlib import Path
if sys.argv[2] == "threads":
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
from domain.project import load_project
from planner.core import make_plan
make_plan(load_project(Path(sys.argv[1])), timeout=300)
"""


def _state(stat: Path) -> tuple[str, int] | None:
    """A process's state and parent, from its /proc/PID/stat; None once it has gone."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    state, parent = text[text.rindex(")") + 2:].split()[:2]
    return state, int(parent)


def _running(pid: int) -> bool:
    found = _state(Path(f"/proc/{pid}/stat"))
    return found is not None and found[0] not in "ZXx"


def _descendants(pid: int) -> set[int]:
    """The processes running under ``pid``, children and theirs (Linux's /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        if (found := _state(stat)) is not None and found[0] not in "ZXx":
            children.setdefault(found[1], []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        found.update(more := children.get(todo.pop(), []))
        todo += more
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child ends with its parent on Linux only")
@pytest.mark.parametrize(("asker", "processes"), [("one-thread", 1), ("threads", 3)])
def test_a_planning_child_ends_with_the_process_that_asked_for_it(vfw_copy, asker, processes):
    """ordo killed outright (SIGKILL, the OOM killer) ends nothing itself, and only the parent ends a
    grounding: its planning child, forked by it or by its fork server, must not go on grounding a rule
    for minutes with nobody to read its answer."""
    add_policy(vfw_copy, "slow.lp", SLOW)
    proc = subprocess.Popen([sys.executable, "-c", ASKER, str(vfw_copy), asker], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # the planning child; with threads, multiprocessing's resource tracker and fork server too
        while len(_descendants(proc.pid)) < processes:
            assert proc.poll() is None and time.monotonic() < deadline, "no planning child"
            time.sleep(0.05)
        time.sleep(1.0)   # grounding
        under = _descendants(proc.pid)
        assert len(under) == processes and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    gone_by = time.monotonic() + 10
    while (left := {pid for pid in under if _running(pid)}) and time.monotonic() < gone_by:
        time.sleep(0.05)
    for pid in left:   # not to leave them grounding after the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    assert not left


@pytest.mark.parametrize(("problem", "how"), [("exit 127", "exit code 127"), ("segfault", "signal 11")])
def test_a_child_ended_by_the_c_library_or_clingo_at_the_cap_is_the_memory_cap(problem: str, how: str) -> None:
    """Near the memory cap the C library ends a child that finds no room for a new thread's
    thread-local data (exit 127), and clingo's grounder may end with SIGSEGV: they were "the planning
    process ended unexpectedly (exit code 127)", naming nothing to raise (the sweep of 6 December)."""
    with pytest.raises(PlanningLimitError) as raised:
        bounded._answers(_stand_in, [stand_in(problem, 30)], probe=False)
    assert raised.value.kind == "memory"
    assert str(raised.value) == (f"the planning process ended with {how}, most likely at the memory cap (512 MB) "
                                 "(clingo and the C library end it so when an allocation fails there); raise "
                                 "settings.memory_limit_mb in ordo.yaml")


def _search_at_the_cap(conn, job) -> None:
    """Ground a small program, take every byte the cap leaves, then search: the search's thread
    needs a stack and thread-local data of its own."""
    from planner.solve import SolveResult, _args, _ground, _run

    bounded._start_child(job)
    ctl, _ = _ground(job.program, job.facts, "", _args(False))
    hoard = []
    with contextlib.suppress(MemoryError):
        while True:
            hoard.append(bytearray(1 << 20))
    with contextlib.suppress(MemoryError):
        while True:
            hoard.append(bytearray(1 << 12))
    try:
        finished, outcome = _run(ctl, SolveResult(status="timeout"), 10)
        answer = ("done", finished and outcome.satisfiable)
    except MemoryError:
        answer = ("done", "memory")
    hoard.clear()
    conn.send(answer)


def test_a_search_starts_when_its_grounding_left_nothing_under_the_cap(vfw_copy) -> None:
    """A planning child keeps address space aside for its search's thread (planner.solve.searching)
    and its threads share one malloc arena: a grounding that took all the rest of the cap left the
    thread no room, and the C library ended the child (exit 127)."""
    project = load_project(vfw_copy)
    job = bounded._Job(load_policies(project), model_facts(project.model), project.model,
                       time.monotonic() + 30, 30, 64)
    assert bounded._answers(_search_at_the_cap, [job], probe=False)[0] == ("done", True)


def test_parts_left_no_time_say_how_long_their_grounding_would_take(vfw_copy) -> None:
    """A plan in parts stopped before its time limit when grounding the parts left would not end
    in time, and said only "no plan within 2s" (the sweep of 6 December: after 1.78 s of 2). The
    answer now says how long their grounding was expected to take."""
    from planner.solve import solve_parts

    project = load_project(vfw_copy)
    facts = model_facts(project.model)
    cut = solve_parts(load_policies(project), [facts, facts, facts], timeout=0.001)
    assert cut.status == "timeout" and cut.needs > 0
    assert solve_parts(load_policies(project), [facts], timeout=0.001).needs == 0   # nothing left to ground


def test_whatif_says_whether_the_baseline_or_the_scenario_struck_the_limit(vfw_copy):
    """--timeout bounds each of the two plans: the message says which one it stopped."""
    slow = vfw_copy / "slow.lp"
    slow.write_text(SLOW)
    run = run_ordo("whatif", "-C", vfw_copy, "--with-policy", slow, "--timeout", "1")
    assert run.code == 4, run.text
    assert "error: planning the scenario: grounding exceeded the time limit (1 s); the policy that grounds " \
           "largest is slow (slow.lp)" in run.err, run.text
    add_policy(vfw_copy, "slow.lp", SLOW)
    run = run_ordo("whatif", "-C", vfw_copy, "--without-policy", "slow", "--timeout", "1")
    assert run.code == 4, run.text
    assert "error: planning the baseline: grounding exceeded the time limit (1 s)" in run.err, run.text
    assert "Traceback" not in run.text
