"""What an independent sweep of hostile input found the command line did with a traceback or
an "this is a bug in ordo" (6 December): journals named by a URL that does not parse, run
numbers past what a journal stores, ``ordo serve`` given a journal it cannot open. Each is now
refused with one clear line and a non-zero exit code."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from domain.formats import ObservedResource
from executor.journal import Event, Journal
from tests.conftest import run_ordo, run_ordo_process


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql://u@127.0.0.1:abc/db", "//***@127.0.0.1:abc/db: not a journal URL (its port is not a number)"),
    ("postgresql://u@127.0.0.1:99999/db", "//***@127.0.0.1:99999/db: not a journal URL (its port is out of the range"),
    ("postgresql://u:hunter2@[::1:1/db", "postgresql://***@[::1:1/db: not a journal URL (its host opens a ["),
    ("mysql://u:hunter2@host/db", "mysql://***@host/db: not a journal: expected a file or a postgresql:// URL"),
    ("postgresql://u@host:abc/db?password=hunter2", "postgresql://***@host:abc/db: not a journal URL"),
    ("postgresql://u:hu/nter2@host:abc/db", "postgresql://***@host:abc/db: not a journal URL"),
    ("postgresql://u:hun@ter2@host:abc/db", "postgresql://***@host:abc/db: not a journal URL"),
    ("postgresql://u:hunter2@host:abc/db#x", "postgresql://***@host:abc/db: not a journal URL"),
    ("postgresql://u:hunt#er2@host:abc/db", "postgresql://***@host:abc/db: not a journal URL"),
    # a password not percent-encoded: the driver's message quoted it (and 'ter2' was looked up as a host)
    ("postgresql://u:hunter2%zz@127.0.0.1:1/db", "postgresql://***@127.0.0.1:1/db: not a journal URL (a '/'"),
    ("postgresql://u:hun ter2@127.0.0.1:1/db", "postgresql://***@127.0.0.1:1/db: not a journal URL (a '/'"),
    ("postgresql://u:hun@ter2/x@127.0.0.1:1/db", "postgresql://***@127.0.0.1:1/db: not a journal URL (a '/'"),
    ("postgresql://u@127.0.0.1:1/db?password=hunter2%zz", "postgresql://u@127.0.0.1:1/db: cannot open the journal"),
    # '#' and '?' are a password's own characters to libpq: urllib cut there, and 'u:hun' was shown as host
    # and port; a password's key escaped, and a percent-escape or host name the driver raised on (a sweep's)
    ("postgresql://u:hun#ter2@127.0.0.1:1/db", "postgresql://u@127.0.0.1:1/db: cannot open the journal"),
    ("postgresql://u:hun?ter2@127.0.0.1:1/db", "postgresql://u@127.0.0.1:1/db: cannot open the journal"),
    ("postgresql://u:2024#hunter2@127.0.0.1:1/db", "postgresql://u@127.0.0.1:1/db: cannot open the journal"),
    ("postgresql://u@127.0.0.1:1/db?pass%77ord=hunter2%ZZ", "postgresql://u@127.0.0.1:1/db: cannot open the journal"),
    ("postgresql://u:hunter2@db..example:1/db", "cannot open the journal: a host name in it is not a valid name"),
    ("postgresql://u:hunter2@127.0.0.1:1/d%FFb", "cannot open the journal: a host name in it is not a valid name"),
    ("postgresql:///db?host=/nonexistent/x&password=hunter2", "postgresql:///db: cannot open the journal"),
    # a '?' and then an '@' in a password: the part after the '@' was taken for the host, and shown (a review's)
    ("postgresql://u:p?x@hunter2@127.0.0.1:1/db", "postgresql://***@127.0.0.1:1/db: not a journal URL (a '/'"),
    ("postgresql://u:2024?hunter2/x@127.0.0.1:1/db", "postgresql://***@127.0.0.1:1/db: not a journal URL (a '/'"),
])
@pytest.mark.parametrize("how", ["option", "env"])
def test_a_journal_url_that_does_not_parse_is_refused_naming_it_without_its_password(
        vfw_copy: Path, url: str, says: str, how: str) -> None:
    args = ["history", "-C", str(vfw_copy)] + (["--journal", url] if how == "option" else [])
    run = run_ordo(*args, env={"ORDO_JOURNAL": url} if how == "env" else None)
    text = run.out + run.err
    assert run.code != 0 and says in text and "Traceback" not in text, text
    assert "hunter" not in text and "nter2" not in text
    assert not any(p.name.startswith("mysql") for p in Path.cwd().iterdir())   # no file of that name made here


@pytest.mark.parametrize("command", [["show"], ["abort"], ["resume"], ["event", "@", "x", "y"]])
@pytest.mark.parametrize("number", ["9223372036854775808", "0"])
def test_a_run_number_no_journal_stores_is_refused_as_a_usage_error(vfw_copy: Path, command: list[str],
                                                                    number: str) -> None:
    args = [command[0], number, *command[1:]]
    args = [a.replace("@", "vfw-service") for a in args]
    run = run_ordo(*args, "-C", str(vfw_copy))
    text = run.out + run.err
    assert run.code != 0 and "is not in the range 1<=x<=9223372036854775807" in text, text


@pytest.mark.parametrize("journal", ["garbage", "postgresql://u@127.0.0.1:1/db"])
def test_serve_refuses_a_journal_it_cannot_open_before_it_starts(vfw_copy: Path, tmp_path: Path, journal: str) -> None:
    if journal == "garbage":
        (tmp_path / "garbage.db").write_text("garbage\n")
        journal = str(tmp_path / "garbage.db")
    run = run_ordo_process("serve", "-C", vfw_copy, "--listen", "127.0.0.1:0", "--journal", journal, timeout=60)
    text = run.out + run.err
    assert run.code == 1 and "Traceback" not in text and "startup failed" not in text, text
    assert text.strip().startswith("error: ") and len(text.strip().splitlines()) == 1, text


def test_a_journal_that_is_not_a_file_is_refused_and_left_as_it_is(vfw_copy: Path, tmp_path: Path) -> None:
    """The journal's file is made private (0600) when opened: given /dev/null (as root), that
    narrowed the device for every user of the machine. What is not a regular file (here a pipe
    and a folder, which a failing test would narrow harmlessly) is refused and left alone."""
    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo, 0o644)
    folder.mkdir(mode=0o755)
    for journal, says in ((fifo, f"{fifo}: cannot open the journal: {fifo} is not a file"),
                          (folder, f"'{folder}' is a directory")):
        before = os.stat(journal).st_mode
        for args in (["history"], ["apply", "--auto-approve"]):
            run = run_ordo(*args, "-C", str(vfw_copy), "--journal", str(journal))
            text = run.out + run.err
            assert run.code == 1 and says in text, text
        assert os.stat(journal).st_mode == before


@pytest.mark.parametrize("args", [["plan", "@"], ["check", "@"], ["plan", "--inventory", "@"],
                                  ["apply", "--auto-approve", "--simulation", "@"], ["whatif", "--request", "@"]])
def test_a_yaml_file_past_64_mb_is_refused_unread(vfw_copy: Path, tmp_path: Path, args: list[str]) -> None:
    """A request, inventory or simulation file was read whole: /dev/zero took the machine's
    memory (24 GB) until the kernel killed ordo. At most 64 MB is read; more is refused."""
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.truncate(64 * 1024 * 1024 + 1)   # (sparse: no disk taken)
    for source in [big] + ([Path("/dev/zero")] if Path("/dev/zero").exists() else []):
        run = run_ordo(*[str(source) if a == "@" else a for a in args], "-C", str(vfw_copy))
        text = run.out + run.err
        assert run.code == 1 and f"{source}: error: file is larger than 64 MB: not read" in text, text


@pytest.mark.parametrize(("value", "says"), [
    ("2024-01-01", "params.customer: a date is not a value ordo takes: quote it to pass it as text"),
    ("2024-01-01 10:00:00", "params.customer: a date and time is not a value ordo takes"),
    ("!!binary /w==", "params.customer: binary data is not a value ordo takes"),
    ("!!set {a, b}", "params.customer: a set is not a value ordo takes: quote it to pass it as text, or write a list"),
    ("{a: [1, {2024-01-01: x}]}", "params.customer: the key 2024-01-01 is not text (YAML reads it as date): quote it"),
    ("[.nan]", "params.customer: nan is not a number JSON holds"),
])
@pytest.mark.parametrize("command", [["check"], ["apply", "--auto-approve"]])
def test_a_param_json_does_not_hold_is_refused_where_it_is_written(vfw_copy: Path, tmp_path: Path, value: str,
                                                                    says: str, command: list[str]) -> None:
    """YAML reads dates, binary data, sets and number keys that JSON, and so the journal, has no
    form for: a date was stored as text, so the same request changed the resource again; binary
    data that is not UTF-8 passed check and plan, then ended apply half-way, the controller called."""
    request = tmp_path / "r.yaml"
    request.write_text(f"services:\n  vfw-service:\n    params:\n      customer: {value}\n")
    run = run_ordo(*command, "-C", str(vfw_copy), str(request))
    text = run.out + run.err
    assert run.code == 1 and f"r.yaml:4:17: error: services.vfw-service.{says}" in text, text
    assert "starting" not in text and not (vfw_copy / ".ordo" / "journal.db").exists()


def test_an_inventory_attribute_json_does_not_hold_is_refused(vfw_copy: Path) -> None:
    inventory = vfw_copy / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("net-0001 }", "net-0001, since: 2024-01-01 }"))
    run = run_ordo("check", "-C", str(vfw_copy))
    text = run.out + run.err
    says = "error: resources[0].attributes: since: a date is not a value ordo takes"
    assert run.code == 1 and says in text, text


def test_a_params_number_out_of_range_is_refused_without_the_number(vfw_copy: Path, tmp_path: Path) -> None:
    """A param may be a secret (by its name, or as its type declares it): its value is not echoed."""
    request = tmp_path / "r.yaml"
    request.write_text("services:\n  vfw-service:\n    params: {customer: demo, password: 98765432109876543210}\n")
    run = run_ordo("plan", "-C", str(vfw_copy), str(request))
    text = run.out + run.err
    assert run.code == 1 and "params.password: the number is out of range" in text, text
    assert "98765432109876543210" not in text


def test_another_programs_database_is_refused_and_left_unchanged(vfw_copy: Path, tmp_path: Path) -> None:
    """A journal named by mistake that is another program's SQLite database: ordo added its own
    tables to it and switched it to WAL mode, even from `ordo history`, which writes nothing."""
    import sqlite3

    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE foo (x)")
        db.execute("INSERT INTO foo VALUES (1)")
        db.commit()
    before = other.read_bytes()
    for args in (["history"], ["apply", "--auto-approve"]):
        run = run_ordo(*args, "-C", str(vfw_copy), "--journal", str(other))
        text = run.out + run.err
        assert run.code == 1 and f"{other}: not an ordo journal: it holds another program's tables (foo)" in text
    assert other.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db", "vfw"]
    # one that sets a version of its own (applications do): it was switched to WAL and narrowed to 0600
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("PRAGMA user_version=2")
    other.chmod(0o644)
    before = other.read_bytes()
    run = run_ordo("history", "-C", str(vfw_copy), "--journal", str(other))
    assert run.code == 1 and "it holds another program's tables (foo)" in run.out + run.err, run.out + run.err
    assert other.read_bytes() == before and other.stat().st_mode & 0o777 == 0o644


def test_a_journal_made_read_only_stays_so(vfw_copy: Path) -> None:
    """A journal readable by others is narrowed to its owner: to 0600, which made one of 0444 writable."""
    assert run_ordo("apply", "--auto-approve", "-C", str(vfw_copy)).code == 0
    journal = vfw_copy / ".ordo" / "journal.db"
    journal.chmod(0o444)
    assert run_ordo("history", "-C", str(vfw_copy)).code == 0
    assert journal.stat().st_mode & 0o777 == 0o400


def test_a_params_number_keys_are_the_text_json_writes_so_a_repeat_changes_nothing(vfw_copy: Path) -> None:
    """``ports: {80: 8080}``: the journal (JSON) keeps the key as "80"; compared with the
    request's 80, the same request changed the resource again. Keys are JSON's text from the start."""
    request = vfw_copy / "ports.yaml"
    request.write_text((vfw_copy / "requests" / "instantiate.yaml").read_text().replace(
        "service_type: vFW }", "service_type: vFW, ports: {80: 8080, true: 1} }"))
    assert run_ordo("apply", "--auto-approve", "-C", str(vfw_copy), str(request)).code == 0
    again = run_ordo("plan", "-C", str(vfw_copy), str(request))
    assert again.code == 0 and "No changes." in again.out, again.out + again.err
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        assert jr.state()["vfw-service"].attributes["ports"] == {"80": 8080, "true": 1}


def test_a_param_named_true_is_named_so(vfw_copy: Path, tmp_path: Path) -> None:
    """pydantic names a mapping key of true as 1: the message said params.1."""
    request = tmp_path / "r.yaml"
    request.write_text("services:\n  vfw-service:\n    params: {customer: demo, true: 1}\n")
    run = run_ordo("check", "-C", str(vfw_copy), str(request))
    assert run.code == 1 and "r.yaml:3:30: error: services.vfw-service.params.true: expected a string" in run.err


def test_a_key_yaml_reads_as_no_text_is_named_as_written_where_it_is(vfw_copy: Path, tmp_path: Path) -> None:
    """`on:` and `2024-01-01:` were reported at the mapping's first key, under the paths params.true and
    params.datetime.date(2024, 1, 1), which nothing in the file says (the encodings sweep)."""
    request = tmp_path / "r.yaml"
    request.write_text("resources:\n  - name: n1\n    type: network\n    params:\n      cidr: 10.0.0.0/24\n"
                       "      on: true\n      2024-01-01: x\n")
    run = run_ordo("check", "-C", str(vfw_copy), str(request))
    assert run.code == 1, run.text
    assert "r.yaml:6:7: error: resources[0].params.on: expected a string, got bool True (YAML reads on as a " \
           "boolean, not text: quote it ('on'))" in run.err, run.err
    assert "r.yaml:7:7: error: resources[0].params.2024-01-01: expected a string" in run.err, run.err
    assert "(YAML reads 2024-01-01 as a date, not text: quote it ('2024-01-01'))" in run.err, run.err


def test_a_policy_file_that_is_not_a_file_says_so(vfw_copy: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.lp"   # (/dev/zero was said to be no such file)
    os.mkfifo(fifo)
    run = run_ordo("plan", "-C", str(vfw_copy), "--policy", str(fifo))
    assert run.code == 1 and f"{fifo}: error: not a file (a policy file is clingo text)" in run.err, run.err


def test_a_controller_answer_with_nan_is_not_json_and_fails_the_call(tmp_path: Path) -> None:
    """JSON from a controller may say NaN (Python's json reads it): checked as an attribute, it ended
    apply in 'this is a bug in ordo' after the call (the reviewer of 6 December); under ordo serve it
    reached the journal's events and the event stream as text that is not JSON (the second sweep).
    It is an answer that is not JSON: the call fails, naming the controller and the operation."""
    from tests.test_terminal_safety import project

    root = project(tmp_path / "p", "import json, sys\nrequest = json.load(sys.stdin)\n"
                   "print(json.dumps({'exists': False}) if request['action'] == 'observe' else "
                   "'{\"outputs\": {\"note\": NaN, \"deep\": {\"x\": [Infinity, 1]}}}')\n",
                   outputs="note, deep", resources="  - {name: nice, type: thing}\n")
    run = run_ordo("apply", "--auto-approve", "-C", str(root))
    assert run.code == 3 and "operation 'create' of 'nice': stdout: invalid JSON (NaN is not a JSON number)" \
        in run.out, run.out + run.err
    with Journal(root / ".ordo" / "journal.db") as jr:
        for event in jr.events(1):
            json.loads(json.dumps(event.data), parse_constant=lambda name: pytest.fail(f"{name} in the journal"))


def test_an_attribute_that_is_not_a_finite_number_is_null_as_the_journal_stores_it() -> None:
    from domain.formats import ObservedResource

    record = ObservedResource(name="n", type="t", state="s", attributes={"a": float("nan"), "b": [float("inf"), 1]})
    assert record.attributes == {"a": None, "b": [None, 1]}


MININT = ("%@ name: minint\n%@ description: d\n%@ owner: o\n%@ enforcement: hard\n"
          "#minimize { 2147483647@1,X : resource(X,_) }.\n")


def test_weights_clasp_cannot_add_up_are_an_error_not_a_traceback(vfw_copy: Path) -> None:
    """A #minimize weight of 2**31-1 passes the check of numbers, then overflows clasp's sum:
    every planning command printed the planning child's traceback (the second sweep)."""
    (vfw_copy / "policies" / "minint.lp").write_text(MININT)
    ordo_yaml = vfw_copy / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text().replace(
        "    - policies/config-after-modules.lp", "    - policies/config-after-modules.lp\n    - policies/minint.lp"))
    says = ("error: the solver refused the policies' program (weight too large): the weights of a #minimize "
            "or of weak constraints add up past 2,147,483,647 at one priority level; lower them (or give the "
            "largest a priority of its own). Weak constraints or #minimize: policies/minint.lp:5, "
            "<library>/prefer-cheaper-region.lp:20. Soft policies, heaviest first: prefer-cheaper-region "
            "(<library>/prefer-cheaper-region.lp) weight 1 at priority 1")
    # (where, the sweep of 6 December; the project's own first: the library's came first, pointing away from it)
    for args in (["plan"], ["whatif", "--target-down", "region-one"], ["sweep", "--jobs", "1"], ["test"]):
        run = run_ordo(*args, "-C", str(vfw_copy))
        text = run.out + run.err
        assert run.code == 1 and says.removeprefix("error: ") in text and "Traceback" not in text, (args, text)
    # ordo test: each case an error, all of them run, a summary (it stopped at the first: an authoring sweep's)
    assert "16 errors in" in text and text.count("\nERROR ") == 16, text


