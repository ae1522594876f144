"""The same generated instance as a classical planning problem, solved by Fast Downward.

Built with unified-planning (package ``unified-planning``) and solved with
``OneshotPlanner(name="fast-downward")`` (package ``up-fast-downward``, which
runs FD's ``lama-first`` configuration: satisficing, not optimal).

Encoding (grounded: one action per lifecycle operation of each resource):

* fluents per resource state, read as "has reached this state":
  ``assigned(r)``, ``created(r)``, ``active(r)`` and, for VNFs,
  ``config_assigned(v)``, ``configured(v)``; a step needs the previous state
  and not the next one, so every operation happens exactly once;
* the preconditions mirror ordo's base ordering rules (policies/base/ordering.lp):
  a part is assigned after its whole is assigned; a VF module is created after
  every network it uses is active; a VNF is activated after its VF modules are
  active; a service is activated after all its networks and VNFs are active;
* placement: a VNF's ``assign`` is one action per (VNF, region) choice, which
  also records ``located(v, region)``; anti-affinity is kept: VNFs that share
  an ``anti-affinity`` label may not use the same zone (``zone_used(g, z)``);
* NOT modelled: region capacities (FD has no numeric fluents; in the generated
  instances capacity never binds, so no solution is lost), and the
  prefer-cheaper-region objective (lama-first plans for length, not cost).

The goal is every requested resource active; ``mgmt-net`` is active initially.

Run as a script it reads a generated project folder and prints one JSON line::

    python benchmarks/fd_encoding.py PROJECT_DIR [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import yaml


def read_instance(folder: Path) -> dict:
    """The resources of a generated project, from its YAML files."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    inventory = yaml.load((folder / "inventory.yaml").read_text(), Loader=loader)
    request = yaml.load((folder / "request.yaml").read_text(), Loader=loader)
    return {"targets": inventory.get("targets", {}), "existing": inventory.get("resources", []),
            "resources": request.get("resources", [])}


