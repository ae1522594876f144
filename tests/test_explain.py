"""`ordo explain`: why no plan (a correction set, a minimal conflict) and why a plan does what it does."""

from __future__ import annotations

import json

import pytest

from domain.project import load_project
from planner.core import load_policies, make_plan
from planner.explain import minimal_conflict
from planner.facts import model_facts
from planner.why import UnknownOperation, explain_operation
from tests.conftest import run_ordo

DELETE_MGMT = ("requests/delete-mgmt-net.yaml", "--inventory", "inventory-deployed.yaml")


def test_minimal_conflict_names_one_policy_and_the_goal(vfw_copy):
    project = load_project(vfw_copy, "requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    found = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=10)
    assert found is not None and found.minimal
    # Two policies forbid the deletion; a minimal conflicting set holds one of
    # them with the goal (dropping either policy alone would not allow a plan):
    # the one first by name (planner.explain.conflict_order), both being stock.
    assert [(found.policies[r.file], r.location) for r in found.rules] == [("ordering", "<base>/ordering.lp:34")]
    assert found.goals == [("onap-mgmt-net", "absent", "requests/delete-mgmt-net.yaml:5")]


def test_minimal_conflict_is_none_when_a_plan_exists(vfw_copy):
    project = load_project(vfw_copy)
    assert minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=10) is None


def test_explain_no_plan_cli(vfw_copy):
    run = run_ordo("explain", "-C", vfw_copy, *DELETE_MGMT)
    assert run.code == 3, run.text
    assert "protected-resources (<library>/protected-resources.lp:8)" in run.out
    assert "ordo explain --conflict" in run.out
    run = run_ordo("explain", "-C", vfw_copy, *DELETE_MGMT, "--conflict")
    assert run.code == 3, run.text
    assert "a minimal conflicting set: policies" in run.out
    # (dropping one makes this set hold together, not the whole: it read as a promise, an authoring sweep's)
    assert "the rest of them can hold together; another set may conflict too" in run.out, run.out
    assert "onap-mgmt-net: absent  (requests/delete-mgmt-net.yaml:5)" in run.out
    data = json.loads(run_ordo("explain", "-C", vfw_copy, *DELETE_MGMT, "--conflict", "--json").out)
    assert data["minimal"] is True and data["goals"][0]["resource"] == "onap-mgmt-net"
    run = run_ordo("explain", "-C", vfw_copy, "--conflict")
    assert run.code == 0 and "A plan exists" in run.out


def test_why_an_operation_is_in_the_plan_and_what_it_waits_for(vfw_copy):
    plan = make_plan(load_project(vfw_copy)).plan
    rules = load_policies(load_project(vfw_copy)).rules
    why = explain_operation(plan, "vfw-base/create", rules=rules)
    assert why.reason == "requested: active (now absent)"
    assert why.path == ["vfw-base/assign", "vfw-base/create", "vfw-base/activate"]
    waits = {h.before: h for h in why.waits_for}
    assert "unprotected-net/create" in waits          # the data it reads (network_id)
    assert waits["unprotected-net/create"].rules == ("<base>/ordering.lp:18",)
    assert waits["protected-net/activate"].descriptions == (
        "uses: a resource is created only after what it uses is active.",)
    assert [h.after for h in why.needed_by] == ["vfw-base/activate"]


def test_why_one_operation_comes_after_another(vfw_copy):
    plan = make_plan(load_project(vfw_copy)).plan
    why = explain_operation(plan, "vfw-service/activate", after="unprotected-net/assign")
    assert [(h.before, h.after) for h in why.chain] == [
        ("unprotected-net/assign", "unprotected-net/create"), ("unprotected-net/create", "unprotected-net/activate"),
        ("unprotected-net/activate", "vfw-service/activate")]
    independent = explain_operation(plan, "vpg/assign", after="vfw/assign")
    assert independent.chain is None and independent.reverse is None
    # asked the wrong way round: it comes first (it was said to be independent: a sweep's)
    first = explain_operation(plan, "unprotected-net/assign", after="vfw-service/activate")
    assert first.chain is None and [(h.before, h.after) for h in first.reverse] == [
        (h.before, h.after) for h in why.chain]