def _with_rule(project: Path, rule: str) -> None:
    (project / "policies" / "wrap.lp").write_text("%@ name: wrap\n%@ description: d\n%@ owner: o\n" + rule)
    ordo_yaml = project / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text().replace(
        "    - policies/config-after-modules.lp", "    - policies/config-after-modules.lp\n    - policies/wrap.lp"))


def test_a_cost_past_what_the_solver_counts_is_refused_not_a_wrong_plan_called_optimal(vfw_copy: Path,
                                                                                     tmp_path: Path) -> None:
    """Weights that add up past 2**31-1 in the solver's answer wrapped to a negative cost, which the solver
    took for the least: a plan of 3,000,000,000 came back "optimal, cost -1294967296@2", one of 3 there for
    the taking (an authoring sweep's). Weights that could add up past it in all, but not in any one answer
    (one region each), still plan."""
    exclusive = shutil.copytree(vfw_copy, tmp_path / "exclusive")
    _with_rule(vfw_copy, '#minimize { 1000000000@2,R : located(R,T), placeable(R), T != "region-three" ; '
                         '1@2,R : located(R,"region-three"), placeable(R) }.\n')
    says = re.compile(r"policies/wrap\.lp:4: error: the weights of a #minimize or of weak constraints add up to "
                      r"[23],\d{3},\d{3},\d{3} at priority 2 in the solver's answer, past 2,147,483,647 either "
                      "way, the most it counts at one priority level")
    for args in (["plan"], ["whatif", "--target-down", "region-one"]):
        run = run_ordo(*args, "-C", str(vfw_copy))
        assert run.code == 1 and says.search(run.out + run.err) and "Traceback" not in run.out + run.err, (args, run)
    run = run_ordo("test", "-C", str(vfw_copy))   # each case that planned too much an error; the others run
    assert run.code == 1 and "\nERROR " in run.out and " passed, " in run.out, run.out
    assert says.pattern.split("error: ")[1][:40] in run.out, run.out
    _with_rule(exclusive, '#minimize { 700000000@2,R,T : located(R,T), placeable(R), T != "region-three" ; '
                          '1@2,R : located(R,"region-three"), placeable(R) }.\n')
    run = run_ordo("plan", "-C", str(exclusive))
    assert run.code == 0 and "Solver: optimal, cost 700000002@2" in run.out, run.out + run.err


