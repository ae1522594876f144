"""``ordo init``: a small, valid, commented project to start from.

Two resource types (a network, and servers placed on one of two sites), an
inventory with the sites, a request in the flat ``resources:`` format, two
stock policies (one with a parameter), a policy of the project's own and a
policy test. ``ordo check``, ``ordo plan`` and ``ordo test`` pass on it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from domain.errors import OrdoError

ORDO_YAML = """\
# ordo project file: what `ordo check`, `ordo plan`, `ordo apply` and `ordo test`
# load in this folder. Paths are relative to this file.
catalog: catalog.yaml        # resource types, their lifecycles and controllers
inventory: inventory.yaml    # what exists now: targets (sites) and resources
request: request.yaml        # the desired state; `ordo plan OTHER.yaml` plans another
policies:
  library:                   # stock policies shipped with ordo (policies/README.md)
    - capacity               # what is placed on a site fits its capacity
    - prefer-cheaper-region  # new servers go where cost x size is lowest
  parameters:                # the keys stock policies read, in this project's words
    prefer-cheaper-region: { weight_key: cpu }   # size = the `cpu` a server requires
  files:                     # this project's own policies
    - policies/private-db.lp
settings:
  concurrency: 4             # at most this many operations at once
  solve_timeout: 10          # seconds the planner may take
"""

CATALOG_YAML = """\
# The catalog: what kinds of resource there are, how each is brought up and
# torn down (its lifecycle), and which controller carries out each step.

controllers:
  cloud:
    kind: simulated          # ordo's simulator: no real calls (http and command call real ones)
    concurrency: 2
    description: creates and deletes networks and servers

lifecycles:
  standard:
    states: [absent, assigned, created, active]   # in rank order; the first is the initial state
    operations:                                   # every state has a way up and a way down
      assign:     { from: absent,   to: assigned }
      create:     { from: assigned, to: created }
      activate:   { from: created,  to: active }
      deactivate: { from: active,   to: created }
      delete:     { from: created,  to: assigned }
      unassign:   { from: assigned, to: absent }

types:
  network:
    lifecycle: standard
    controller: cloud
  server:
    lifecycle: standard
    controller: cloud
    placement: true          # each server is placed on one target (a site) of the inventory
    operations:
      create: { duration: 30 }   # expected seconds, for the schedule
"""

INVENTORY_YAML = """\
# What exists now. Targets are where placeable resources go: a zone, capacities
# (what `requires` counts against), attributes and labels that policies read.
targets:
  site-a:
    zone: zone-1
    capacity: { cpu: 16 }
    attributes: { cost: 2 }
    labels: { public: false }
  site-b:
    zone: zone-2
    capacity: { cpu: 16 }
    attributes: { cost: 1 }  # cheaper, but public: private-db keeps databases off it
    labels: { public: true }
resources: []                # nothing yet; `ordo apply` records what it does in .ordo/
"""

REQUEST_YAML = """\
# The desired state, in the flat format: a list of resources of any type,
# related by name (uses, part_of, hosted_on). The nested format
# (services: { NAME: { networks: [...], vnfs: [...] } }) says the same for
# service trees. A resource without `state` goes to its type's last state.
resources:
  - name: app-net
    type: network
  - name: web
    type: server
    uses: [app-net]          # created after app-net is active; deleted before it goes
    requires: { cpu: 4 }     # counted by capacity, weighed by prefer-cheaper-region
  - name: db
    type: server
    uses: [app-net]
    requires: { cpu: 8 }
    labels: { tier: db }     # labels are metadata that policies read
"""

POLICY_LP = """\
%@ name: private-db
%@ description: A server labelled tier: db is never placed on a public target.
%@ owner: me
%@ enforcement: hard

% private-db: a server labelled `tier: db` is never placed on a target labelled
% `public: true`. (An integrity constraint: when no plan can keep it, the
% explanation names this file and line, and shows this comment.)
:- label(R,"tier","db"), place(R,T), target_label(T,"public",true).
"""

POLICY_TEST_YAML = """\
# Policy tests: `ordo test` plans each case and checks what it expects
# (policies/README.md, "Testing policies"). By default a case plans the project
# as ordo.yaml names it; a case may give its own inventory or request inline.
tests:
  - name: the database stays off the public site; the web server goes where it is cheaper
    expect:
      placements: { db: site-a, web: site-b }
      violations: []

  - name: without private-db, the database goes to the cheaper site too
    policies: { without: [private-db] }
    expect:
      placements: { db: site-b, web: site-b }

  - name: when the cheaper site is too small for the web server, it joins the database
    inventory:
      targets:
        site-a: { zone: zone-1, capacity: { cpu: 16 }, attributes: { cost: 2 }, labels: { public: false } }
        site-b: { zone: zone-2, capacity: { cpu: 2 }, attributes: { cost: 1 }, labels: { public: true } }
    expect:
      placements: { db: site-a, web: site-a }

  - name: with no private site, no plan keeps the database off the public one
    inventory:
      targets:
        site-b: { zone: zone-2, capacity: { cpu: 16 }, attributes: { cost: 1 }, labels: { public: true } }
    expect:
      conflicts: [private-db]
"""

#: The files ``ordo init`` writes, relative to the project folder.
FILES: dict[str, str] = {
    "ordo.yaml": ORDO_YAML,
    "catalog.yaml": CATALOG_YAML,
    "inventory.yaml": INVENTORY_YAML,
    "request.yaml": REQUEST_YAML,
    "policies/private-db.lp": POLICY_LP,
    "tests/placement_test.yaml": POLICY_TEST_YAML,
}


def init_project(folder: Path) -> list[Path]:
    """Write a new project into ``folder`` (created if needed); refuse, and
    write nothing, if any of its files exists already."""
    targets = [folder / rel for rel in FILES]
    try:   # (a name too long, a folder that may not be looked into: said as a write that fails is)
        present = [str(p) for p in targets if p.exists() or p.is_symlink()]
        if present:
            raise OrdoError(f"not overwriting existing files: {', '.join(present)} (choose an empty folder: "
                            "ordo init DIR)")
        if folder.exists() and not folder.is_dir():
            raise OrdoError(f"{folder} is not a folder")
        # the folders it makes (deepest last), removed again with what it wrote when a write fails
        made = sorted({p for t in targets for p in [t.parent, *t.parent.parents] if not p.exists()},
                      key=lambda p: len(p.parts))
    except OSError as exc:
        raise OrdoError(f"cannot write the project in {folder}: {exc.strerror or exc}") from None
    written: list[Path] = []
    try:
        for path, text in zip(targets, FILES.values(), strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as out:  # never overwrite, even a file that just appeared
                written.append(path)
                out.write(text)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        for each in reversed(made):
            with contextlib.suppress(OSError):
                each.rmdir()
        raise OrdoError(f"cannot write the project in {folder}: {exc.strerror or exc}"
                        + (f": {exc.filename}" if exc.filename else "") + " (nothing was left behind)") from None
    return targets