def _ident(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def build_problem(inst: dict, encoding: str = "propositional"):
    """The unified-planning Problem for one instance (names are sanitised).

    ``propositional``: one 0-ary fluent per (resource, state), no objects.
    ``lifted``: fluents with a resource parameter (``assigned(r)`` ...) over
    objects. Both give FD the same ground task; ``lifted`` is the textbook
    form but unified-planning's PDDL writer enumerates the initial value of
    every ground fluent by scanning all objects for each one (quadratic in
    the number of objects), so it is unusable from a few thousand resources.
    """
    from unified_planning.shortcuts import (
        BoolType,
        Fluent,
        InstantaneousAction,
        Not,
        Object,
        Problem,
        UserType,
    )

    class _Problem(Problem):
        """Computes its kind once: unified-planning recomputes it on each use
        (seven times per solve, each a walk over every action)."""

        _kind_cache = None

        @property
        def kind(self):
            if self._kind_cache is None:
                self._kind_cache = super().kind
            return self._kind_cache

    problem = _Problem("ordo_bench")
    # unified-planning checks each new fluent/action/object name against every
    # name already in the problem by scanning lists, which makes building a
    # problem with tens of thousands of actions quadratic (minutes at N=10,000).
    # Names here are unique by construction, and we check that with a set.
    names: set[str] = set()

    def fresh(name: str) -> str:
        if name in names:
            raise ValueError(f"name clash after sanitising: {name}")
        names.add(name)
        return name

    problem._has_name_method = lambda name: False
    if encoding == "lifted":
        Resource = UserType("Resource")
        Region = UserType("Region")
        Zone = UserType("Zone")
        Group = UserType("Group")
        lifted = {name: Fluent(name, BoolType(), r=Resource)
                  for name in ("assigned", "created", "active", "config_assigned", "configured")}
        lifted["located"] = Fluent("located", BoolType(), r=Resource, t=Region)
        lifted["zone_used"] = Fluent("zone_used", BoolType(), g=Group, z=Zone)
        for fluent in lifted.values():
            problem.add_fluent(fluent, default_initial_value=False)
        kinds = {"r": Resource, "t": Region, "z": Zone, "g": Group}
        objects: dict = {}

        def obj(kind: str, name: str):
            key = (kind, name)
            if key not in objects:
                objects[key] = Object(fresh(f"{kind}_{_ident(name)}"), kinds[kind])
                problem.add_object(objects[key])
            return objects[key]

        def fl(state: str, *args: tuple[str, str]):
            return lifted[state](*(obj(kind, name) for kind, name in args))
    elif encoding == "propositional":
        props: dict = {}

        def fl(state: str, *args: tuple[str, str]):
            key = (state, *args)
            fluent = props.get(key)
            if fluent is None:
                fluent = Fluent(fresh("__".join([state, *(f"{k}_{_ident(n)}" for k, n in args)])), BoolType())
                problem.add_fluent(fluent, default_initial_value=False)
                props[key] = fluent
            return fluent()
    else:
        raise ValueError(f"unknown encoding {encoding!r}")

    def assigned(name: str):
        return fl("assigned", ("r", name))

    def created(name: str):
        return fl("created", ("r", name))

    def active(name: str):
        return fl("active", ("r", name))

    zone_of = {name: spec.get("zone") or f"zone-of-{name}" for name, spec in inst["targets"].items()}

    for res in inst["existing"]:  # the inventory: networks already active
        if res.get("state") == "active":
            for make in (assigned, created, active):
                problem.set_initial_value(make(res["name"]), True)

    children: dict[str, list[str]] = {}
    for res in inst["resources"]:
        if res.get("part_of"):
            children.setdefault(res["part_of"], []).append(res["name"])

    def action(op: str, name: str, pre: list, eff: list, suffix: str = ""):
        act = InstantaneousAction(fresh(f"{op}__{_ident(name)}{suffix}"))
        for cond in pre:
            act.add_precondition(cond)
        for fluent_exp in eff:
            act.add_effect(fluent_exp, True)
        problem.add_action(act)

    for res in inst["resources"]:
        name, kind = res["name"], res["type"]
        parent = [assigned(res["part_of"])] if res.get("part_of") else []
        kids_active = [active(c) for c in children.get(name, [])]
        if kind == "service":  # logical: assign, activate
            action("assign", name, [Not(assigned(name))], [assigned(name)])
            action("activate", name, [assigned(name), Not(active(name)), *kids_active], [active(name)])
        elif kind in ("network", "vf-module"):  # standard: assign, create, activate
            used = [active(u) for u in res.get("uses", [])]
            action("assign", name, [*parent, Not(assigned(name))], [assigned(name)])
            action("create", name, [assigned(name), Not(created(name)), *used], [created(name)])
            action("activate", name, [created(name), Not(active(name)), *kids_active], [active(name)])
        elif kind == "vnf":  # assign (one per region), config-assign, config-deploy, activate
            group = (res.get("labels") or {}).get("anti-affinity")
            cfg_assigned = fl("config_assigned", ("r", name))
            configured = fl("configured", ("r", name))
            for region in inst["targets"]:
                pre = [*parent, Not(assigned(name))]
                eff = [assigned(name), fl("located", ("r", name), ("t", region))]
                if group is not None:
                    used = fl("zone_used", ("g", str(group)), ("z", zone_of[region]))
                    pre.append(Not(used))
                    eff.append(used)
                action("assign", name, pre, eff, suffix=f"__at__{_ident(region)}")
            action("config_assign", name, [assigned(name), Not(cfg_assigned)], [cfg_assigned])
            action("config_deploy", name, [cfg_assigned, Not(configured)], [configured])
            action("activate", name, [configured, Not(active(name)), *kids_active], [active(name)])
        else:
            raise ValueError(f"no encoding for type {kind!r} ({name})")
        problem.add_goal(active(name))
    return problem


def _planner_seconds(result) -> float | None:
    """FD's own time (translator + search), from the driver's log."""
    for message in result.log_messages or []:
        found = re.findall(r"Planner time: ([0-9.]+)s", message.message)
        if found:
            return float(found[-1])
    return None


def run(folder: Path, timeout: float, encoding: str = "propositional") -> dict:
    started = time.perf_counter()
    import unified_planning as up
    from unified_planning.shortcuts import OneshotPlanner

    up.shortcuts.get_environment().credits_stream = None
    imported = time.perf_counter()
    inst = read_instance(folder)
    problem = build_problem(inst, encoding)
    built = time.perf_counter()
    out = {"encoding": encoding, "actions": len(problem.actions), "fluents": len(problem.fluents),
           "import_s": imported - started, "build_s": built - imported}
    with OneshotPlanner(name="fast-downward") as planner:
        planner.skip_checks = True  # the kind is known to fit; checking walks every action again
        result = planner.solve(problem, timeout=max(1.0, timeout - (built - started)))
    done = time.perf_counter()
    out["solve_s"] = done - built
    out["total_s"] = done - started
    out["status"] = result.status.name
    out["plan_length"] = len(result.plan.actions) if result.plan is not None else None
    out["planner"] = result.engine_name
    out["fd_planner_s"] = _planner_seconds(result)
    return out


def check_ordo_plan(folder: Path, plan_file: Path) -> dict:
    """Replay ordo's plan (wave by wave) in this encoding with unified-planning's
    validator: evidence that the two formulations describe the same problem."""
    import unified_planning as up
    from unified_planning.plans import ActionInstance, SequentialPlan
    from unified_planning.shortcuts import PlanValidator

    up.shortcuts.get_environment().credits_stream = None
    problem = build_problem(read_instance(folder))
    actions = {a.name: a for a in problem.actions}
    plan = json.loads(plan_file.read_text())
    wave_of = {op: i for i, wave in enumerate(plan["waves"]) for op in wave}
    steps = []
    for op in sorted(plan["operations"], key=lambda o: (wave_of[o["id"]], o["id"])):
        name = f"{op['operation'].replace('-', '_')}__{_ident(op['resource'])}"
        if op["type"] == "vnf" and op["operation"] == "assign":
            name += f"__at__{_ident(plan['placements'][op['resource']])}"
        steps.append(ActionInstance(actions[name]))
    with PlanValidator(problem_kind=problem.kind, plan_kind=SequentialPlan(steps).kind) as validator:
        result = validator.validate(problem, SequentialPlan(steps))
    return {"ordo_plan_valid": result.status.name, "steps": len(steps), "reason": str(result.reason)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Solve a generated project with Fast Downward.")
    parser.add_argument("project", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--encoding", choices=("propositional", "lifted"), default="propositional")
    parser.add_argument("--check-ordo-plan", type=Path, metavar="PLAN_JSON",
                        help="instead of solving, validate this ordo plan against the encoding")
    args = parser.parse_args(argv)
    if args.check_ordo_plan:
        print(json.dumps(check_ordo_plan(args.project, args.check_ordo_plan)))
        return
    print(json.dumps(run(args.project, args.timeout, args.encoding)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