def test_a_negative_cost_past_what_the_solver_counts_is_refused_naming_its_own_level(vfw_copy: Path) -> None:
    """A #maximize (negative weights) of 3,600,000,000: its cost wrapped to "optimal, cost 694967296@2",
    which the count of the solver's own sum did not see; and the refusal named the project's first #minimize
    whatever its priority (a review's of the fix above)."""
    (vfw_copy / "policies" / "other.lp").write_text("%@ name: other\n%@ description: d\n%@ owner: o\n"
                                                    "#minimize { 1@5,R : placeable(R) }.\n")
    ordo_yaml = vfw_copy / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text().replace(
        "    - policies/config-after-modules.lp", "    - policies/config-after-modules.lp\n    - policies/other.lp"))
    _with_rule(vfw_copy, '#maximize { 1200000000@2,R : located(R,T), placeable(R), T != "region-three" }.\n')
    run = run_ordo("plan", "-C", str(vfw_copy))
    assert run.code == 1 and ("policies/wrap.lp:4: error: the weights of a #minimize or of weak constraints add up "
                              "to -3,600,000,000 at priority 2 in the solver's answer") in run.err, run.err
    assert "other.lp" not in run.err, run.err


def test_a_policy_test_naming_a_folder_says_so(vfw_copy: Path) -> None:
    (vfw_copy / "tests" / "odd_test.yaml").write_text(
        "tests:\n  - name: odd\n    request: ../requests\n    expect: {status: plan}\n")
    run = run_ordo("test", "-C", str(vfw_copy))
    assert run.code != 0 and "a folder, not a file: '../requests'" in run.out + run.err, run.out + run.err


