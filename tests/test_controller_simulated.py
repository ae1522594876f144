"""The simulated controller: its world, ledger, faults, latencies and scenario checks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from executor.controllers import (
    ConfigError,
    ControllerContext,
    OperationRequest,
    PermanentError,
    TransientError,
    load_adapter,
)
from executor.controllers.simulated import (
    Scenario,
    SimulatedController,
    World,
    output_value,
    read_ledger,
    read_world,
    world_path,
)

ROOT = Path(__file__).resolve().parent.parent

INVENTORY = [
    {"name": "mgmt-net", "type": "network", "state": "active", "placement": None,
     "attributes": {"cidr": "10.0.0.0/16", "network_id": "net-0001"}},
    {"name": "vpg", "type": "vnf", "state": "absent", "placement": None, "attributes": {}},
]


def req(resource: str = "vpg", operation: str = "assign", frm: str = "absent", to: str = "assigned", *,
        key: str | None = None, type: str = "vnf", target: str | None = None, attempt: int = 1,
        inputs: dict[str, Any] | None = None, outputs: tuple[str, ...] = ()) -> OperationRequest:
    return OperationRequest(run="run-1", key=key or f"{resource}:{operation}", resource=resource, type=type,
                            operation=operation, from_state=frm, to_state=to, target=target, inputs=inputs or {},
                            attempt=attempt, outputs=outputs)


class Harness:
    """Contexts and controllers that are all closed at the end of a test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.contexts: list[ControllerContext] = []
        self.controllers: list[SimulatedController] = []

    def context(self, scenario: dict[str, Any] | None = None, *, workdir: str = "run",
                inventory: list[dict[str, Any]] | None = None) -> ControllerContext:
        context = ControllerContext(workdir=self.tmp_path / workdir,
                                    inventory=INVENTORY if inventory is None else inventory,
                                    settings={"simulation": scenario or {}})
        self.contexts.append(context)
        return context

    def controller(self, scenario: dict[str, Any] | None = None, *, name: str = "sdnc",
                   config: dict[str, Any] | None = None, context: ControllerContext | None = None,
                   **kwargs: Any) -> SimulatedController:
        context = context or self.context(scenario, **kwargs)
        controller = SimulatedController(name, config or {}, context)
        self.controllers.append(controller)
        return controller

    def reopen(self, controller: SimulatedController, scenario: dict[str, Any] | None = None,
               **kwargs: Any) -> SimulatedController:
        """Close a controller's context (as a crash or the end of a run would) and open its world again."""
        old = next(c for c in self.contexts if c._shared.get("simulated-world") is controller.world)
        controller.close()
        old.close()
        context = ControllerContext(workdir=old.workdir, inventory=old.inventory,
                                    settings={"simulation": scenario if scenario is not None
                                              else old.settings["simulation"]})
        self.contexts.append(context)
        return self.controller(name=controller.name, context=context, **kwargs)

    def close(self) -> None:
        for controller in self.controllers:
            controller.close()
        for context in self.contexts:
            context.close()


@pytest.fixture
def sim(tmp_path: Path):
    harness = Harness(tmp_path)
    yield harness
    harness.close()


# --- the world file -----------------------------------------------------------


def test_registered_as_builtin() -> None:
    assert load_adapter("simulated") is SimulatedController