def test_explain_operation_cli(vfw_copy):
    out = vfw_copy / "plan.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", out).code == 0
    run = run_ordo("explain", "-C", vfw_copy, out, "vsink-base/create", "--after", "vsink/assign")
    assert run.code == 0, run.text
    assert "Why it comes after vsink/assign:" in run.out
    assert "vsink/assign -> vsink-base/assign  by <base>/ordering.lp:" in run.out
    back = run_ordo("explain", "-C", vfw_copy, out, "vsink/assign", "--after", "vsink-base/create")
    assert "vsink/assign does not wait for vsink-base/create: it comes first, and vsink-base/create waits for it:" \
        in back.out and "vsink/assign -> vsink-base/assign  by <base>/ordering.lp:" in back.out, back.text
    run = run_ordo("explain", "-C", vfw_copy, out, "vfw-base/creat")
    assert run.code == 1
    assert "the plan has no operation 'vfw-base/creat' (did you mean vfw-base/create" in run.err
    assert "Traceback" not in run.text
    request = run_ordo("explain", "-C", vfw_copy, vfw_copy / "requests" / "instantiate.yaml", "vfw/assign")
    assert request.code == 1 and "not valid JSON: Expecting value (a saved plan is the JSON `ordo plan --out " \
        "FILE` writes)" in request.err, request.text   # (a request's YAML: "not valid JSON" alone, a sweep's)
    typo = run_ordo("explain", "-C", vfw_copy, out, "vfww")   # a placed resource's name, mistyped
    assert typo.code == 1 and "(did you mean vfw?)" in typo.err, typo.text
    data = json.loads(run_ordo("explain", "-C", vfw_copy, out, "vfw/assign", "--json").out)
    assert data["operation"] == "vfw/assign" and data["wave"] >= 1


def test_unknown_operation_error(vfw_copy):
    plan = make_plan(load_project(vfw_copy)).plan
    try:
        explain_operation(plan, "nothing/here")
    except UnknownOperation as exc:
        assert "operations are named RESOURCE/OPERATION" in str(exc)
    else:
        raise AssertionError("expected UnknownOperation")


def test_the_examples_deliberately_conflicting_policy_is_named_with_its_line():
    from tests.conftest import VFW

    policy = "policies/conflicting/colocate-vfw-vpg.lp"
    run = run_ordo("plan", "-C", VFW, "--policy", VFW / policy)
    assert run.code == 3, run.text
    assert f"colocate-vfw-vpg ({policy}:13)" in run.err
    run = run_ordo("explain", "-C", VFW, "--conflict", "--policy", VFW / policy)
    assert run.code == 3, run.text
    assert "policies anti-affinity, colocate-vfw-vpg and 2 requested goal(s) cannot hold together" in run.out
    assert "anti-affinity (<library>/anti-affinity.lp:8)" in run.out


def test_explain_also_offers_the_goals_to_give_up(vfw_copy):
    run = run_ordo("explain", "-C", vfw_copy, *DELETE_MGMT)
    assert "Or, keeping every policy, give up these requested goals:\n" \
           "    onap-mgmt-net: absent  (requests/delete-mgmt-net.yaml:5)" in run.out
    data = json.loads(run_ordo("explain", "-C", vfw_copy, *DELETE_MGMT, "--json").out)
    assert data["goals_to_drop"] == [
        {"resource": "onap-mgmt-net", "state": "absent", "where": "requests/delete-mgmt-net.yaml:5"}]


def test_explain_json_is_json_when_a_plan_exists(vfw_copy):
    """`ordo explain --json` (and with --conflict) printed "A plan exists: ..." as text on stdout, which
    a pipeline's JSON parser refused (the CLI contract sweep)."""
    for conflict in ([], ["--conflict"]):
        run = run_ordo("explain", "-C", vfw_copy, *conflict, "--json")
        assert run.code == 0, run.text
        assert json.loads(run.out) == ({"found": False, "plan_exists": True} if conflict else
                                       {"status": "optimal", "explanation": None, "goals_to_drop": None}), run.out