@pytest.mark.parametrize(("size", "code", "says"), [
    (2_000_000, 3, "stdout: 2,000,026 bytes, more than an answer may have (1,048,576)"),
    (500, 0, "[note=" + "y" * 80 + "... (500 characters)]"),
])
def test_a_controllers_answer_is_bounded_and_its_values_shown_short(tmp_path: Path, size: int, code: int,
                                                                     says: str) -> None:
    """A command controller printing 20 MB: the whole value went to the journal and the screen (the
    second sweep). Past MAX_ANSWER_BYTES the call fails; a long value is shown cut on the progress line."""
    from tests.test_terminal_safety import project

    root = project(tmp_path / "p", "import json, sys\nrequest = json.load(sys.stdin)\n"
                   "print(json.dumps({'exists': False}) if request['action'] == 'observe' else "
                   f"json.dumps({{'outputs': {{'note': 'y' * {size}}}}}))\n",
                   resources="  - {name: nice, type: thing}\n")
    run = run_ordo("apply", "--auto-approve", "-C", str(root))
    assert run.code == code and says in run.out, run.out[-2000:] + run.err


@pytest.mark.parametrize(("program", "code", "says"), [
    # nested 700 deep: json reads it, the redaction of secrets recursed past Python's limit after the call
    ("print('{\"outputs\": {\"note\": ' + '[' * 700 + ']' * 700 + '}}')", 3,
     "stdout: invalid JSON (nested more than 100 levels deep)"),
    # a failing program's error went whole into the message, the journal and the screen
    ("print(json.dumps({'error': 'e' * 500_000})); sys.exit(1)", 3, "... (500,000 characters)"),
    ("print('[' * 100000 + ']' * 100000); sys.exit(1)", 3, "exit code 1"),
])
def test_a_controllers_odd_answer_fails_the_call_in_words(tmp_path: Path, program: str, code: int,
                                                           says: str) -> None:
    """From the review of 6 December: answers the first mends still let through."""
    from tests.test_terminal_safety import project

    root = project(tmp_path / "p", "import json, sys\nrequest = json.load(sys.stdin)\n"
                   "if request['action'] == 'observe':\n    print(json.dumps({'exists': False}))\n"
                   f"else:\n    {program}\n", resources="  - {name: nice, type: thing}\n")
    run = run_ordo("apply", "--auto-approve", "-C", str(root))
    assert run.code == code and says in run.out and len(run.out) < 100_000, run.out[-3000:] + run.err


def test_a_plug_ins_enum_is_a_value_json_holds() -> None:
    import enum

    from domain.formats import ObservedResource

    class Size(enum.StrEnum):
        SMALL = "small"

    record = ObservedResource(name="n", type="t", state="s", attributes={"size": Size.SMALL, "pair": (1, 2)})
    assert record.model_dump_json() == ('{"part_of":null,"uses":[],"hosted_on":null,"member_of":[],"relations":{},'
                                        '"requires":{},"labels":{},"name":"n","type":"t","state":"s",'
                                        '"placement":null,"attributes":{"size":"small","pair":[1,2]}}')


def test_a_python_error_in_a_planning_child_is_not_called_the_solvers() -> None:
    """RecursionError and NotImplementedError are RuntimeErrors: caught as clingo's refusals, a bug
    in the child would have read 'the solver refused the policies' program'."""
    from planner.bounded import _reply

    sent: list = []

    class Conn:
        def send(self, message) -> None:
            sent.append(message)

    def boom():
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(RecursionError):
        _reply(Conn(), boom)
    _reply(Conn(), lambda: (_ for _ in ()).throw(RuntimeError("x.cpp@1: Value too large: weight too large")))
    assert sent == [("error", "the solver refused the policies' program (weight too large): the weights of a "
                              "#minimize or of weak constraints add up past 2,147,483,647 at one priority level; "
                              "lower them (or give the largest a priority of its own)")]


