"""Generate a synthetic ordo project of exactly N resources (deterministic).

The shape follows the vFW example (examples/vfw): its catalog is copied as is,
and the request is a flat list of resources:

* services, each with 2-4 networks and 2-5 VNFs;
* each VNF has 1-3 VF modules; each VF module ``uses`` 1-3 networks of its
  own service (and, now and then, the shared management network that already
  exists in the inventory) -- the layered dependencies;
* each VNF needs capacity (vcpu, memory_gb) and is placed by the planner on one
  of a handful of cloud regions (each in its own zone, with a ``cost``
  attribute); in about half the services two or three VNFs share an
  ``anti-affinity`` label, so they must land in different zones.

Region capacities are large enough that every region could hold every VNF:
the instances are always satisfiable, and capacity never binds.

N counts every resource the planner sees: the one inventory resource
(``mgmt-net``) plus every requested one. The same (N, seed) always gives the
same bytes.

Usage::

    python benchmarks/generate.py N OUT_DIR [--seed S]
"""

from __future__ import annotations

import argparse
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
VFW_CATALOG = HERE.parent / "examples" / "vfw" / "catalog.yaml"

#: (name, zone, cost) of the placement targets.
REGIONS = (
    ("region-east", "az-east", 3),
    ("region-west", "az-west", 1),
    ("region-north", "az-north", 2),
    ("region-south", "az-south", 4),
)
SHARED_NETWORK = "mgmt-net"
FLAVOURS = ((2, 4), (4, 8), (8, 16))  # (vcpu, memory_gb)


@dataclass
class Instance:
    """The generated resources, in a form both ordo and the PDDL encoding read."""

    n: int
    seed: int
    regions: tuple[tuple[str, str, int], ...]
    capacity: dict[str, int]
    shared: list[str]                                   # existing, active networks
    services: list[str] = field(default_factory=list)
    networks: dict[str, str] = field(default_factory=dict)        # network -> service
    vnfs: dict[str, str] = field(default_factory=dict)            # vnf -> service
    modules: dict[str, str] = field(default_factory=dict)         # vf-module -> vnf
    uses: dict[str, list[str]] = field(default_factory=dict)      # vf-module -> networks
    requires: dict[str, dict[str, int]] = field(default_factory=dict)  # vnf -> needs
    anti_affinity: dict[str, str] = field(default_factory=dict)   # vnf -> group

    @property
    def count(self) -> int:
        return (len(self.shared) + len(self.services) + len(self.networks) + len(self.vnfs)
                + len(self.modules))