def test_explain_checks_the_policies_once(vfw_copy, monkeypatch):
    """`ordo explain` with no plan (the sliced solve, the whole model's, the goals to give up)
    parses and checks the policies once, not once per search."""
    import planner.core
    import planner.facts

    calls, facts = [], []
    real = planner.core.checked_program
    monkeypatch.setattr(planner.core, "checked_program", lambda *a, **k: calls.append(1) or real(*a, **k))
    made = planner.facts.model_facts
    for module in (planner.core, planner.facts):   # nor are the model's facts made twice
        monkeypatch.setattr(module, "model_facts", lambda *a, **k: facts.append(1) or made(*a, **k))
    run = run_ordo("explain", "-C", vfw_copy, *DELETE_MGMT)
    assert run.code == 3, run.text
    assert "give up these requested goals" in run.out
    assert len(calls) == 1 and len(facts) == 1


def test_a_resource_named_without_a_plan_says_to_name_the_plan_first(vfw_copy):
    """`ordo explain vfw` read the word as a request file ("vfw: error: file not found")."""
    run = run_ordo("explain", "-C", vfw_copy, "vfw", cwd=vfw_copy)
    assert run.code == 1 and "'vfw' is no request file" in run.err and "ordo explain plan.json vfw" in run.err
    assert "file not found" not in run.err


def test_conflict_names_the_rules_of_an_ordering_cycle(vfw_copy):
    """A before/2 rule of the author's closes a cycle with the base's order: no constraint takes part, so
    --conflict names the cycle and its rules, as `ordo explain` does (it used to name a base constraint and
    a goal, given up to break the cycle, and never the author's rule)."""
    (vfw_copy / "policies" / "vfw-first.lp").write_text(
        '%@ name: vfw-first\n\n% vfw first\nbefore(op("vfw","assign"), op("vfw-service","assign")) :- '
        'op("vfw","assign"), op("vfw-service","assign").\n')
    text = (vfw_copy / "ordo.yaml").read_text()
    listed = "    - policies/config-after-modules.lp"
    (vfw_copy / "ordo.yaml").write_text(text.replace(listed, listed + "\n    - policies/vfw-first.lp"))
    run = run_ordo("explain", "-C", vfw_copy, "--conflict")
    assert run.code == 3, run.text
    assert ("No plan exists: the ordering rules form a cycle: vfw-service/assign -> vfw/assign -> "
            "vfw-service/assign (resources: vfw, vfw-service)") in run.out
    assert "vfw/assign  must come before the next, by policies/vfw-first.lp:4" in run.out
    data = json.loads(run_ordo("explain", "-C", vfw_copy, "--conflict", "--json").out)
    assert data["cycle"] == {"operations": ["vfw-service/assign", "vfw/assign"],
                             "rules": [["<base>/ordering.lp:8"], ["policies/vfw-first.lp:4"]]}
    assert data["policies"] == [] and data["goals"] == [] and data["minimal"] is True


def _cut_short(monkeypatch, phase: int) -> None:
    """The conflict search's checks past the time limit: all of them (phase 1), or those of the second
    stage only, where the requested goals are switched too (phase 2)."""
    import planner.explain

    real = planner.explain._Switches.conflicting

    def conflicting(self, enabled):
        if phase == 1 or any(sym.name == "__goal" for sym in self.symbols.values()):
            raise TimeoutError
        return real(self, enabled)

    monkeypatch.setattr(planner.explain._Switches, "conflicting", conflicting)