def _aborted_with_two_in_doubt(vfw_copy: Path) -> None:
    """Run 1 aborted with two operations in doubt; run 2 wrote one of their resources since."""
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        first = jr.start_run(str(vfw_copy), "requests/instantiate.yaml", {})
        jr.append(first, [Event("intent", op="vfw-service/assign", key="ordo:old:1:vfw-service/assign",
                                data={"attempt": 1, "controller": "so"}),
                          Event("intent", op="protected-net/create", key="ordo:old:1:protected-net/create",
                                data={"attempt": 1, "controller": "sdnc"})])
        jr.append(first, [Event("run-ended", data={"status": "aborted"})], status="aborted",
                  summary={"status": "aborted"})
        other = jr.start_run(str(vfw_copy), "other.yaml", {})   # a later run wrote protected-net: settled
        jr.append(other, [Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete"},
                  state={"protected-net": ObservedResource(name="protected-net", type="network", state="absent")})


def _observed_first_under_the_old_key(intents: dict[str, Event]) -> None:
    assert intents["vfw-service/assign"].key == "ordo:old:1:vfw-service/assign"
    assert intents["vfw-service/assign"].data.get("observe_first") is True
    assert intents["protected-net/create"].key != "ordo:old:1:protected-net/create"
    assert not intents["protected-net/create"].data.get("observe_first")


def test_what_an_aborted_run_left_in_doubt_is_observed_first_by_the_next_run(vfw_copy: Path) -> None:
    """An operation sent, its answer never heard (lost, or the process killed), stays in doubt: a
    resume or a supersede observes it before sending it again, under the same key; after an abort a
    new run sent it again under a new key (the third sweep, 6 December: a real controller's second
    create). Now the new run observes it first too, unless a run has written its resource since."""
    _aborted_with_two_in_doubt(vfw_copy)
    run = run_ordo("apply", "--auto-approve", "-C", str(vfw_copy))
    assert run.code == 0, run.out + run.err
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        intents = {ev.op: ev for ev in jr.events(3) if ev.kind == "intent"}
    _observed_first_under_the_old_key(intents)


def test_what_a_new_run_took_over_is_still_observed_first_when_it_is_resumed(vfw_copy: Path) -> None:
    """What a new run takes over from an aborted one is in its ``run-started`` event: a new run that
    crashed before sending it, resumed, still observes it first under the old key (it was held in the
    new run's memory only: its resume sent it again under a new key)."""
    _aborted_with_two_in_doubt(vfw_copy)
    crashed = run_ordo_process("apply", "--auto-approve", "-C", str(vfw_copy), env={"ORDO_CRASH_POINT": "plan-saved"})
    assert crashed.code != 0
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        assert not [ev for ev in jr.events(3) if ev.kind == "intent"]
    run = run_ordo("resume", "3", "-C", str(vfw_copy))
    assert run.code == 0, run.out + run.err
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        assert jr.run(3).status == "complete"
        intents = {ev.op: ev for ev in jr.events(3) if ev.kind == "intent"}
    _observed_first_under_the_old_key(intents)


@pytest.mark.parametrize(("name", "said"), [
    ("a\\x1bb", "the control character '\\x1b'"), ("a\\nb", "the control character '\\n'"),
    # (a direction override, a line separator and a zero-width space were called control characters)
    ("a\\u202eb", "the invisible formatting character '\\u202e'"), ("a\\u2028b", "the line separator '\\u2028'"),
    ("a\\u200bb", "the invisible formatting character '\\u200b'")])
def test_a_request_name_is_one_line_of_printable_characters(vfw_copy: Path, name: str, said: str) -> None:
    """A request's name is shown in run lists and kept with its run: control characters, line breaks
    and direction overrides were taken as they were (the fourth hostile-input sweep)."""
    (vfw_copy / "odd.yaml").write_text(f'name: "{name}"\nservices: {{}}\n')
    run = run_ordo("plan", "-C", str(vfw_copy), str(vfw_copy / "odd.yaml"))
    assert run.code == 1 and f"name: text holds {said} at position 1" in run.err, run.out + run.err


def test_a_file_given_as_the_journal_by_mistake_is_left_as_it_was(tmp_path: Path, vfw_copy: Path) -> None:
    """A text file, another program's database or an empty file given as ``--journal``: refused, and
    left as it was (the fourth sweep: each was narrowed to 0600 first, and ``ordo history``, which only
    reads, made the empty file an 86 KB journal). An ordo journal readable by others is still narrowed."""
    import sqlite3
    import stat

    text, empty, foreign = tmp_path / "other.txt", tmp_path / "empty.db", tmp_path / "foreign.db"
    text.write_text("hello\n")
    empty.write_bytes(b"")
    with contextlib.closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE t (x)")
        db.commit()
    for path, says in ((text, "not an ordo journal"), (empty, "no journal here"), (foreign, "another program's")):
        path.chmod(0o644)
        before = path.read_bytes()
        run = run_ordo("history", "-C", str(vfw_copy), "--journal", str(path))
        assert run.code == 1 and says in run.err, run.err
        assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() == before, path
    # a file another process is making a journal of (created a moment ago): read once it is one
    import threading

    making = threading.Timer(0.3, lambda: Journal(empty).close())
    making.start()
    with Journal(empty, create=False) as jr:
        assert jr.runs() == []
    making.join()
    with Journal(tmp_path / "j.db"):
        pass
    (tmp_path / "j.db").chmod(0o644)
    assert run_ordo("history", "-C", str(vfw_copy), "--journal", str(tmp_path / "j.db")).code == 0
    assert stat.S_IMODE((tmp_path / "j.db").stat().st_mode) == 0o600


@pytest.mark.parametrize(("sql", "says"), [
    ("UPDATE runs SET pid='abc'", "table runs, run 1 is damaged: its pid is 'abc', which that column does not hold"),
    ("UPDATE runs SET pid=-1", "its pid is -1"),
    ("UPDATE runs SET pid=9223372036854775807", "its pid is 9223372036854775807"),
    ("UPDATE runs SET created='yesterday'", "its created is 'yesterday'"),
    ("UPDATE runs SET created=1e999", "its created is inf"),
    ("UPDATE runs SET status=x'7374'", "its status is b'st'"),   # (a status of other text is shown as it is)
    ("UPDATE events SET at='noon' WHERE seq=2", "table events, event 2 is damaged: its at is 'noon'"),
    ("UPDATE events SET data='{\"a\":' || replace(hex(zeroblob(5000)), '00', '{\"a\":') || '1' "
     "|| replace(hex(zeroblob(5001)), '00', '}') WHERE seq=2", "is damaged: nested too deep to read"),
])
def test_a_journal_column_of_the_wrong_kind_is_named(vfw_copy: Path, sql: str, says: str) -> None:
    """A row written by another program or by hand: a pid, a time or a status of the wrong kind, or
    data nested past what json reads, ended every command that read it in a Python error (the fourth
    sweep: TypeError in owner_alive, in the time shown, RecursionError). Now named, as bad JSON is."""
    import sqlite3

    assert run_ordo("apply", "--auto-approve", "-C", str(vfw_copy)).code == 0
    with contextlib.closing(sqlite3.connect(vfw_copy / ".ordo" / "journal.db")) as db:
        db.execute(sql)
        db.commit()
    for args in [["show", "1"]] + ([["history"]] if "UPDATE runs" in sql else []):   # (history reads no events)
        run = run_ordo(*args, "-C", str(vfw_copy))
        assert run.code == 1 and says in run.err, (args, run.out + run.err)


def test_a_secret_in_a_requests_name_is_masked_where_runs_are_listed(vfw_copy: Path) -> None:
    """The run-started event masked it; the runs table kept it, and history, show and the service's
    views showed it (the fourth sweep). Masked as it is written, and again as it is read. (The plan
    keeps the name as the request gave it: plans are kept as they were made.)"""
    request = vfw_copy / "requests" / "instantiate.yaml"
    request.write_text("name: deploy with password=Hunter2Secret\n" + request.read_text())
    assert run_ordo("apply", "--auto-approve", "-C", str(vfw_copy)).code == 0
    for args in (["history"], ["show", "1"], ["history", "--json"]):
        run = run_ordo(*args, "-C", str(vfw_copy))
        assert run.code == 0 and "Hunter2Secret" not in run.out and "password=" in run.out, (args, run.out)
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:   # one written before: masked as it is read
        jr._store.execute("UPDATE runs SET request='x password=Hunter2Secret'")
        assert "Hunter2Secret" not in jr.run(1).request


def test_a_value_in_the_wrong_place_is_quoted_short(vfw_copy: Path) -> None:
    """A file of 2 MB of text given as the request was quoted whole in its error (and a wrong file
    given as the request, a secret's, was shown on the screen: the fourth sweep)."""
    (vfw_copy / "big.yaml").write_text("x" * 2_000_000 + "\n")
    (vfw_copy / "odd.yaml").write_text(f"services: {'y' * 500}\n")
    (vfw_copy / "pw.txt").write_text("S3cr3t-Passw0rd!\n")
    for name, says in (("big.yaml", "expected a mapping (key: value), got str\n"),
                       ("odd.yaml", "services: expected a mapping (key: value), got str 'yyyy"),
                       ("pw.txt", "expected a mapping (key: value), got str\n")):   # (not quoted: the review)
        run = run_ordo("plan", "-C", str(vfw_copy), str(vfw_copy / name))
        assert run.code == 1 and says in run.err and len(run.err) < 400, run.err[:600]
    assert "S3cr3t" not in run.err


def test_ordo_init_that_cannot_write_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    """A folder under a file, or one whose tests folder cannot be made: 'this is a bug in ordo', and
    in the second case half a project that a second init then refused to complete (the fourth sweep)."""
    (tmp_path / "afile").write_text("x")
    run = run_ordo("init", str(tmp_path / "afile" / "sub"))
    assert run.code == 1 and "cannot write the project in" in run.err and "Not a directory" in run.err, run.err
    half = tmp_path / "half"
    half.mkdir()
    (half / "tests").write_text("a file where the folder goes")
    run = run_ordo("init", str(half))
    assert run.code == 1 and "cannot write the project in" in run.err and "nothing was left behind" in run.err
    assert sorted(p.name for p in half.iterdir()) == ["tests"]
    (half / "tests").unlink()
    assert run_ordo("init", str(half)).code == 0


@pytest.mark.parametrize(("args", "says"), [
    (["plan", "--timeout", "nan"], "'nan' is not a finite number"),
    (["plan", "--timeout", "inf"], "is not in the range"),
    (["apply", "--op-timeout", "1e308"], "is not in the range"),
    (["test", "--fail-under", "nan"], "'nan' is not a finite number"),
])
def test_a_number_option_is_finite(vfw_copy: Path, args: list[str], says: str) -> None:
    """NaN passes click's range checks ('--fail-under nan' was never enforced, '--timeout nan' planned
    with a limit of nan seconds) and infinity ended in an OverflowError (the fourth sweep)."""
    run = run_ordo(*args, "-C", str(vfw_copy))
    assert run.code != 0 and says in run.err, run.out + run.err


def test_explain_reads_a_saved_plan_by_what_follows_it_and_after_needs_an_operation(vfw_copy: Path) -> None:
    """A saved plan named plan.txt or PLAN.JSON was taken for a request ('an OPERATION is explained
    within a saved plan'), and --after with a resource said the plan does not place it (the fourth sweep)."""
    assert run_ordo("plan", "-C", str(vfw_copy), "--out", str(vfw_copy / "p.json")).code == 0
    for name in ("plan.txt", "PLAN.JSON"):
        (vfw_copy / name).write_bytes((vfw_copy / "p.json").read_bytes())
        run = run_ordo("explain", "-C", str(vfw_copy), str(vfw_copy / name), "vfw")
        assert run.code == 0 and "vfw is placed on region-two" in run.out, run.out + run.err
    run = run_ordo("explain", "-C", str(vfw_copy), str(vfw_copy / "p.json"), "vfw", "--after", "vfw/assign")
    assert run.code != 0 and "--after orders operations: name one" in run.err, run.out + run.err


@pytest.mark.parametrize(("field", "value"), [("cost", 10**30), ("cost", -(10**30)), ("concurrency", 10**30)])
def test_a_saved_plans_numbers_are_bounded(vfw_copy: Path, field: str, value: int) -> None:
    """A baseline edited to a cost of 10^30 was read and shown ('cost -999...@1': the fourth sweep);
    costs and priorities are clasp's 32-bit sums, counts of operations at once 32-bit too."""
    assert run_ordo("plan", "-C", str(vfw_copy), "--out", str(vfw_copy / "p.json")).code == 0
    plan = json.loads((vfw_copy / "p.json").read_text())
    if field == "cost":
        plan["cost"][0]["cost"] = value
    else:
        plan[field] = value
    (vfw_copy / "edited.json").write_text(json.dumps(plan))
    run = run_ordo("whatif", "-C", str(vfw_copy), "--baseline", str(vfw_copy / "edited.json"),
                   "--target-down", "region-one")
    assert run.code == 1 and "edited.json: error:" in run.err and field in run.err, run.out + run.err


def test_an_events_value_given_twice_is_refused(vfw_copy: Path) -> None:
    """'--data a=1 --data a=2' kept the last, silently (the fourth sweep)."""
    run = run_ordo("event", "1", "vsink", "registered", "--data", "a=1", "--data", "a=2", "-C", str(vfw_copy))
    assert run.code != 0 and "'a' is given twice" in run.err, run.out + run.err


def test_a_result_of_a_call_sent_before_a_resume_has_no_duration() -> None:
    """A resumed run's view showed 'done after -0.00s' for a call another process had sent (the fourth
    sweep): it has no start here, and no duration is shown."""
    import io

    from rich.console import Console

    from ordo.progress import LiveView

    out = io.StringIO()
    view = LiveView(Console(file=out, width=200))
    view(Event("result", op="vfw/create", data={"outputs": {}}, run=1, seq=9))
    view(Event("intent", op="vfw/activate", key="k", data={"attempt": 1, "controller": "so"}, run=1, seq=10))
    view(Event("result", op="vfw/activate", data={"outputs": {}}, run=1, seq=11))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("vfw/create: done") and "vfw/activate: done after 0.0" in lines[2], lines


def test_a_re_plan_refused_on_several_lines_is_shown_a_line_each() -> None:
    """A policy edited into errors under a run: the no-plan event's summary, one diagnostic a line, was
    printed on one line with each break as \\x0a (a policy author's sweep); a control character still is not."""
    import io

    from rich.console import Console

    from ordo.progress import LiveView

    out = io.StringIO()
    view = LiveView(Console(file=out, width=300))
    summary = "p.lp:5:4: error: syntax error\np.lp:7:1: error: unsafe variable\x1b[2J"
    view(Event("no-plan", data={"status": "error", "explanation": {"summary": summary}}, run=1, seq=9))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("No plan after the failure: p.lp:5:4: error: syntax error"), lines
    assert lines[1].startswith("p.lp:7:1: error: unsafe variable") and "\x1b" not in out.getvalue(), lines


def test_ordo_show_lists_a_no_plan_summary_a_line_each(vfw_copy: Path) -> None:
    """`ordo show` printed the same summary with its breaks as \\x0a (a review's); its lines now stand under
    the event, and a control character in them is still escaped."""
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(vfw_copy), "requests/instantiate.yaml", {})
        summary = "p.lp:5:4: error: syntax error\np.lp:7:1: error: unsafe variable\x1b[2J"
        jr.append(run, [Event("no-plan", data={"status": "error", "explanation": {"summary": summary}})],
                  status="fallout")
    shown = run_ordo("show", str(run), "-C", vfw_copy)
    assert shown.code == 0, shown.text
    lines = shown.out.splitlines()
    at = next(i for i, line in enumerate(lines) if "no plan: p.lp:5:4: error: syntax error" in line)
    assert lines[at + 1].strip().startswith("p.lp:7:1: error: unsafe variable") and "\x1b[2J" not in shown.out, lines


