"""Which of a project's own rules let a plan be sliced (planner/locality.py):
each rule below is read as a project's policy file, and the verdict is the
module's, with the reason it names. tests/test_slice.py shows that the
local ones plan alike pruned or not, and that a rule refused here would not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import planner.check as check_module
from benchmarks.generate import write_project
from domain.project import load_project
from planner.core import load_policies
from planner.locality import nonlocal_rule
from tests.conftest import EXAMPLES, run_ordo


def verdict(root: Path, text: str) -> str | None:
    """The reason the rule file ``text`` is not local, or None."""
    (root / "own.lp").write_text(text)
    doc = yaml.safe_load((root / "ordo.yaml").read_text())
    doc["policies"]["files"] = ["own.lp"]
    (root / "ordo.yaml").write_text(yaml.safe_dump(doc))
    program = load_policies(load_project(root))
    assert not program.errors, program.errors
    found = nonlocal_rule(program.files)
    return None if found is None else str(found)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("locality") / "p"
    write_project(20, out)
    return out


LOCAL = {
    "config-after-modules": 'before(X, op(V,"config-deploy")) :- op(V,"config-deploy"), part_of(M,V), '
                            'resource(M,"vf-module"), raises(M,"active",X).',
    "either way of a relation": 'before(X,Y) :- relation("uses",M,N), raises(N,"active",X), '
                                'raises(M,"assigned",Y).',
    "a constraint on the anchor's place": ':- op(V,"assign"), place(V,T), requires(V,"vcpu",8), attr(T,"cost",4).',
    "negated atoms of related resources": ':- op(M,"create"), relation("uses",M,N), not reaches(N,"active"), '
                                          'has_milestone(N,"active").',
    "any part, by _": ':- op(S,"activate"), resource(S,"service"), not part_of(_,S).',
    "a constant related to the anchor": ':- op(M,"create"), relation("uses",M,"mgmt-net"), located(M,"region-south").',
    "a weak constraint naming its anchor": ':~ op(V,"assign"), place(V,T), zone(T,Z), part_of(V,S). [1@2,V,Z]',
    "a helper about targets": 'cheap(T) :- attr(T,"cost",C), C <= 2.\n'
                              'group(V,"cheap") :- op(V,"assign"), place(V,T), cheap(T).\ngroup_limit("cheap",2).',
    "targets only, no resource": 'group_limit("g", N) :- N = 3, target("region-east").',
    "constants and declarations": '#const cost_key = "cost".\n#defined odd/1.\n#program base.\n'
                                  ':- changed(R), label(R,"frozen",cost_key).',
    "an anchor named _A": ':- op(_A,"assign"), part_of(_A,S), label(S,"k","v").',
    "a comparison of two related resources": ':- pinned(A,T), part_of(A,B), placed(B,T2), T != T2, A != B.',
}

NOT_LOCAL = {
    "vg-follows-vgmux: a pair that need not change": (
        ':- relation("connects_to",G,M), located(G,T1), located(M,T2), T1 != T2.', "without an atom"),
    "two relations away": (
        ':- op(M,"create"), relation("uses",M,N), relation("uses",O,N), O != M, current(O,"active").',
        "not directly related"),
    "two anchors not related": (':- op(A,"assign"), op(B,"assign"), label(A,"k",V), label(B,"k",V), A < B.',
                                "not directly related"),
    "capacity": (':- op(V,"assign"), place(V,T), capacity(T,"vcpu",C), C < 10.', "capacity/3"),
    "an aggregate": (':- op(V,"assign"), place(V,T), #count{ R : located(R,T) } > 3.', "aggregate"),
    "a conditional literal": (':- op(V,"assign"), located(R,T) : part_of(R,V).', "conditional"),
    "a weak constraint without its anchor": (':~ op(V,"assign"), place(V,T). [1@1,T]', "its anchor"),
    "a weak constraint on no resource": (':~ target(T), attr(T,"cost",C). [C@1,T]', "mentions no resource"),
    "a constraint on no resource": (':- target("region-east"), not zone("region-east",_).', "mentions no resource"),
    "a helper about resources": ('vnf(R) :- resource(R,"vnf").\n:- op(R,"assign"), vnf(R).', "vnf/1"),
    "before read back": (':- before(op(A,"create"),op(B,"create")), op(A,"create").', "before/2"),
    "a named variable in a negated relation": (':- op(S,"activate"), resource(_X,"vnf"), not part_of(_X,S).',
                                               "not directly related"),
    "an anonymous anchor": (':- op(_,"assign").', "without an atom"),
    "an end of before with no named resource": (
        'before(op(A,O),op(_,"x")) :- op(A,O), part_of(A,_).', "no named resource"),
    "a pooled head": ('h(1;2).', "pool"),
    "an external": ('#external e.', "kind External"),
    "a choice": ('{ extra(R) } :- op(R,"assign").', "choice"),
    "replace": ('replace(R) :- op(R,"assign"), label(R,"k","v").', "replace/1"),
    "replace, as a fact": ('replace("svc-00001").', "replace/1, which ordo's own rules define or read"),
    "an end of before from elsewhere": ('before(X,op(V,"create")) :- op(V,"create"), attr(_,"k",X).', "an end is"),
    "a term in a resource's place": (':- op(V,"assign"), resource(f(V),"vnf").', "resource's place"),
    "group of an unrelated resource": ('group(W,"g") :- op(V,"assign"), resource(W,"vnf").', "not directly"),
}


@pytest.mark.parametrize("text", LOCAL.values(), ids=LOCAL.keys())
def test_local_rules_are_recognised(root, text):
    assert verdict(root, text) is None


@pytest.mark.parametrize(("text", "why"), NOT_LOCAL.values(), ids=NOT_LOCAL.keys())
def test_rules_that_read_what_a_slice_leaves_out_are_named(root, text, why):
    found = verdict(root, text)
    assert found is not None and found.startswith("own.lp:") and why in found, found


def test_the_examples_own_policies(root):
    """vFW's rule reads a VNF's own VF modules; vCPE's vg-follows-vgmux.lp keeps
    a pair apart whether or not either changes."""
    for example, expected in (("vfw", None), ("vcpe", "policies/vg-follows-vgmux.lp:18:")):
        program = load_policies(load_project(EXAMPLES / example))
        found = nonlocal_rule(program.files)
        assert (found is None) if expected is None else str(found).startswith(expected), found


def test_ordo_check_notes_a_rule_that_keeps_plans_whole(tmp_path, monkeypatch):
    """Not a problem, and only where a whole plan costs (SLICE_NOTE_MIN
    resources): the project is valid, and the note names the rule and where
    to read more."""
    write_project(1000, tmp_path)
    rule = ':- op(A,"assign"), op(B,"assign"), part_of(A,S), part_of(B,S), placed(A,T), placed(B,T), A < B.'
    verdict(tmp_path, rule)
    checked = run_ordo("check", "-C", tmp_path)
    # one warning (the file has no metadata header): the note is not one
    assert (checked.code, checked.out) == (0, "Success! The project is valid, with 1 warning.\n"), checked.text
    assert "own.lp:1: note: plans solve the whole model, not the slice a request changes: reads a resource not " \
           "directly related" in checked.err and "Rules that keep a plan proportional" in checked.err
    (tmp_path / "own.lp").write_text(LOCAL["config-after-modules"])
    assert "note:" not in run_ordo("check", "-C", tmp_path).text
    monkeypatch.setattr(check_module, "SLICE_NOTE_MIN", 1001)
    (tmp_path / "own.lp").write_text(rule)
    assert not [d for d in check_module.check(tmp_path) if d.severity == "note"]


def test_a_name_ordo_reserves_is_refused_in_a_project_rule(root):
    """A hand-written __violation or __before would pass for one of ordo's own
    (and crashed the planner); a string that starts with __ is only a string."""
    (root / "own.lp").write_text('__violation(99,()) :- op(A,"assign").\np("__x") :- op(A,"assign"), p(A).\n')
    doc = yaml.safe_load((root / "ordo.yaml").read_text())   # (named here: not left so by another test)
    doc["policies"]["files"] = ["own.lp"]
    (root / "ordo.yaml").write_text(yaml.safe_dump(doc))
    for command in (["check"], ["plan"]):
        run = run_ordo(*command, "-C", root)
        assert run.code == 1 and "own.lp:1:1: error: uses '__violation', a name ordo reserves" in run.err, run.text
        assert "__x" not in run.err and "Traceback" not in run.text