def test_world_is_seeded_from_the_inventory_once(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    World(path, INVENTORY).close()
    world = read_world(path)
    assert world["mgmt-net"] == {"type": "network", "state": "active", "target": None,
                                 "attributes": {"cidr": "10.0.0.0/16", "network_id": "net-0001"}}
    assert world["vpg"]["state"] == "absent"
    # opening it again with another inventory keeps what the file holds
    World(path, [{"name": "other", "type": "vnf", "state": "active"}]).close()
    assert set(read_world(path)) == {"mgmt-net", "vpg"}
    assert read_ledger(path) == []


def test_world_path_default_and_scenario(sim: Harness) -> None:
    assert world_path(sim.context()) == sim.tmp_path / "run" / "simulated-world.db"
    assert world_path(sim.context({"world": "my.db"}, workdir="two")) == sim.tmp_path / "two" / "my.db"
    controller = sim.controller({"world": "sub/my.db"}, workdir="three")
    controller.execute(req())
    assert read_world(sim.tmp_path / "three" / "sub" / "my.db")["vpg"]["state"] == "assigned"


def test_reading_a_missing_world_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no simulated world"):
        read_ledger(tmp_path / "nothing.db")


# --- execute ------------------------------------------------------------------


def test_execute_applies_state_target_attributes_and_ledger(sim: Harness) -> None:
    controller = sim.controller({"seed": 7})
    outputs = controller.execute(req("vsn", "create", "absent", "created", type="vf-module", target="region-one",
                                     inputs={"flavor": "m1.small"}, outputs=("stack_id", "vnf_id")))
    assert outputs == {"stack_id": output_value(7, "vsn", "stack_id"), "vnf_id": output_value(7, "vsn", "vnf_id")}
    assert outputs["stack_id"].startswith("stack-") and len(outputs["stack_id"]) == len("stack-") + 8
    # target given: stored; a later call without a target keeps it
    controller.execute(req("vsn", "activate", "created", "active", type="vf-module", inputs={"size": 2}))
    path = world_path(sim.contexts[0])
    world = read_world(path)
    assert world["vsn"] == {"type": "vf-module", "state": "active", "target": "region-one",
                            "attributes": {"flavor": "m1.small", "size": 2, **outputs}}
    ledger = read_ledger(path)
    assert [(row["key"], row["operation"], row["from_state"], row["to_state"]) for row in ledger] == [
        ("vsn:create", "create", "absent", "created"), ("vsn:activate", "activate", "created", "active")]
    first = ledger[0]
    assert (first["run"], first["controller"], first["resource"], first["type"], first["target"],
            first["attempt"]) == ("run-1", "sdnc", "vsn", "vf-module", "region-one", 1)
    assert first["inputs"] == {"flavor": "m1.small"} and first["outputs"] == outputs
    assert ledger[1]["target"] == "region-one" and ledger[1]["outputs"] == {}


def test_outputs_are_deterministic_across_worlds(sim: Harness) -> None:
    one = sim.controller({"seed": 1}, workdir="one")
    two = sim.controller({"seed": 1}, workdir="two")
    other = sim.controller({"seed": 2}, workdir="three")
    call = req("net", "assign", type="network", outputs=("network_id",))
    assert one.execute(call) == two.execute(call) == {"network_id": output_value(1, "net", "network_id")}
    assert other.execute(call) != one.execute(call)
    assert one.execute(call)["network_id"].startswith("network-")


def test_an_output_the_resource_already_has_keeps_its_value(sim: Harness) -> None:
    controller = sim.controller()
    outputs = controller.execute(req("mgmt-net", "refresh", "active", "active", type="network",
                                     outputs=("network_id",)))
    assert outputs == {"network_id": "net-0001"}


def test_idempotent_repeat_returns_the_first_answer(sim: Harness) -> None:
    controller = sim.controller()
    first = controller.execute(req(outputs=("vnf_id",)))
    again = controller.execute(req(outputs=("vnf_id",), attempt=2))
    assert again == first
    ledger = read_ledger(world_path(sim.contexts[0]))
    assert len(ledger) == 1 and ledger[0]["attempt"] == 1
    assert read_world(world_path(sim.contexts[0]))["vpg"]["state"] == "assigned"


def test_idempotent_under_concurrent_attempts(sim: Harness) -> None:
    controller = sim.controller({"latency": 0.05})
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(controller.execute(
        req(outputs=("vnf_id",), attempt=n)))) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(result == results[0] for result in results)
    assert len(read_ledger(world_path(sim.contexts[0]))) == 1


