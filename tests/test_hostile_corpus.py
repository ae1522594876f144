"""The hostile corpus (tests/hostile/cases.yaml): broken and hostile inputs.

Each case runs ``ordo`` in a process of its own, as an operator or an
attacker would, in a copy of the vFW example whose journal holds a completed
apply. The processes are forked from a zygote that has imported ordo
(tests/zygote.py): the console script's entry point without the
interpreter's start, which would be most of each run;
``test_the_zygote_runs_cases_as_the_console_script_does`` checks a sample
of cases through the installed script too. Every run must end with a clear error (the file and line, or the
field), no traceback, within 10 s and 1 GB, and must leave the journal
byte for byte as it was. The file's header describes the case format.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, VFW, ordo_executable
from tests.zygote import Zygote

CASES = yaml.safe_load((ROOT / "tests" / "hostile" / "cases.yaml").read_text(encoding="utf-8"))
SECONDS = 10.0
MEMORY_KB = 1024 * 1024  # 1 GB of peak resident memory
ADDRESS_SPACE = 4 << 30  # a safety net for the machine, well above what is measured


def environment() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}
    env.pop("ORDO_JOURNAL", None)
    env.pop("ORDO_SIMULATION", None)
    return env


def forked(zygote: Zygote, args: list[str], cwd: Path) -> tuple[int, str, float, int]:
    """``ordo args`` forked from the zygote; (exit code, output, seconds, peak resident KB)."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "out"
        code, peak, seconds = zygote.run(ordo_executable(), args, cwd, environment(), log, SECONDS,
                                         address_space=ADDRESS_SPACE)
        out = log.read_bytes().decode("utf-8", "replace")
    return (-9 if code is None else code), out, seconds, peak


