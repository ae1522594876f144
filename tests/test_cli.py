"""The CLI as an operator uses it: output, files, exit codes, determinism."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from planner.plan import Plan
from tests.conftest import VFW, run_ordo, run_ordo_process


def test_plan_prints_waves_and_summary():
    run = run_ordo("plan", "-C", VFW)
    assert run.code == 0, run.err
    assert "Wave 1\n  + service.vfw-service" in run.out
    assert "Plan: 10 to create, 0 to change, 0 to delete." in run.out
    assert "vfw -> region-two" in run.out


def test_delete_plan_uses_minus():
    run = run_ordo("plan", "-C", VFW, VFW / "requests/delete.yaml", "--inventory", VFW / "inventory-deployed.yaml")
    assert run.code == 0, run.err
    assert "  - vf-module.vfw-base" in run.out
    assert "Plan: 0 to create, 0 to change, 10 to delete." in run.out


@pytest.mark.parametrize("args,code", [
    ([], 2),
    (["--inventory", VFW / "inventory-deployed.yaml"], 0),
    ([VFW / "requests/delete-mgmt-net.yaml", "--inventory", VFW / "inventory-deployed.yaml"], 3),
])
def test_detailed_exitcode(args, code):
    run = run_ordo("plan", "-C", VFW, "--detailed-exitcode", *args)
    assert run.code == code, run.text
    if code == 0:
        assert "No changes." in run.out


def test_no_plan_explains_and_exits_3():
    run = run_ordo("plan", "-C", VFW, VFW / "requests/delete-mgmt-net.yaml",
                   "--inventory", VFW / "inventory-deployed.yaml")
    assert run.code == 3
    assert "No plan exists" in run.err
    assert "protected-resources (<library>/protected-resources.lp:8)" in run.err
    assert "violated for: R=onap-mgmt-net" in run.err
    assert "The request asks for:\n    onap-mgmt-net: absent  (requests/delete-mgmt-net.yaml:5)" in run.err
    assert "Traceback" not in run.text


def test_plan_is_byte_identical_across_processes(tmp_path):
    # this process (its own hash seed) and two others with other seeds
    runs = [run_ordo("plan", "-C", VFW, "--format", "json")] + [
        run_ordo_process("plan", "-C", VFW, "--format", "json", env={"PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    assert [run.code for run in runs] == [0, 0, 0], [run.err for run in runs]
    assert runs[0].out == runs[1].out == runs[2].out


def test_saved_plan_round_trips(tmp_path):
    out = tmp_path / "plan.json"
    run = run_ordo("plan", "-C", VFW, "--out", out)
    assert run.code == 0, run.err
    plan = Plan.from_json(out.read_text())
    assert plan.to_json() == out.read_text()
    assert plan.format_version == "1.2"
    assert (plan.request_file, plan.inventory_file) == ("requests/instantiate.yaml", "inventory.yaml")
    assert plan.digest.startswith("sha256:")
    paths = [i.path for i in plan.inputs]
    assert "catalog.yaml" in paths and "<base>/ordering.lp" in paths and "<library>/capacity.lp" in paths
    assert len(plan.operations) == 32 and all(op.reason for op in plan.operations)


def test_digest_follows_every_input(vfw_copy):
    first = json.loads(run_ordo("plan", "-C", vfw_copy, "--format", "json").out)["digest"]
    policy = vfw_copy / "policies/config-after-modules.lp"
    policy.write_text(policy.read_text() + "\n% a comment changes the digest too\n")
    second = json.loads(run_ordo("plan", "-C", vfw_copy, "--format", "json").out)["digest"]
    assert first != second


def test_a_mermaid_diagram_larger_than_mermaid_draws_is_said_to_be(tmp_path) -> None:
    """Past 500 edges Mermaid refuses a diagram ("Edge limit exceeded"), from some 150 resources: the
    command wrote one without a word (the scale sweep of 7 December)."""
    from benchmarks.generate import write_project

    write_project(150, tmp_path / "p")
    run = run_ordo("plan", "-C", tmp_path / "p", "--format", "mermaid")
    assert run.code == 0 and run.out.startswith("flowchart LR") and run.out.count("-->") > 500, run.err
    assert "Warning: the diagram has " in run.err and "edges, more than the 500 Mermaid draws (maxEdges) unless " \
           "the page that draws it raises that limit; `--format dot` draws a plan of any size." in run.err, run.err
    small = run_ordo("plan", "-C", VFW, "--format", "mermaid")
    assert small.code == 0 and "Warning" not in small.err


def test_dot_and_mermaid():
    dot = run_ordo("plan", "-C", VFW, "--format", "dot")
    assert dot.code == 0 and dot.out.startswith("digraph plan {")
    assert '"network-a/assign"' not in dot.out
    assert '"vfw-base/activate" -> "vfw/config-deploy";' in dot.out
    mermaid = run_ordo("plan", "-C", VFW, "--format", "mermaid")
    assert mermaid.code == 0 and mermaid.out.startswith("flowchart LR")
    assert mermaid.out.count("-->") == dot.out.count("->")


def test_schema_is_json_schema(tmp_path):
    run = run_ordo("schema", "request")
    body = json.loads(run.out)
    assert body["title"] == "ordo request file"
    assert "services" in body["properties"]
    run = run_ordo("schema", "--out-dir", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "catalog.schema.json", "guards.schema.json", "inventory.schema.json", "project.schema.json",
        "request.schema.json"]
    # every bound in JSON Schema's words: pydantic's "le", "ge" ... (a field of a number or null) were read by
    # no editor, and the bound went unchecked as one typed (a docs sweep's)
    def bounds(node, where=""):
        if isinstance(node, dict):
            if node.get("type") in ("integer", "number"):
                assert not {"le", "ge", "lt", "gt"} & set(node), where
            for key, value in node.items():
                yield from bounds(value, f"{where}/{key}")
            yield from (where for key in node if key in ("minimum", "maximum", "exclusiveMinimum"))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from bounds(value, f"{where}[{i}]")
    found = [where for path in tmp_path.glob("*.json") for where in bounds(json.loads(path.read_text()), path.name)]
    assert "project.schema.json/$defs/SettingsSpec/properties/planning_workers/anyOf[0]" in found, found
    # a kind named: that one only (every one was written: the CLI sweep of 6 December)
    run = run_ordo("schema", "request", "--out-dir", tmp_path / "one")
    assert run.code == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["request.schema.json"], run.text


def test_usage_error_exits_1_without_traceback():
    run = run_ordo("plan", "--format", "yaml")
    assert run.code == 1
    assert "Invalid value for '--format'" in run.err
    assert "Traceback" not in run.text


def test_missing_request_file():
    run = run_ordo("plan", "-C", VFW, VFW / "requests/nope.yaml")
    assert run.code == 1
    assert "requests/nope.yaml: error: file not found" in run.err


def test_solver_timeout_exits_4(vfw_copy):
    # Pigeon-hole: 13 VNF-like pigeons in 12 holes, hopeless for a CDCL solver.
    (vfw_copy / "policies" / "pigeons.lp").write_text(
        "% pigeons: a deliberately hard puzzle, to hit the time limit.\n"
        "{ hole(P,H) : H = 1..12 } = 1 :- P = 1..13.\n"
        ":- hole(P1,H), hole(P2,H), P1 < P2.\n")
    run = run_ordo("plan", "-C", vfw_copy, "--policy", vfw_copy / "policies/pigeons.lp", "--timeout", "0.5")
    assert run.code == 4, run.text
    assert "Timeout: the solver found no plan within 0.5s" in run.err


def test_a_baseline_with_no_plan_in_time_exits_4_in_sweep_and_whatif(vfw_copy):
    """sweep said "Baseline: timeout" and exited 0 (its JSON too), whatif printed "no plan (the solver
    timed out)" for its baseline and exited 0 as its scenario had one: a CI job read "fine" (the CLI
    contract sweep)."""
    (vfw_copy / "policies" / "pigeons.lp").write_text(
        "%@ name: pigeons\n%@ description: a deliberately hard puzzle, to hit the time limit\n%@ owner: tests\n"
        "%@ enforcement: hard\n{ hole(P,H) : H = 1..12 } = 1 :- P = 1..13.\n:- hole(P1,H), hole(P2,H), P1 < P2.\n")
    config = vfw_copy / "ordo.yaml"
    config.write_text(config.read_text().replace("    - policies/config-after-modules.lp\n",
                                                 "    - policies/config-after-modules.lp\n    - policies/pigeons.lp\n"))
    for fmt in ("text", "json"):
        run = run_ordo("sweep", "-C", vfw_copy, "--timeout", "0.3", "--format", fmt, "--jobs", "2")
        assert run.code == 4, run.text
    assert json.loads(run.out)["baseline"]["status"] == "timeout"
    # (2 s: the scenario, without the puzzle, must plan in the limit on a loaded machine, as 0.3 s did not)
    run = run_ordo("whatif", "-C", vfw_copy, "--timeout", "2", "--without-policy", "pigeons")
    assert run.code == 4 and "Baseline: no plan (the solver timed out)" in run.out, run.text


def test_the_longest_time_limit_the_options_take_plans(vfw_copy):
    """--timeout took up to 1e7 s, but from about 1.08e6 on the wait for the planning child, the limit
    doubled once grounded, overflowed the system's ("a bug in ordo"); a solve_timeout of 1e308 in
    ordo.yaml too, which is now refused there (an authoring sweep's)."""
    for command in (["plan"], ["whatif", "--target-down", "region-two"], ["explain", "--conflict"]):
        run = run_ordo(*command, "-C", vfw_copy, "--timeout", "2000000")
        assert run.code == 0 and "bug in ordo" not in run.text, (command, run.text)
    config = vfw_copy / "ordo.yaml"
    config.write_text(config.read_text().replace("solve_timeout: 20", "solve_timeout: 1.0e+308"))
    for command in ("check", "plan", "test"):
        run = run_ordo(command, "-C", vfw_copy)
        assert run.code == 1 and "bug in ordo" not in run.text, (command, run.text)
        assert "ordo.yaml:" in run.text and "settings.solve_timeout: input should be less than or equal to " \
            "2000000" in run.text, (command, run.text)


def test_paths_on_the_command_line_fall_back_to_the_project(tmp_path):
    run = run_ordo("plan", "-C", VFW, "requests/delete.yaml", "--inventory", "inventory-deployed.yaml",
                   cwd=tmp_path)
    assert run.code == 0, run.err
    assert "10 to delete" in run.out
    # sweep too (it planned its jobs from the paths as given: "file not found", the CLI contract sweep)
    run = run_ordo("sweep", "-C", VFW, "--request", "requests/delete.yaml", "--inventory", "inventory-deployed.yaml",
                   "--format", "json", "--jobs", "1", "--journal", tmp_path / "j.db", cwd=tmp_path)
    assert run.code == 0 and json.loads(run.out)["baseline"]["status"] == "optimal", run.text


def test_plan_lists_only_new_placements():
    run = run_ordo("plan", "-C", VFW, "requests/scale-out.yaml", "--inventory", "inventory-deployed.yaml")
    assert run.code == 0, run.err
    assert "Placements (new)" not in run.out  # a VF module is located by its VNF, not placed
    run = run_ordo("plan", "-C", VFW)
    assert "Placements (new)\n  vfw -> region-two\n  vpg -> region-one\n  vsink -> region-one\n" in run.out


def test_an_optional_run_is_shown_optional_in_usage() -> None:
    # (`ordo show` said RUN where none is needed: the last run is shown)
    from click.testing import CliRunner

    from ordo.cli import cli

    assert "Usage: cli show [OPTIONS] [RUN]" in CliRunner().invoke(cli, ["show", "--help"]).output
    for needed in ("resume", "abort"):
        assert f"Usage: cli {needed} [OPTIONS] RUN" in CliRunner().invoke(cli, [needed, "--help"]).output


def test_options_that_would_be_ignored_are_refused(vfw_copy, tmp_path):
    """`explain REQUEST --after X` and `state --export rm NAME` took the option and did without it; `ordo
    test -C` of no folder said "no tests ran" (5), not the usage error (4) its help names (the CLI
    contract sweep)."""
    run = run_ordo("explain", "-C", vfw_copy, "--after", "vfw/create")
    assert run.code == 1 and "--after orders the operations of a saved plan" in run.err, run.text
    run = run_ordo("state", "-C", vfw_copy, "--export", "rm", "vfw")
    assert run.code == 1 and "--export prints the state; `ordo state rm` takes none" in run.err, run.text
    run = run_ordo("test", "-C", tmp_path / "nowhere")
    assert run.code == 4 and "no such project folder" in run.err, run.text


def test_a_saved_plan_is_found_in_the_project_as_requests_are(vfw_copy, tmp_path):
    """`ordo plan -C P --out P/p.json`, then `ordo explain p.json ... -C P` (and plan --compare, whatif
    --baseline, apply) said "cannot read the plan: No such file or directory", where a request, an
    inventory or a policy named so is found in the project (the CLI contract sweep)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_ordo("plan", "-C", vfw_copy, "--out", vfw_copy / "p.json", cwd=elsewhere).code == 0
    assert run_ordo("explain", "p.json", "vfw/activate", "-C", vfw_copy, cwd=elsewhere).code == 0
    assert run_ordo("plan", "-C", vfw_copy, "--compare", "p.json", cwd=elsewhere).code == 0
    run = run_ordo("whatif", "-C", vfw_copy, "--baseline", "p.json", "--target-down", "region-two", cwd=elsewhere)
    assert run.code == 0, run.text
    run = run_ordo("apply", "p.json", "-C", vfw_copy, "--auto-approve", "--simulation",
                   vfw_copy / "simulations" / "smooth.yaml", cwd=elsewhere)
    assert run.code == 0 and "Apply complete" in run.out, run.text


def assert_show_filters(project: Path, journal: Path | str) -> None:
    """`ordo show --tail N` and `--resource NAME` show those of the run's events that the whole shows,
    line for line (their times from the run's first event)."""
    whole = run_ordo("show", "-C", project, "--journal", journal, "--json")
    events = [json.loads(line) for line in whole.out.splitlines()]
    assert whole.code == 0 and len(events) > 10, whole.text
    tail = run_ordo("show", "-C", project, "--journal", journal, "--json", "--tail", "3")
    assert [json.loads(line) for line in tail.out.splitlines()] == events[-3:], tail.text
    of_vfw = run_ordo("show", "-C", project, "--journal", journal, "--json", "--resource", "vfw",
                      "--resource", "vfw-base")
    wanted = [ev for ev in events if str(ev.get("op", "")).split("/")[0] in ("vfw", "vfw-base")]
    assert wanted and [json.loads(line) for line in of_vfw.out.splitlines()] == wanted, of_vfw.text
    text = run_ordo("show", "-C", project, "--journal", journal)
    last = run_ordo("show", "-C", project, "--journal", journal, "--resource", "vfw", "--tail", "2")
    lines = last.out.splitlines()[-2:]
    assert last.code == 0 and all(line in text.out.splitlines() for line in lines), last.out
    assert [int(line.split()[0]) for line in lines] == [ev["seq"] for ev in wanted if ev["op"].startswith("vfw/")][-2:]
    assert text.out.splitlines()[:2] == last.out.splitlines()[:2]   # (the run, its start and last event)
    zero = run_ordo("show", "-C", project, "--journal", journal, "--tail", "0")
    assert zero.code == 0 and "  (--tail 0: no event shown)" in zero.out.splitlines(), zero.text
    none = run_ordo("show", "-C", project, "--journal", journal, "--resource", "nothing-of-that-name")
    assert none.code == 0 and "No event of an operation on nothing-of-that-name." in none.out, none.text
    bad = run_ordo("show", "-C", project, "--journal", journal, "--resource", "a/b")
    assert bad.code == 1 and "a/b is not a resource name" in bad.err, bad.text


def test_show_filters_a_runs_events_by_resource_and_keeps_the_last(vfw_copy: Path) -> None:
    """`ordo show` of a run of 63,000 events printed nothing for 7 s, then all of them (the scale sweep):
    --tail and --resource read only what they show."""
    applied = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert applied.code == 0, applied.text
    assert_show_filters(vfw_copy, vfw_copy / ".ordo" / "journal.db")


def test_a_resumed_run_is_not_shown_with_its_last_stops_result(tmp_path):
    """While a run was resumed, `ordo history` showed it running with "0 created, 0 changed, 0 deleted; 10
    left unfinished", and `ordo show` "Apply running: ...": the summary of its last stop (the signals
    sweep)."""
    from executor.journal import Event, Journal

    path = tmp_path / "j.db"
    with Journal(path) as jr:
        run = jr.start_run(str(VFW), "requests/instantiate.yaml", {})
        summary = {"status": "interrupted", "created": 0, "changed": 0, "deleted": 0, "unfinished": 10}
        jr.append(run, [Event("run-ended", data=summary)], status="interrupted", summary=summary)
        jr.claim(run)   # (resumed by this process, which lives)
        history = run_ordo("history", "-C", VFW, "--journal", path)
        shown = run_ordo("show", "1", "-C", VFW, "--journal", path)
    assert history.code == 0 and "left unfinished" not in history.out and "running" in history.out, history.out
    assert "resumed; when it stopped (interrupted): 0 created, 0 changed, 0 deleted; 10 left unfinished." \
        in shown.out and "Apply running" not in shown.out, shown.out
    # resumed, then crashed: history showed the last stop's figures as the crash's, show its reason as the
    # crash's, and the web page that reason as the running run's (a review)
    import subprocess
    import sys
    from dataclasses import replace

    from executor.journal import RunInfo
    from service.web import run_view

    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    with Journal(path, create=False) as jr:
        jr._store.execute("UPDATE runs SET pid = ?, summary = ? WHERE id = ?",
                          (gone, json.dumps({**summary, "reason": "no plan after failure: vfw"}), run))
        assert jr.run(run).effective_status == "crashed"
    history = run_ordo("history", "-C", VFW, "--journal", path)
    shown = run_ordo("show", "1", "-C", VFW, "--journal", path)
    assert "crashed" in history.out and "left unfinished" not in history.out, history.out
    # its RESULT is empty: what to do with it is said below the list, as `ordo state` says it
    assert "Note: run 1 is crashed" in history.err and "`ordo resume 1`" in history.err, history.err
    assert "Apply crashed" not in shown.out and "resumed; when it stopped (interrupted)" in shown.out, shown.out
    assert "(then: no plan after failure: vfw)" in shown.out, shown.out
    running = RunInfo(id=1, created=0.0, updated=0.0, project="p", request="r", status="running", pid=None,
                      host=None, options={}, summary={"status": "fallout", "reason": "no plan after failure: vfw"},
                      held=True)
    page = run_view(running, [], live=True)
    assert "no plan after failure" not in str(page)
    assert "no plan after failure" in str(run_view(replace(running, status="fallout"), [], live=True))



@pytest.mark.parametrize("json_lines", [False, True])
def test_a_run_whose_output_pipe_closes_goes_on_and_says_so(vfw_copy: Path, json_lines: bool) -> None:
    """`ordo apply | head` (a jq that ended): the first write to the closed pipe ended the run at once, left
    crashed with its operations in flight in doubt, and nothing said why (an operator's sweep)."""
    import subprocess

    from tests.conftest import ordo_env, ordo_executable

    quick = vfw_copy / "quick.yaml"   # (smooth.yaml's latencies, a third of them)
    quick.write_text("seed: 1\nlatency: { default: 0.05, create: 0.2, config-deploy: 0.1 }\n")
    args = [ordo_executable(), "apply", "-C", str(vfw_copy), "--auto-approve", "--simulation", str(quick),
            *(["--json"] if json_lines else [])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=ordo_env(None))
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout, proc.stderr:
        for line in proc.stdout:   # (past the plan, to what the run prints)
            if b"starting on" in line or b'"kind": "intent"' in line:
                break
        proc.stdout.close()   # (as `head` does)
        err = proc.stderr.read().decode()
    assert proc.wait(120) == 0, err
    assert "the output cannot be written (Broken pipe): run 1 goes on without it; `ordo show 1` shows it" in err, err
    assert "Traceback" not in err and "bug" not in err
    shown = run_ordo("history", "-C", str(vfw_copy))
    assert "complete  10 created" in shown.out, shown.out


def test_an_abort_asked_again_before_the_run_stops_writes_nothing_more(tmp_path):
    """Each abort asked of a running run was an event: a client retrying its request ten times wrote ten.
    Asked again before the run stopped, it is said asked already; once the run resumed, it is asked anew."""
    from executor.journal import Event, Journal

    path = tmp_path / "j.db"
    with Journal(path) as jr:
        run = jr.start_run(str(VFW), "requests/instantiate.yaml", {})   # (run by this process, which lives)
    said = [run_ordo("abort", str(run), "-C", VFW, "--journal", path) for _ in range(3)]
    assert [s.code for s in said] == [0, 0, 0], [s.text for s in said]
    assert said[0].out.startswith(f"Abort requested: run {run}") and all(
        s.out.startswith(f"Abort already requested: run {run}") for s in said[1:]), [s.out for s in said]
    with Journal(path, create=False) as jr:
        assert len([e for e in jr.events(run) if e.kind == "abort-requested"]) == 1
        jr.append(run, [Event("resumed", data={"from": "interrupted"})])
    again = run_ordo("abort", str(run), "-C", VFW, "--journal", path)
    assert again.out.startswith(f"Abort requested: run {run}"), again.text
    # taken over by another process (to be resumed) before it journaled that it resumed: the abort asked of
    # the process before is not one the new one reads, so it is asked anew (a review's)
    with Journal(path, create=False) as jr:
        jr._store.execute("UPDATE runs SET pid = ? WHERE id = ?", (os.getppid(), run))
    taken = run_ordo("abort", str(run), "-C", VFW, "--journal", path)
    assert taken.out.startswith(f"Abort requested: run {run}"), taken.text
    with Journal(path, create=False) as jr:
        assert len([e for e in jr.events(run) if e.kind == "abort-requested"]) == 3


def test_a_resource_found_there_already_is_not_counted_created(vfw_copy: Path) -> None:
    """A record forgotten (`ordo state rm`), then applied again: the assign is refused (the resource is
    active), an observation finds it so, the re-plan has nothing to do, and the summary said "1 created"
    of a run that made nothing (an operator's sweep)."""
    quick = vfw_copy / "quick.yaml"
    quick.write_text("seed: 1\nlatency: 0\n")
    first = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", quick)
    assert first.code == 0 and "Apply complete: 10 created" in first.out, first.text
    assert run_ordo("state", "rm", "vfw-logs", "-C", vfw_copy).code == 0
    again = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", quick)
    assert again.code == 0 and "Apply complete: 0 created, 0 changed, 0 deleted; 1 found there already" in again.out, \
        again.text
    listed = run_ordo("history", "-C", vfw_copy, "--json")
    assert [run["summary"].get("found") for run in json.loads(listed.out)] == [None, 1], listed.out


def test_a_run_resumed_after_it_fell_out_counts_every_re_plan_it_made(vfw_copy: Path) -> None:
    """The count of re-plans that max_replans bounds starts again at a resume after a fallout; the summary
    counted from there too, "1 re-plan" where `ordo show` listed two (an operator's sweep)."""
    twice = vfw_copy / "twice.yaml"
    twice.write_text("seed: 11\nlatency: 0\nfaults:\n"
                     "  - { target: region-two, operation: create, error: refused, times: 1 }\n"
                     "  - { target: region-three, operation: create, error: refused, times: 1 }\n")
    fell = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", twice, "--max-replans", "1")
    assert fell.code == 3 and "gave up after 1 re-plan(s)" in fell.text, fell.text
    resumed = run_ordo("resume", "1", "-C", vfw_copy)
    assert resumed.code == 0 and "Apply complete: 10 created, 0 changed, 0 deleted; 2 re-plans." in resumed.out, \
        resumed.text
    assert "2 re-plans" in run_ordo("history", "-C", vfw_copy).out


def test_show_of_a_crashed_run_names_what_it_left_in_doubt(tmp_path):
    """Which operations a crashed run had sent without an answer recorded was to be matched by hand, intents
    against results (an operator's sweep)."""
    import subprocess
    import sys

    from executor.journal import Event, Journal

    path = tmp_path / "j.db"
    with Journal(path) as jr:
        run = jr.start_run(str(VFW), "requests/instantiate.yaml", {})
        jr.append(run, [Event("intent", op=f"{name}/create", key=f"k-{name}",
                              data={"attempt": 1, "resource": name, "operation": "create", "controller": "sdnc",
                                    "target": None, "inputs": {}, "observe_first": False, "plan": 1})
                        for name in ("protected-net", "unprotected-net")])
        jr.append(run, [Event("result", op="protected-net/create", key="k-protected-net",
                              data={"attempt": 1, "outputs": {}, "state": "created"})])
        gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
        jr._store.execute("UPDATE runs SET pid = ? WHERE id = ?", (gone, run))
    shown = run_ordo("show", "1", "-C", VFW, "--journal", path)
    assert shown.code == 0 and ("in doubt (sent, no answer recorded): unprotected-net/create; `ordo resume 1` "
                                "observes them first") in shown.out, shown.out


def test_show_of_a_crashed_run_on_temporal_says_its_workflow_may_carry_on_what_it_sent(tmp_path):
    """A run on Temporal whose client died reads crashed, its workflow going on: `ordo show` said `ordo
    resume` observes the operations sent, and resume refused while the workflow went on (a sweep's)."""
    import subprocess
    import sys

    from executor.journal import Event, Journal

    path = tmp_path / "j.db"
    with Journal(path) as jr:
        run = jr.start_run(str(VFW), "requests/instantiate.yaml", {"engine": "temporal", "temporal": "127.0.0.1:1"})
        jr.append(run, [Event("intent", op="unprotected-net/create", key="k",
                              data={"attempt": 1, "resource": "unprotected-net", "operation": "create",
                                    "controller": "sdnc", "target": None, "inputs": {}, "observe_first": False,
                                    "plan": 1})])
        gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
        jr._store.execute("UPDATE runs SET pid = ? WHERE id = ?", (gone, run))
    shown = run_ordo("show", "1", "-C", VFW, "--journal", path)
    assert shown.code == 0 and "unprotected-net/create; its workflow on Temporal may still be carrying them out" \
        in shown.out and "observes them first" not in shown.out, shown.out