def test_non_idempotent_repeat(sim: Harness) -> None:
    controller = sim.controller({"idempotent": False})
    controller.execute(req())
    # the state has moved on: the precondition refuses the second application
    with pytest.raises(PermanentError, match="'vpg' is assigned, not absent") as caught:
        controller.execute(req(attempt=2))
    assert caught.value.applied is False and caught.value.scope == "resource"
    # an operation that leaves the state where it was applies twice
    config = req("vpg", "config-deploy", "assigned", "assigned")
    controller.execute(config)
    controller.execute(config)
    ledger = read_ledger(world_path(sim.contexts[0]))
    assert [row["key"] for row in ledger] == ["vpg:assign", "vpg:config-deploy", "vpg:config-deploy"]


def test_precondition_and_type_checks(sim: Harness) -> None:
    controller = sim.controller()
    with pytest.raises(PermanentError, match="'mgmt-net' is active, not absent") as caught:
        controller.execute(req("mgmt-net", "assign", type="network"))
    assert caught.value.applied is False
    with pytest.raises(PermanentError, match="'vpg' is a vnf, not a network"):
        controller.execute(req("vpg", type="network"))
    # a resource the world does not know is accepted from any state
    controller.execute(req("new-one", "activate", "created", "active"))
    assert read_world(world_path(sim.contexts[0]))["new-one"]["state"] == "active"
    assert len(read_ledger(world_path(sim.contexts[0]))) == 1


# --- faults -------------------------------------------------------------------


def test_refused_fault_concerns_the_target(sim: Harness) -> None:
    controller = sim.controller({"faults": [{"target": "region-two", "operation": "create", "error": "refused"}]})
    for attempt in (1, 2, 3):     # unlimited by default
        with pytest.raises(PermanentError, match="region-two refused") as caught:
            controller.execute(req("vfw", "create", "absent", "created", target="region-two", attempt=attempt))
        assert caught.value.scope == "target" and caught.value.applied is False and caught.value.code == "refused"
    controller.execute(req("vfw", "create", "absent", "created", target="region-one"))
    ledger = read_ledger(world_path(sim.contexts[0]))
    assert [row["target"] for row in ledger] == ["region-one"]


def test_permanent_fault_concerns_the_resource(sim: Harness) -> None:
    controller = sim.controller({"faults": [
        {"resource": ["vfw-base", "vsn-base"], "operation": "create", "error": "permanent", "message": "no"}]})
    for name in ("vfw-base", "vsn-base", "vfw-base"):
        with pytest.raises(PermanentError, match="^no$") as caught:
            controller.execute(req(name, "create", "absent", "created"))
        assert caught.value.scope == "resource" and caught.value.applied is False
    controller.execute(req("vpg-base", "create", "absent", "created"))
    assert len(read_ledger(world_path(sim.contexts[0]))) == 1


def test_transient_fault_times_survive_reopening(sim: Harness) -> None:
    scenario = {"faults": [{"resource": "vpg", "operation": "assign", "error": "transient", "times": 2}]}
    controller = sim.controller(scenario)
    with pytest.raises(TransientError) as caught:
        controller.execute(req(attempt=1))
    assert caught.value.applied is False
    controller = sim.reopen(controller)            # as if the process died and the run resumed
    with pytest.raises(TransientError):
        controller.execute(req(attempt=2))
    controller = sim.reopen(controller)
    assert controller.execute(req(attempt=3, outputs=("vnf_id",))) == {"vnf_id": output_value(0, "vpg", "vnf_id")}
    assert [row["attempt"] for row in read_ledger(controller.world.path)] == [3]