def test_a_conflict_search_cut_short_says_what_it_found_and_nothing_more(vfw_copy, monkeypatch):
    """The time limit struck before the conflict search had an answer: it showed an empty set ("a
    conflicting set:  cannot hold together", the sweep of 6 December). Now it says nothing was
    found; or, once the policies that conflict with every requested goal held were found, names
    them with the request's goals (which of those take part was not found)."""
    from io import StringIO

    from rich.console import Console

    from ordo import render

    project = load_project(vfw_copy, "requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
    _cut_short(monkeypatch, 2)
    found = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=10)
    assert found.found and found.every_goal and not found.minimal and found.goals == []
    assert [(found.policies[r.file], r.location) for r in found.rules] == [("ordering", "<base>/ordering.lp:34")]
    assert found.summary() == ("a conflicting set: policies ordering and the requested goals cannot hold together "
                               "(not shrunk within the time limit: which of the requested goals take part was not "
                               "found)")
    import planner.explain

    monkeypatch.undo()
    real = planner.explain._Switches.preferred

    def cut_while_shrinking(self, ordered, core):   # the second stage's shrinking cut short: all but the goals
        if any(sym.name == "__goal" for sym in self.symbols.values()):
            return [lit for lit in ordered if self.symbols[lit].name == "__on"], False
        return real(self, ordered, core)

    monkeypatch.setattr(planner.explain._Switches, "preferred", cut_while_shrinking)
    again = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=10)
    assert again.every_goal and not again.minimal and again.rules == found.rules   # the first stage's, not all
    monkeypatch.undo()
    _cut_short(monkeypatch, 1)
    found = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=10)
    assert not found.found and found.rules == [] and found.to_dict()["found"] is False
    out = StringIO()
    render.minimal_conflict(Console(file=out, width=200), found, 2.0)
    assert out.getvalue() == ("Timeout: no conflicting set was found within 2s (nor whether a plan exists); "
                              "raise --timeout.\n")


def test_a_conflict_about_many_resources_names_the_first_of_them_on_its_line():
    """A capacity conflict at 10,000 resources named the 700 placed on the target in one line (the
    sweep of 6 December); the text names the first 20 and counts the rest, `--json` has them all."""
    from io import StringIO

    from rich.console import Console

    from ordo import render
    from planner.explain import Conflict, Explanation

    names = tuple(f"vnf-{i:03d}" for i in range(700))
    conflict = Conflict(policy="capacity", enforcement="hard", file="<library>/capacity.lp", line=9, rule=":- ...",
                        description="", bindings=(("T", "region-west"),), resources=names)
    out = StringIO()
    render.explanation(Console(file=out, width=10_000), Explanation(kind="conflict", summary="s", conflicts=[conflict]))
    line = next(text for text in out.getvalue().splitlines() if "violated for" in text)
    assert line == ("    violated for: T=region-west (resources: " + ", ".join(names[:20]) + " and 680 more)")
    assert Explanation(kind="conflict", summary="s", conflicts=[conflict]).to_dict()["conflicts"][0]["resources"] \
        == list(names)


def test_no_plan_explained_before_the_least_set_was_found_says_so(vfw_copy, monkeypatch):
    """With hundreds of violated instances the search for the least set ran to the time limit and
    named whichever it had reached, the same wording as the least (the sweep of 6 December: other
    instances at 3 s than at 30 s). Cut short, the summary says so."""
    import planner.explain
    from planner.explain import explain_no_plan

    (vfw_copy / "policies" / "nowhere.lp").write_text("%@ name: nowhere\n:- place(R,T).\n")
    project = load_project(vfw_copy, extra_policy_files=[vfw_copy / "policies" / "nowhere.lp"])
    program, facts = load_policies(project), model_facts(project.model)
    whole = explain_no_plan(program, facts, project.model, timeout=10)
    assert whole.kind == "conflict" and whole.summary == "no plan satisfies every policy; drop or relax: nowhere"

    def cut(*_args, **_kwargs):
        raise TimeoutError

    monkeypatch.setattr(planner.explain, "_solve_until", cut)
    short = explain_no_plan(program, facts, project.model, timeout=10)
    assert short.summary == ("no plan satisfies every policy; drop or relax: nowhere (the time limit cut the search "
                             "for the least set of violations short: a longer one may name other instances)")