def test_a_run_whose_pid_went_to_another_process_is_not_held_by_it(vfw_copy: Path) -> None:
    """A run crashed; its pid went to another process (after a reboot, or in time): the run was 'in
    progress (pid N)' for as long as that process lived, and neither resume, abort nor a supersede
    could take it (the fourth sweep). A process started after the run's row was last written is not
    its owner; one started before it may be."""
    import subprocess
    import sys
    import time

    older = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
            run = jr.start_run(str(vfw_copy), "r.yaml", {})
            jr._store.execute("UPDATE runs SET pid=?, updated=? WHERE id=?", (older.pid, time.time(), run))
            assert jr.run(run).owner_alive   # started before: it may be the owner
            jr._store.execute("UPDATE runs SET updated=? WHERE id=?", (time.time() - 3600, run))
            assert not jr.run(run).owner_alive   # started an hour after the pid was written: another's
        resumed = run_ordo("abort", str(run), "-C", str(vfw_copy))
        assert resumed.code == 0 and "in progress" not in resumed.out + resumed.err, resumed.out + resumed.err
    finally:
        older.kill()
        older.wait()


@pytest.mark.parametrize("args", [["apply", "--engine", "temporal", "--temporal", "127.0.0.1:1", "--task-queue"],
                                  ["worker", "--temporal", "127.0.0.1:1", "--main-queue"],
                                  ["sweep", "--engine", "temporal", "--temporal", "127.0.0.1:1", "--task-queue"]])