def test_faults_match_on_every_field_and_the_first_with_hits_left_wins(sim: Harness) -> None:
    controller = sim.controller({"faults": [
        {"controller": "openstack", "error": "permanent"},
        {"type": "vnf", "operation": "assign", "error": "transient"},
        {"type": "vnf", "operation": "assign", "error": "permanent", "times": 1},
    ]})
    with pytest.raises(TransientError):      # fault 0 is for another controller; fault 1 fires once
        controller.execute(req())
    with pytest.raises(PermanentError):      # fault 1 is spent: fault 2
        controller.execute(req(attempt=2))
    controller.execute(req(attempt=3))       # all spent
    assert [controller.world.hits(fault) for fault in controller.scenario.faults] == [0, 1, 1]
    other = sim.controller(name="openstack", context=sim.contexts[0])
    with pytest.raises(PermanentError):
        other.execute(req("x", "create", "absent", "created"))


def test_lost_fault_applies_then_raises(sim: Harness) -> None:
    controller = sim.controller({"faults": [{"resource": "vsink-base", "operation": "create", "error": "lost"}]})
    call = req("vsink-base", "create", "absent", "created", type="vf-module", outputs=("stack_id",))
    with pytest.raises(TransientError, match="answer lost") as caught:
        controller.execute(call)
    assert caught.value.applied is None
    path = controller.world.path
    assert read_world(path)["vsink-base"]["state"] == "created"
    assert len(read_ledger(path)) == 1
    seen = controller.observe("vsink-base", "vf-module", call)
    assert seen.applied is True and seen.outputs == {"stack_id": output_value(0, "vsink-base", "stack_id")}
    # the retry (same key) gets the first answer; nothing is applied twice
    assert controller.execute(replace_attempt(call, 2)) == seen.outputs
    assert len(read_ledger(path)) == 1


def test_died_fault_applies_then_fails_for_good_in_doubt(sim: Harness) -> None:
    """The controller died after it applied the call (killed mid-call): a permanent error whose effect is not
    known, which observing the call by its key settles, with its outputs."""
    controller = sim.controller({"faults": [{"resource": "vsink-base", "operation": "create", "error": "died"}]})
    call = req("vsink-base", "create", "absent", "created", type="vf-module", outputs=("stack_id",))
    with pytest.raises(PermanentError, match="the controller died after it applied it") as caught:
        controller.execute(call)
    assert caught.value.applied is None and caught.value.code == "died"
    seen = controller.observe("vsink-base", "vf-module", call)
    assert seen.applied is True and seen.outputs == {"stack_id": output_value(0, "vsink-base", "stack_id")}
    assert len(read_ledger(controller.world.path)) == 1


def replace_attempt(call: OperationRequest, attempt: int) -> OperationRequest:
    from dataclasses import replace
    return replace(call, attempt=attempt)


def test_hang_fault_returns_promptly_after_close(sim: Harness) -> None:
    controller = sim.controller({"faults": [{"resource": "vfw", "operation": "config-deploy", "error": "hang"}]})
    call = req("vfw", "config-deploy", "active", "active")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            controller.execute(call)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive()
    threading.Thread(target=controller.close).start()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 3
    assert isinstance(outcome[0], TransientError) and outcome[0].applied is False
    assert read_ledger(controller.world.path) == []


def test_closing_the_context_wakes_a_hanging_call(sim: Harness) -> None:
    context = sim.context({"faults": [{"error": "hang"}]})
    controller = SimulatedController("sdnc", {}, context)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: outcome.append(pytest.raises(TransientError, controller.execute,
                                                                          req()).value))
    thread.start()
    time.sleep(0.1)
    context.close()
    thread.join(timeout=5)
    assert not thread.is_alive() and outcome[0].applied is False
    controller.close()


def test_transient_rate_is_roughly_kept_and_reproducible(sim: Harness) -> None:
    def failures(workdir: str) -> list[str]:
        controller = sim.controller({"seed": 3, "transient_rate": 0.2}, workdir=workdir)
        failed = []
        for n in range(500):
            try:
                controller.execute(req(f"r{n}"))
            except TransientError as exc:
                assert exc.applied is False
                failed.append(f"r{n}")
        return failed

    first = failures("one")
    assert 70 <= len(first) <= 130
    assert failures("two") == first
    assert len(read_ledger(world_path(sim.contexts[0]))) == 500 - len(first)