def test_a_time_limit_that_strikes_before_any_answer_says_so(vfw_copy, monkeypatch):
    """With no plan and no explanation in time (the sweep of 6 December: 8,000 VNFs, --timeout 1),
    `ordo explain` ended with status 4 and printed nothing."""
    import planner.core
    from planner.core import Outcome

    monkeypatch.setattr(planner.core, "make_plan", lambda *a, **k: Outcome(status="timeout"))
    run = run_ordo("explain", "-C", vfw_copy, "--timeout", "1")
    assert run.code == 4 and run.err.startswith("Timeout: within 1s the solver neither found a plan nor showed "
                                                "that none exists; raise --timeout."), run.text


def test_a_saved_plan_is_explained_as_it_was_made_and_a_request_in_json_is_named_as_no_plan(vfw_copy):
    """--conflict and --policy were ignored with a saved plan (a broken policy file too); a request
    written in JSON, named *.json, was asked for the OPERATION to explain (the same sweep)."""
    out = vfw_copy / "plan.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", out).code == 0
    (vfw_copy / "broken.lp").write_text("this is not ASP\n")
    for option, said in ((("--conflict",), "--conflict explains why no plan exists for a request"),
                         (("--policy", vfw_copy / "broken.lp"), "--policy is for a request or a placement")):
        run = run_ordo("explain", "-C", vfw_copy, out, "vfw/create", *option)
        assert run.code != 0 and said in run.err, run.text
    (vfw_copy / "request.json").write_text('{"services": {"vfw-service": {"state": "absent"}}}')
    for command in (("explain",), ("apply", "--auto-approve")):
        run = run_ordo(*command, "-C", vfw_copy, vfw_copy / "request.json")
        assert run.code == 1 and "request.json: error: format_version: not an ordo plan (no format_version, no " \
                                 "operations): a .json file is read as a plan saved by `ordo plan --out`" in run.err
        assert "a request written in JSON is read as one when named *.yaml" in run.err, run.text


def test_explain_conflict_refuses_what_plan_refuses_when_nothing_conflicts(vfw_copy):
    """Weak constraints whose weights add up past the solver's range: `ordo plan` refused, and `ordo explain
    --conflict` said "A plan exists: nothing conflicts. `ordo plan` shows it." (an authoring sweep's)."""
    (vfw_copy / "policies" / "heavy.lp").write_text(
        "%@ name: heavy\n%@ description: weights too large\n:~ place(R,T). [1000000000@1,R,T]\n")
    ordo_yaml = vfw_copy / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text().replace("    - policies/config-after-modules.lp\n",
                                                       "    - policies/config-after-modules.lp\n"
                                                       "    - policies/heavy.lp\n"))
    planned = run_ordo("plan", "-C", vfw_copy)
    explained = run_ordo("explain", "--conflict", "-C", vfw_copy)
    assert planned.code == 1 and "add up to" in planned.err, planned.text
    assert explained.code == 1 and "add up to" in explained.err and "A plan exists" not in explained.out, \
        explained.text


@pytest.mark.parametrize(("status", "code"), [("timeout", 4), ("unsatisfiable", 3)])
def test_explain_conflict_with_nothing_in_conflict_and_no_plan_answers_json_too(vfw_copy, monkeypatch, status, code):
    """Nothing conflicts, and the plan made after finds none (its time ran out): --json printed nothing to
    parse, and any status was called a timeout (a review's)."""
    from types import SimpleNamespace

    import planner.core

    monkeypatch.setattr(planner.core, "make_plan", lambda *a, **k: SimpleNamespace(plan=None, status=status))
    run = run_ordo("explain", "--conflict", "--json", "-C", vfw_copy)
    assert run.code == code and json.loads(run.out) == {"found": False, "plan_exists": False, "status": status}, \
        run.text
    run = run_ordo("explain", "--conflict", "-C", vfw_copy)
    assert run.code == code and "Nothing conflicts, but no plan was found" in run.err, run.text
    assert ("within the time limit" in run.err) == (status == "timeout"), run.err