def build(n: int, seed: int = 1) -> Instance:
    """Exactly n resources (n >= 1), laid out service by service."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = random.Random(f"ordo-bench:{n}:{seed}")
    inst = Instance(n=n, seed=seed, regions=REGIONS, capacity={}, shared=[SHARED_NETWORK])
    budget = n - 1  # the shared network counts
    index = 0
    while budget > 0:
        index += 1
        svc = f"svc-{index:05d}"
        inst.services.append(svc)
        budget -= 1
        nets: list[str] = []
        for k in range(rng.randint(2, 4)):
            if budget <= 0:
                break
            net = f"{svc}-net-{k + 1}"
            inst.networks[net] = svc
            nets.append(net)
            budget -= 1
        svc_vnfs: list[str] = []
        for k in range(rng.randint(2, 5)):
            if budget < 2 or not nets:  # a VNF comes with at least one VF module
                break
            vnf = f"{svc}-vnf-{k + 1}"
            inst.vnfs[vnf] = svc
            svc_vnfs.append(vnf)
            vcpu, mem = rng.choice(FLAVOURS)
            inst.requires[vnf] = {"vcpu": vcpu, "memory_gb": mem}
            budget -= 1
            for m in range(min(rng.randint(1, 3), budget)):
                mod = f"{vnf}-mod-{m + 1}"
                inst.modules[mod] = vnf
                used = rng.sample(nets, min(rng.randint(1, 3), len(nets)))
                if rng.random() < 0.25:
                    used.append(SHARED_NETWORK)
                inst.uses[mod] = sorted(used)
                budget -= 1
        if len(svc_vnfs) >= 2 and rng.random() < 0.5:
            group = f"{svc}-path"
            for vnf in rng.sample(svc_vnfs, min(rng.randint(2, 3), len(svc_vnfs))):
                inst.anti_affinity[vnf] = group
        if budget == 1:  # too little for another service with children: one more network
            net = f"{svc}-net-{len(nets) + 1}"
            inst.networks[net] = svc
            budget -= 1
    total = {"vcpu": 0, "memory_gb": 0}
    for needs in inst.requires.values():
        for key in total:
            total[key] += needs[key]
    # Every region could hold everything: capacity never binds.
    inst.capacity = {key: max(16, value) for key, value in total.items()}
    assert inst.count == n, (inst.count, n)
    return inst


def request_doc(inst: Instance) -> dict:
    """The request as a flat list of resources."""
    by_service: dict[str, list[dict]] = {svc: [{"name": svc, "type": "service"}] for svc in inst.services}
    for net, svc in inst.networks.items():
        by_service[svc].append({"name": net, "type": "network", "part_of": svc})
    modules_of: dict[str, list[str]] = {}
    for mod, vnf in inst.modules.items():
        modules_of.setdefault(vnf, []).append(mod)
    for vnf, svc in inst.vnfs.items():
        entry: dict = {"name": vnf, "type": "vnf", "part_of": svc, "requires": dict(inst.requires[vnf])}
        if vnf in inst.anti_affinity:
            entry["labels"] = {"anti-affinity": inst.anti_affinity[vnf]}
        by_service[svc].append(entry)
        for mod in modules_of.get(vnf, []):
            by_service[svc].append({"name": mod, "type": "vf-module", "part_of": vnf, "uses": list(inst.uses[mod])})
    resources = [entry for svc in inst.services for entry in by_service[svc]]
    return {
        "name": f"bench-{inst.n}",
        "description": f"synthetic service model: {inst.n} resources, seed {inst.seed}",
        "resources": resources,
    }


def inventory_doc(inst: Instance) -> dict:
    return {
        "targets": {
            name: {"zone": zone, "capacity": dict(inst.capacity), "attributes": {"cost": cost}}
            for name, zone, cost in inst.regions
        },
        "resources": [{"name": net, "type": "network", "state": "active"} for net in inst.shared],
    }


def project_doc() -> dict:
    return {
        "catalog": "catalog.yaml",
        "inventory": "inventory.yaml",
        "request": "request.yaml",
        "policies": {"library": ["capacity", "anti-affinity", "prefer-cheaper-region"]},
        "settings": {"concurrency": 10, "solve_timeout": 60},
    }


def _dump(path: Path, doc: dict, header: str) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False, width=120)
    path.write_text(header + text, encoding="utf-8")


def write_project(n: int, out: Path | str, seed: int = 1) -> Instance:
    """Write ordo.yaml, catalog.yaml, inventory.yaml and request.yaml into out."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inst = build(n, seed)
    shutil.copyfile(VFW_CATALOG, out / "catalog.yaml")
    note = f"# generated by benchmarks/generate.py: N={n}, seed={seed}\n"
    _dump(out / "ordo.yaml", project_doc(), note)
    _dump(out / "inventory.yaml", inventory_doc(inst), note)
    _dump(out / "request.yaml", request_doc(inst), note)
    return inst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of resources")
    parser.add_argument("out", type=Path, help="project folder to write")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    inst = write_project(args.n, args.out, args.seed)
    print(f"{args.out}: {inst.count} resources: {len(inst.services)} services, {len(inst.networks)} "
          f"networks (+{len(inst.shared)} existing), {len(inst.vnfs)} VNFs, {len(inst.modules)} VF modules")


if __name__ == "__main__":
    main()