def test_latency_is_slept(sim: Harness) -> None:
    controller = sim.controller({"latency": {"default": 0.0, "create": 0.15, "vf-module/create": 0.3}})
    for call, low, high in [(req("a"), 0.0, 0.14),
                            (req("b", "create", type="vnf"), 0.15, 0.29),
                            (req("c", "create", type="vf-module"), 0.3, 2.0)]:
        started = time.monotonic()
        controller.execute(call)
        assert low <= time.monotonic() - started < high


def test_latency_from_config_scenario_overrides_and_jitter(sim: Harness) -> None:
    configured = sim.controller(config={"latency": 0.2, "jitter": 0.5}, workdir="one")
    overridden = sim.controller({"latency": 0.0}, config={"latency": 5, "jitter": 0.5}, workdir="two")
    assert overridden.delay(req()) == 0.0
    delays = {configured.delay(req(f"r{n}")) for n in range(50)}
    assert len(delays) > 40 and all(0.1 <= d <= 0.3 for d in delays)
    assert configured.delay(req("r1")) == configured.delay(req("r1"))
    assert configured.delay(req("r1")) != configured.delay(req("r1", attempt=2))


def test_close_interrupts_latency(sim: Harness) -> None:
    controller = sim.controller({"latency": 30})
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: outcome.append(pytest.raises(TransientError, controller.execute,
                                                                          req()).value))
    thread.start()
    time.sleep(0.1)
    controller.close()
    thread.join(timeout=5)
    assert not thread.is_alive() and outcome[0].applied is False
    assert read_ledger(controller.world.path) == []
    with pytest.raises(TransientError, match="closed"):
        controller.execute(req())


# --- observe ------------------------------------------------------------------


def test_observe(sim: Harness) -> None:
    controller = sim.controller()
    seen = controller.observe("mgmt-net", "network")
    assert seen.exists and seen.state == "active" and seen.applied is None and seen.outputs is None
    assert seen.attributes["network_id"] == "net-0001"
    missing = controller.observe("nothing", "vnf")
    assert not missing.exists and missing.state is None and missing.applied is None
    call = req("vfw", "create", "absent", "created", target="region-one", outputs=("stack_id",))
    before = controller.observe("vfw", "vnf", call)
    assert not before.exists and before.applied is False and before.outputs is None
    outputs = controller.execute(call)
    after = controller.observe("vfw", "vnf", call)
    assert (after.exists, after.state, after.target, after.applied, after.outputs) == (
        True, "created", "region-one", True, outputs)
    other = controller.observe("vfw", "vnf", req("vfw", "activate", "created", "active"))
    assert other.applied is False and other.state == "created"


# --- scenario and config checks -----------------------------------------------