def test_a_task_queue_name_temporal_refuses_is_refused_first(vfw_copy: Path, args: list[str]) -> None:
    """Temporal refuses a queue's name of more than its limit only when it is used: a 3,000-character
    --task-queue ended apply in 'this is a bug in ordo' after the plan was shown; a worker said
    'Serving' (the sweep of the Temporal paths, 6 December)."""
    run = run_ordo(*args, "x" * 3000, "-C", str(vfw_copy))
    assert run.code != 0 and "a task queue's name is 1-200 printable characters" in run.err, run.out + run.err


def test_the_hint_of_a_queue_no_worker_serves_quotes_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A queue's name may hold spaces: the command the hint gives is one a shell runs as it reads."""
    import asyncio

    from executor.temporal import Temporal, TemporalError, client

    async def never(*args: object) -> bool:
        return False

    monkeypatch.setattr(client, "_served", never)
    with pytest.raises(TemporalError) as caught:
        asyncio.run(client._unserved(None, Temporal("127.0.0.1:7233", "our queue"), [("our queue", 1, "workflows")]))
    assert "--main-queue 'our queue' -C PROJECT`" in str(caught.value)
    assert "--task-queue 'our queue'`" in str(caught.value)


def test_plan_out_dash_is_refused_not_written_as_a_file_named_dash(vfw_copy: Path, tmp_path: Path) -> None:
    """`--out -` wrote a file named '-' in the working folder; '-' is stdout to most tools."""
    run = run_ordo("plan", "-C", str(vfw_copy), "--out", "-", cwd=tmp_path)
    assert run.code == 1 and "'-' is not a file here: `--format json` prints the plan as JSON" in run.err
    assert not (tmp_path / "-").exists()


def test_apply_on_a_temporal_that_does_not_answer_plans_nothing(vfw_copy: Path) -> None:
    """It planned, showed the plan and made the journal, then could not reach Temporal."""
    run = run_ordo("apply", "-C", str(vfw_copy), "--engine", "temporal", "--temporal", "127.0.0.1:1",
                   "--auto-approve")
    assert run.code == 1 and "cannot reach Temporal at 127.0.0.1:1: Connection refused" in run.err
    assert "Solver:" not in run.out + run.err and not (vfw_copy / ".ordo" / "journal.db").exists()


def test_plan_and_state_say_a_run_is_left_to_resume(vfw_copy: Path) -> None:
    """After a crash, ordo plan and ordo state said nothing of the run: the state they show may lack
    what it did last, and ordo apply refuses until it is resumed (the crash sweep of 6 December)."""
    crashed = run_ordo_process("apply", "--auto-approve", "-C", str(vfw_copy), env={"ORDO_CRASH_POINT": "plan-saved"})
    assert crashed.code != 0
    note = ("Note: run 1 is crashed (what a crashed run did last may not be in the state yet): `ordo resume 1` "
            "carries it on, `ordo abort 1` closes it; ordo apply refuses until then (or `--supersede`).")
    for args in (("plan",), ("plan", "--format", "json"), ("state",)):
        run = run_ordo(*args, "-C", str(vfw_copy))
        assert run.code == 0 and note in " ".join(run.err.split()), (args, run.text)
    assert run_ordo("resume", "1", "-C", str(vfw_copy)).code == 0
    assert "Note:" not in run_ordo("plan", "-C", str(vfw_copy)).err
    # a run on Temporal whose client is gone may still be carried on by its workflow: resume refuses that
    crashed = run_ordo_process("apply", "--auto-approve", "-C", str(vfw_copy), "requests/delete.yaml",
                               env={"ORDO_CRASH_POINT": "plan-saved"})
    assert crashed.code != 0
    with sqlite3.connect(vfw_copy / ".ordo" / "journal.db") as db:
        options = json.loads(db.execute("SELECT options FROM runs WHERE id = 2").fetchone()[0])
        db.execute("UPDATE runs SET options = ? WHERE id = 2",
                   (json.dumps({**options, "engine": "temporal", "temporal": "127.0.0.1:1"}),))
    run = run_ordo("plan", "-C", str(vfw_copy))
    assert run.code == 0 and ("run 2 is crashed (what a crashed run did last may not be in the state yet): if its "
                              "Temporal workflow still runs, `ordo abort 2` stops it; if not, `ordo resume 2` "
                              "carries it on;") in " ".join(run.err.split()), run.text


def _crashed_as_on_temporal(vfw_copy: Path) -> None:
    """Run 1 of the vFW crashed after a call, recorded as a run its workflow on Temporal started (at an
    address where no Temporal answers)."""
    crashed = run_ordo_process("apply", "--auto-approve", "-C", str(vfw_copy), env={"ORDO_CRASH_POINT": "applied"})
    assert crashed.code != 0
    with sqlite3.connect(vfw_copy / ".ordo" / "journal.db") as db:
        options = json.loads(db.execute("SELECT options FROM runs WHERE id = 1").fetchone()[0])
        db.execute("UPDATE runs SET options = ? WHERE id = 1",
                   (json.dumps({**options, "engine": "temporal", "temporal": "127.0.0.1:1"}),))


def test_a_run_its_workflow_ended_taken_up_here_that_crashed_is_resumed_here(vfw_copy: Path) -> None:
    """A run on Temporal that its workflow ended failed was resumed on this engine (its workflow over); that
    resume crashed. The next resume was refused as a Temporal run whose workflow left it unended, and
    nothing could carry it on (a fault sweep's): the run is this engine's since the resume took it up."""
    from executor.journal import Event, Journal

    _crashed_as_on_temporal(vfw_copy)
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:   # ... and ended, failed
        jr.append(1, [Event("run-ended", data={"status": "failed", "reason": "its workflow failed"})],
                  status="failed", summary={"reason": "its workflow failed"})
    taken = run_ordo_process("resume", "1", "-C", str(vfw_copy), env={"ORDO_CRASH_POINT": "applied"})
    assert taken.code != 0 and "cannot reach Temporal" not in taken.text, taken.text
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert jr.run(1).effective_status == "crashed"
        assert jr.last_event(1, kinds=("resumed",)).data == {"from": "failed", "host": "embedded"}
    resumed = run_ordo("resume", "1", "-C", str(vfw_copy))
    assert resumed.code == 0 and "Apply complete" in resumed.out, resumed.text
    shown = run_ordo("show", "1", "-C", str(vfw_copy))   # (it said "on Temporal", a sweep's)
    assert "started on Temporal at 127.0.0.1:1" in shown.out and "carried on here since its workflow ended it" \
        in shown.out, shown.out