def ordo(args: list[str], cwd: Path) -> tuple[int, str, float, int]:
    """Run the installed ordo script; return (exit code, output, seconds, peak resident KB)."""
    env = environment()

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        os.setsid()

    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([ordo_executable(), *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, preexec_fn=limits)
        code, peak = -9, 0
        while time.monotonic() - started < SECONDS:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code, peak = os.waitstatus_to_exitcode(status), usage.ru_maxrss
                break
            time.sleep(0.02)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
        proc.returncode = code  # reaped here, so that Popen does not wait for it again
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    return code, out, time.monotonic() - started, peak


# ---------------------------------------------------------------- generated contents

def alias_bomb(key: str) -> str:
    lines = [f"{key}:", '  - &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghij"
    for prev, cur in zip(names, names[1:], strict=False):
        lines.append(f"  - &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def generate(spec: dict, root: Path, path: Path) -> bytes | None:
    kind = spec["generate"]
    if kind == "bytes":
        return spec["text"].encode("latin-1")
    if kind == "alias_bomb":
        return alias_bomb(spec["key"]).encode()
    if kind == "deep_yaml":
        return ("- " * spec["depth"] + "x\n").encode()
    if kind == "deep_flow_yaml":
        return ("services: " + "[" * spec["depth"] + "]" * spec["depth"] + "\n").encode()
    if kind == "deep_json":
        return ("[" * spec["depth"] + "]" * spec["depth"]).encode()
    if kind == "long_integer_yaml":
        return b"name: evil\nresources:\n- {name: n1, type: network, params: {x: " + b"9" * spec["digits"] + b"}}\n"
    if kind == "big_string_yaml":
        return b'services:\n  s:\n    params: {x: "' + b"A" * (spec["megabytes"] << 20) + b'"}\n'
    if kind == "big_json":   # a plan of `megabytes` of `item`s (JSON) in `field`, after the top-level fields `head`
        one = spec.get("item", '{"id": "x/create", "resource": "x", "operation": "create"}').encode()
        count = (spec["megabytes"] << 20) // (len(one) + 1)
        head, field = spec.get("head", "").encode(), spec.get("field", "operations").encode()
        items = (one + b",") * (count - 1) + one   # as b",".join, without a list of millions (seconds)
        return b'{"format_version": "1.1", ' + head + b'"' + field + b'": [' + items + b"]}"
    if kind == "many_keys":   # a plan object with `megabytes` of keys no plan has
        count = (spec["megabytes"] << 20) // len(b'"k0000000": 0, ')
        return b'{"format_version": "1.1", ' + (b'"k%07d": 0, ' * count) % tuple(range(count)) + b'"x": 0}'
    if kind == "random_bytes":
        return random.Random(spec["seed"]).randbytes(spec["size"])
    if kind == "append":
        return (root / spec["to"]).read_bytes() + spec["text"].encode()
    if kind == "replace":
        text = (root / spec["in"]).read_text(encoding="utf-8")
        assert spec["old"] in text, f"the case's `old` text is not in {spec['in']}"
        return text.replace(spec["old"], spec["new"]).encode()
    if kind == "symlink_loop":
        path.unlink(missing_ok=True)
        other = path.with_name("loop-" + path.name)
        os.symlink(other.name, path)
        os.symlink(path.name, other)
        return None
    if kind == "symlink":
        path.unlink(missing_ok=True)
        os.symlink(spec["to"], path)
        return None
    if kind == "folder":
        path.unlink(missing_ok=True)
        path.mkdir()
        return None
    raise AssertionError(f"unknown generator {kind}")


def merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        elif isinstance(value, list) and isinstance(base.get(key), list):
            base[key] = base[key] + value
        else:
            base[key] = value
    return base


# ---------------------------------------------------------------- saved-plan edits

def _rename_op(plan: dict, old: str, new: str) -> None:
    for edge in plan["edges"]:
        edge["before"] = new if edge["before"] == old else edge["before"]
        edge["after"] = new if edge["after"] == old else edge["after"]
    plan["waves"] = [[new if o == old else o for o in wave] for wave in plan["waves"]]
    for change in plan["resource_changes"]:
        change["operations"] = [new if o == old else o for o in change["operations"]]


def edit_plan(plan: dict, edit: str) -> dict:
    ops = plan["operations"]
    if edit == "add_protected_teardown":
        last = max(op["wave"] for op in ops)
        steps = [("deactivate", "active", "created", "sdnc"), ("delete", "created", "assigned", "openstack"),
                 ("unassign", "assigned", "absent", "sdnc")]
        ids = []
        for i, (name, src, dst, ctrl) in enumerate(steps):
            oid = f"onap-mgmt-net/{name}"
            ids.append(oid)
            ops.append({"controller": ctrl, "duration": 1.0, "from_state": src, "id": oid, "operation": name,
                        "reason": "requested: absent (now active)", "resource": "onap-mgmt-net",
                        "to_state": dst, "type": "network", "wave": last + 1 + i})
            plan["waves"].append([oid])
        plan["edges"] += [{"before": a, "after": b, "rules": ["<base>/lifecycle.lp:1"]}
                          for a, b in zip(ids, ids[1:], strict=False)]
        plan["resource_changes"].append({"actions": ["delete"], "after": "absent", "before": "active",
                                         "operations": ids, "placement": None, "resource": "onap-mgmt-net",
                                         "reason": "requested: absent (now active)", "type": "network"})
    elif edit == "unknown_operation":
        op = next(o for o in ops if o["resource"] == "vfw")
        old, op["operation"], op["id"] = op["id"], "reboot", "vfw/reboot"
        _rename_op(plan, old, "vfw/reboot")
    elif edit == "cycle":
        first = plan["edges"][0]
        plan["edges"].append({"before": first["after"], "after": first["before"], "rules": first["rules"]})
    elif edit == "drop_edge":
        del plan["edges"][0]
    elif edit == "move_placement":
        now = plan["placements"]["vfw"]
        plan["placements"]["vfw"] = next(t for t in ("region-one", "region-two", "region-three") if t != now)
        for change in plan["resource_changes"]:
            if change["resource"] == "vfw":
                change["placement"] = plan["placements"]["vfw"]
    elif edit == "future_format":
        plan["format_version"] = "99.0"
    else:
        raise AssertionError(f"unknown edit {edit}")
    return plan


# ---------------------------------------------------------------- the journal written before

@pytest.fixture(scope="session")
def applied(tmp_path_factory) -> Path:
    """The vFW applied once against the simulated controllers: its .ordo folder."""
    root = tmp_path_factory.mktemp("applied") / "vfw"
    shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
    code, out, _, _ = ordo(["apply", "-C", str(root), "--auto-approve", "--simulation",
                            str(root / "simulations" / "smooth.yaml")], root)
    assert code == 0, out
    settle(root / ".ordo" / "journal.db")
    return root / ".ordo"


def settle(path: Path) -> None:
    """Fold the write-ahead log into the database file, so its bytes say everything."""
    if not path.is_file():
        return
    try:
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
    except sqlite3.DatabaseError:
        pass  # not a database: its bytes are compared as they are


def prepare(case: dict, root: Path, applied: Path) -> Path:
    shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
    journal = root / ".ordo" / "journal.db"
    spec = case.get("journal")
    if spec != "none":
        shutil.copytree(applied, root / ".ordo")
        if isinstance(spec, dict) and "sql" in spec:
            db = sqlite3.connect(journal)
            for statement in spec["sql"]:
                db.execute(statement)
            db.commit()
            db.close()
            settle(journal)
        if isinstance(spec, dict) and "replace" in spec:
            for extra in root.joinpath(".ordo").glob("journal.db-*"):
                extra.unlink()
            journal.write_bytes(spec["replace"].encode())
    if "project" in case:
        data = yaml.safe_load((root / "ordo.yaml").read_text(encoding="utf-8"))
        (root / "ordo.yaml").write_text(yaml.safe_dump(merge(data, case["project"])), encoding="utf-8")
    for rel, content in (case.get("write") or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = generate(content, root, path) if isinstance(content, dict) else content.encode()
        if data is not None:
            path.write_bytes(data)
    if "saved_plan" in case:
        spec = case["saved_plan"]
        code, out, _, _ = ordo(["plan", spec["request"], "-C", str(root), "--out", "plan.json"], root)
        assert code == 0, out
        plan = json.loads((root / "plan.json").read_text(encoding="utf-8"))
        (root / "plan.json").write_text(json.dumps(edit_plan(plan, spec["edit"])), encoding="utf-8")
    return journal


def runs_in(journal: Path) -> int:
    if not journal.exists():
        return 0
    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hostile_input_is_refused_cleanly(case: dict, tmp_path: Path, applied: Path, zygote: Zygote) -> None:
    root = tmp_path / "vfw"
    journal = prepare(case, root, applied)
    before = journal.read_bytes() if journal.exists() else None
    expect = re.compile(case["expect"], re.S)
    allowed = case.get("exit", [1])
    for args in case["runs"]:
        code, out, seconds, peak = forked(zygote, [*map(str, args), "-C", str(root)], root)
        shown = f"ordo {' '.join(map(str, args))} ({case['id']}) exited {code} in {seconds:.1f}s:\n{out[-3000:]}"
        assert code != -9, f"took over {SECONDS:g}s: " + shown
        assert "Traceback" not in out, shown
        assert code in allowed, shown
        assert expect.search(out), f"expected /{case['expect']}/ in: " + shown
        assert peak < MEMORY_KB, f"peak memory {peak // 1024} MB: " + shown
        settle(journal)
        if before is not None:
            assert journal.read_bytes() == before, "the journal changed: " + shown
        else:
            assert runs_in(journal) == 0, "a run was recorded: " + shown
    assert not Path("/tmp/ordo-hostile-pwned").exists(), "a policy ran a command"


#: A sample of the kinds of input, one command each: a policy the check refuses after grounding
#: (in the planning child), a request, a saved plan, a journal, a simulation.
SAMPLE = ("policy-defines-place", "request-moves-an-existing-vnf", "saved-plan-moves-a-placement",
          "journal-corrupt-plan-event", "simulation-world-escapes-relative")


def timeless(out: str) -> str:
    """``out`` without the durations it reports ("in 1.29s")."""
    return re.sub(r"\d+(\.\d+)? ?s\b", "<t>s", out)


@pytest.mark.parametrize("case", [c for c in CASES if c["id"] in SAMPLE], ids=lambda c: c["id"])
def test_the_zygote_runs_cases_as_the_console_script_does(case: dict, tmp_path: Path, applied: Path,
                                                          zygote: Zygote) -> None:
    """The same exit code and output, forked from the zygote or run by the installed script."""
    root = tmp_path / "vfw"
    prepare(case, root, applied)
    for args in case["runs"]:
        argv = [*map(str, args), "-C", str(root)]
        script = ordo(argv, root)
        fork = forked(zygote, argv, root)
        assert (fork[0], timeless(fork[1])) == (script[0], timeless(script[1])), (argv, fork[:2], script[:2])
        settle(root / ".ordo" / "journal.db")


def test_the_corpus_is_large_and_named_uniquely() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