@pytest.mark.parametrize(("scenario", "config", "message"), [
    ({"faults": [{"error": "transient"}, {"error": "boom"}]}, {},
     r"^simulation\.faults\[1\]\.error: expected one of refused, permanent, transient, lost, died, hang, not 'boom'$"),
    ({"faults": [{"resource": "x"}]}, {}, r"simulation.faults\[0\].error: expected one of"),
    ({"faults": [{"error": "lost", "times": -1}]}, {}, r"simulation.faults\[0\].times"),
    ({"faults": [{"error": "lost", "resourse": "x"}]}, {}, r"simulation.faults\[0\].resourse: .*'resource'"),
    ({"faults": [{"error": "lost", "target": 3}]}, {}, r"simulation.faults\[0\].target"),
    ({"faults": "x"}, {}, "simulation.faults: expected a list"),
    ({"faults": ["x"]}, {}, r"simulation.faults\[0\]: expected a mapping"),
    ({"transient_rate": 1.5}, {}, "simulation.transient_rate: expected a number from 0 to 1"),
    ({"jitter": -0.1}, {}, "simulation.jitter"),
    ({"latency": "slow"}, {}, "simulation.latency: expected a number"),
    ({"latency": {"create": -1}}, {}, "simulation.latency.create"),
    ({"latency": True}, {}, "simulation.latency"),
    ({"idempotent": "yes"}, {}, "simulation.idempotent: expected true or false"),
    ({"seed": 1.5}, {}, "simulation.seed"),
    ({"sede": 1}, {}, r"simulation.sede: unknown setting \(did you mean 'seed'\?\)"),
    ({"world": ""}, {}, "simulation.world"),
    ({}, {"latency": -2}, "config.latency"),
    ({}, {"jitter": 2}, "config.jitter: expected a number from 0 to 1"),
    ({}, {"url": "http://x"}, "config.url: unknown setting"),
])
def test_bad_settings_name_the_field(sim: Harness, scenario: dict, config: dict, message: str) -> None:
    context = sim.context(scenario)
    with pytest.raises(ConfigError, match=message):
        SimulatedController("sdnc", config, context)
    assert not (sim.tmp_path / "run").exists()        # nothing is created for a wrong scenario


def test_scenario_must_be_a_mapping(sim: Harness) -> None:
    context = sim.context()
    context.settings["simulation"] = ["seed"]
    with pytest.raises(ConfigError, match="simulation: expected a mapping"):
        SimulatedController("sdnc", {}, context)


def test_scenario_defaults() -> None:
    scenario = Scenario.parse(None)
    assert (scenario.seed, scenario.idempotent, scenario.latency, scenario.transient_rate, scenario.faults) == (
        "0", True, None, 0.0, ())
    faults = Scenario.parse({"faults": [{"error": e} for e in ("refused", "permanent", "transient", "lost",
                                                               "hang")]}).faults
    assert [fault.times for fault in faults] == [None, None, 1, 1, 1]


# --- durability and isolation -------------------------------------------------


def test_world_survives_reopening(sim: Harness) -> None:
    controller = sim.controller({"seed": 5})
    outputs = controller.execute(req(outputs=("vnf_id",)))
    controller = sim.reopen(controller)
    assert controller.execute(req(attempt=2, outputs=("vnf_id",))) == outputs
    assert controller.observe("vpg", "vnf").state == "assigned"
    controller.execute(req("vpg", "create", "assigned", "created"))
    assert [row["key"] for row in read_ledger(controller.world.path)] == ["vpg:assign", "vpg:create"]