@pytest.mark.parametrize(("journal", "said"), [
    ("", "the journal's path is empty"),
    ("a" * 300 + "/j.db", "the journal's path is longer than the system allows"),
    # (SQLite's own names: a journal in memory took a run's records with it, reporting success; a URI's options
    # turned its locking off, and its file was not the one made private)
    (":memory:", ":memory:: not a journal: SQLite's in-memory database"),
    ("file:run.db", "file:run.db: not a journal: SQLite's URI"),
    ("FILE:nl.db?nolock=1", "FILE:nl.db?nolock=1: not a journal: SQLite's URI"),
])
def test_a_journal_path_that_names_no_file_is_refused(vfw_copy: Path, journal: str, said: str) -> None:
    for command in (["history"], ["apply", "--auto-approve"]):
        run = run_ordo(*command, "-C", str(vfw_copy), "--journal", journal)
        text = run.out + run.err
        assert run.code != 0 and said in text and "a bug in ordo" not in text and "Traceback" not in text, text


def test_a_journal_under_a_file_says_the_file_is_no_folder(vfw_copy: Path) -> None:
    # (it said "[Errno 17] File exists: 'ordo.yaml'")
    for journal in (vfw_copy / "ordo.yaml" / "j.db", vfw_copy / "ordo.yaml" / "x" / "j.db"):
        run = run_ordo("apply", "-C", str(vfw_copy), "--auto-approve", "--journal", str(journal))
        assert run.code == 1 and f"{vfw_copy / 'ordo.yaml'} is not a folder" in run.err, run.text


def test_a_journal_whose_name_sqlite_would_read_as_options_is_the_file_it_names(tmp_path: Path) -> None:
    # (the backend opened its path as SQLite takes a name: one starting 'file:' is a URI of SQLite's)
    import stat

    from executor.journal import Journal

    folder = tmp_path / "file:here"
    folder.mkdir()
    for name in ("j?mode=memory#x.db", "plain.db"):
        with Journal(folder / name) as jr:
            jr.begin_run("p", "r", {}, [])
        assert (folder / name).is_file() and stat.S_IMODE((folder / name).stat().st_mode) == 0o600
        with Journal(folder / name, create=False) as jr:
            assert [run.id for run in jr.runs()] == [1]


def test_an_at_after_the_host_is_escaped_and_a_password_in_the_drivers_message_hides_it() -> None:
    """An '@' after a '/' ends a password that holds a '/' ('u:2024/pw@host' is host u, port 2024 to the
    driver, and the password's end was sent as a database's name) or is a database's own ('host/team@ordo'):
    either is escaped (%40). A password the driver's message holds, masked where it stood, was spelt out
    by the words masked ('failed to *** host' for 'resolve'): the message is not shown."""
    from executor.journal import Journal, JournalError
    from executor.store import location

    for url in ("postgresql://localhost/team%40ordo", "postgresql://u:ok%40pw@localhost/ordo",
                "postgresql:///db?host=/var/run/postgresql", "postgresql://u@[::1]:5432/db"):
        assert location(url).url == url
    for url in ("postgresql://ordo:2024/s3cretpw@db.example", "postgresql://localhost/team@ordo"):
        with pytest.raises(JournalError, match="percent-encode them in a password .* or a database's name"):
            location(url)
    for password in ("o", "resolve"):
        with pytest.raises(JournalError) as caught:
            Journal(f"postgresql://ordo:{password}@nowhere.invalid:1/ordo")
        assert str(caught.value).endswith("cannot open the journal: (the driver's message is not shown: it holds "
                                          "the password)"), str(caught.value)


@pytest.mark.parametrize(("args", "says"), [
    (["apply", "--auto-approve", "--concurrency", "9" * 23],
     f"'--concurrency': {'9' * 23} is not in the range 1<=x<=10000"),
    (["plan", "--memory-limit", "9" * 14], f"'--memory-limit': {'9' * 14} is not in the range 16<=x<=16777216"),
    (["apply", "--auto-approve", "--max-replans", "1001"], "'--max-replans': 1001 is not in the range 0<=x<=1000"),
])
def test_run_options_past_what_a_run_can_take_are_refused_before_anything_is_journaled(
        vfw_copy: Path, args: list[str], says: str) -> None:
    """A --concurrency past 2**31 - 1 journaled a plan no ordo could read back: the run stayed crashed,
    and show, resume and abort failed on it for good; a huge --memory-limit was a traceback in the
    planning process (the CLI sweep of 6 December). The service took at most 10,000 and 1,000 already."""
    run = run_ordo(*args[:1], "-C", vfw_copy, *args[1:])
    assert run.code == 1 and says in run.err, run.text   # (ordo's usage errors end 1)
    assert not (vfw_copy / ".ordo" / "journal.db").exists()
    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text(text.replace("settings:\n", f"settings:\n  memory_limit_mb: {'9' * 14}\n", 1))
    run = run_ordo("plan", "-C", vfw_copy)
    assert run.code == 1 and "settings.memory_limit_mb: input should be less than or equal to 16777216" in run.err
    # as few megabytes as the option refuses: ordo check said "Success!", and planning "the solver refused the
    # policies' program (Resource temporarily unavailable)" (a docs sweep's)
    (vfw_copy / "ordo.yaml").write_text(text.replace("settings:\n", "settings:\n  memory_limit_mb: 5\n", 1))
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 1 and "settings.memory_limit_mb: input should be greater than or equal to 16" in run.err, \
        run.text


def test_a_run_its_follower_ended_failed_is_not_resumed_nor_closed_here_while_its_workflow_may_go_on(
        vfw_copy: Path) -> None:
    """The apply that followed a run on Temporal ended it failed when Temporal cut its connection ("transport
    error"): the workflow went on once Temporal was back, and `ordo resume` carried the run out here beside
    it, `ordo abort` closed it in the journal alone while the workflow deployed everything (a sweep's). The
    workflow is asked first: here, at an address where no Temporal answers, both are refused and nothing
    is written."""
    from executor.journal import Event, Journal

    _crashed_as_on_temporal(vfw_copy)
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:   # ... ended failed by its follower
        jr.append(1, [Event("run-ended", data={"status": "failed", "reason": "transport error", "follower": True})],
                  status="failed", summary={"status": "failed", "reason": "transport error"})
        before = len(jr.events(1))
    for command in (["resume", "1"], ["abort", "1"]):
        run = run_ordo(*command, "-C", str(vfw_copy))
        assert run.code != 0 and "cannot reach Temporal" in run.text, (command, run.text)
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert len(jr.events(1)) == before and jr.run(1).effective_status == "failed"