def test_world_survives_a_killed_process(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from executor.controllers import ControllerContext, OperationRequest
        from executor.controllers.simulated import SimulatedController
        context = ControllerContext(workdir=Path({str(tmp_path)!r}),
                                    inventory=[{{"name": "vpg", "type": "vnf", "state": "absent"}}])
        controller = SimulatedController("sdnc", {{}}, context)
        controller.execute(OperationRequest(run="r", key="k1", resource="vpg", type="vnf", operation="assign",
                                            from_state="absent", to_state="assigned", outputs=("vnf_id",)))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    path = tmp_path / "simulated-world.db"
    assert [row["key"] for row in read_ledger(path)] == ["k1"]
    assert read_world(path)["vpg"]["state"] == "assigned"
    # a resumed run opens the same file: no re-seeding, the key is known
    context = ControllerContext(workdir=tmp_path, inventory=[{"name": "vpg", "type": "vnf", "state": "absent"}])
    try:
        controller = SimulatedController("sdnc", {}, context)
        seen = controller.observe("vpg", "vnf", OperationRequest(
            run="r", key="k1", resource="vpg", type="vnf", operation="assign", from_state="absent",
            to_state="assigned"))
        assert seen.state == "assigned" and seen.applied is True and set(seen.outputs) == {"vnf_id"}
        controller.close()
    finally:
        context.close()


def test_contexts_do_not_share_worlds(sim: Harness) -> None:
    one = sim.controller(workdir="one")
    two = sim.controller(workdir="two")
    also_one = sim.controller(name="openstack", context=sim.contexts[0])
    assert one.world is also_one.world and one.world is not two.world
    one.execute(req())
    assert one.observe("vpg", "vnf").state == "assigned"
    assert two.observe("vpg", "vnf").state == "absent"
    assert also_one.observe("vpg", "vnf").state == "assigned"
    assert len(read_ledger(two.world.path)) == 0


def test_a_world_named_as_the_journal_or_its_files_is_refused_and_the_journal_kept(vfw_copy: Path) -> None:
    """`world: journal.db-wal` wrote the world into the journal's write-ahead log: ordo apply said
    "Apply complete" and the run was gone from the journal; `journal.db` got the world's tables, and
    `journal.db-shm` was a bug in ordo (the CLI sweep of 6 December)."""
    import sqlite3

    from tests.conftest import run_ordo

    smooth = vfw_copy / "simulations" / "smooth.yaml"
    assert run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", smooth).code == 0
    journal = vfw_copy / ".ordo" / "journal.db"

    def events() -> int:
        with sqlite3.connect(journal) as db:
            count = db.execute("SELECT count(*) FROM events").fetchone()[0]
        db.close()
        return count

    before = events()
    (vfw_copy / ".ordo" / "notes.txt").write_text("not a database\n")
    sqlite3.connect(vfw_copy / ".ordo" / "other.db").close()   # (an empty database, as another journal)
    (vfw_copy / ".ordo" / "copy.db").write_bytes(journal.read_bytes())
    evil = vfw_copy / "simulations" / "evil.yaml"
    for world, said in (("journal.db-wal", "is the journal's file, or one SQLite keeps beside it"),
                        ("journal.db", "is the journal's file, or one SQLite keeps beside it"),
                        ("other.db-journal", "SQLite keeps this file beside the database other.db"),
                        ("copy.db", "not a simulated world: it holds other tables (claims, events"),
                        ("notes.txt", "not a simulated world (not an SQLite database)")):
        evil.write_text(f"seed: 1\nworld: {world}\n")
        run = run_ordo("apply", "-C", vfw_copy, "requests/scale-out.yaml", "--auto-approve", "--simulation", evil)
        assert run.code == 1 and said in run.err, (world, run.text)
    assert events() == before and (vfw_copy / ".ordo" / "notes.txt").read_text() == "not a database\n"
    evil.write_text("seed: 1\nworld: sim-journal\n")   # (a name of those endings, beside no database: a world)
    run = run_ordo("apply", "-C", vfw_copy, "requests/scale-out.yaml", "--auto-approve", "--simulation", evil)
    assert run.code == 0 and (vfw_copy / ".ordo" / "sim-journal").is_file(), run.text
    with sqlite3.connect(journal) as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger'").fetchone()
    db.close()


def _open_world(path: str, barrier: Any, errors: Any) -> None:
    from executor.controllers.simulated import World

    inventory = [{"name": f"r{i}", "type": "network", "state": "active", "attributes": {"i": i}} for i in range(3000)]
    barrier.wait()
    try:
        World(path, inventory).close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_worlds_opened_at_once_by_several_processes_open(tmp_path: Path) -> None:
    """Two `ordo apply` started together on a new simulated world: the second's change of the file to WAL
    was refused at once ("database is locked", SQLite waits for no lock there), "a bug in ordo" (an
    operator's sweep). Four processes at once, ten times over: each opens it (the code before failed in most
    runs of this)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for round_ in range(10):
        path = str(tmp_path / f"world-{round_}.db")
        barrier = context.Barrier(4)
        procs = [context.Process(target=_open_world, args=(path, barrier, errors)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
