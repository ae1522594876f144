"""Controller outputs cannot drive the terminal: escapes, line breaks, bidi overrides and rich
markup in them are shown as inert text by the apply view, `ordo show` and `ordo state --export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ordo.render import shown, terminal_safe
from tests.test_secrets import ordo

HOSTILE = ("x\x1b[31mred\x1b[0m\r\nApply complete: 9 created, 0 changed, 0 deleted. FORGED"
           "\u202egnp.exe\x9b2J[red]markup[/red]")
RAW = ("\x1b", "\r", "\u202e", "\x9b")

PROGRAM = f"""\
import json, sys
request = json.load(sys.stdin)
if request["action"] == "observe":
    print(json.dumps({{"exists": False}}))
elif request["resource"] == "evil":
    print(json.dumps({{"error": {json.dumps(HOSTILE)}}}))
    sys.exit(1)
else:
    print(json.dumps({{"outputs": {{"note": {json.dumps(HOSTILE)}}}}}))
"""


def project(root: Path, program_text: str | None = None, outputs: str = "note",
            resources: str = "  - {name: nice, type: thing}\n  - {name: evil, type: thing}\n") -> Path:
    """A project of things made by a command controller (ctl.py: ``program_text``, else PROGRAM)."""
    root.mkdir()
    (root / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n")
    (root / "catalog.yaml").write_text(
        "controllers:\n  cmd: {kind: command, retry: {attempts: 1}, config: {command: [./ctl.py]}}\n"
        "lifecycles:\n  simple: {states: [absent, present], operations: {create: {from: absent, to: present}}}\n"
        f"types:\n  thing: {{lifecycle: simple, controller: cmd, operations: {{create: {{outputs: [{outputs}]}}}}}}\n")
    (root / "inventory.yaml").write_text("targets: {}\nresources: []\n")
    (root / "request.yaml").write_text(f"resources:\n{resources}")
    program = root / "ctl.py"
    program.write_text(f"#!{sys.executable}\n{PROGRAM if program_text is None else program_text}")
    program.chmod(0o755)
    return root


def assert_inert(text: str) -> None:
    assert not [c for c in RAW if c in text], repr(text)
    forged = [line for line in text.splitlines() if "FORGED" in line]
    assert forged and not [line for line in forged if line.lstrip().startswith("Apply complete")]


def test_hostile_outputs_are_inert_in_every_view(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path / "p")
    code, applied = ordo(capsys, "apply", "-C", root, "--auto-approve")
    assert code == 3, applied
    assert_inert(applied)
    assert "[red]markup[/red]" in applied  # shown as it is, not read as rich markup
    code, streamed = ordo(capsys, "show", "-C", root, "--json")
    assert code == 0
    assert_inert(streamed)
    errors = [json.loads(line).get("error") or "" for line in streamed.splitlines()]
    assert any(e.endswith(HOSTILE) for e in errors)  # JSON keeps the data exactly, escaped
    for args in (("show",), ("state", "--export"), ("history",)):
        code, out = ordo(capsys, *args, "-C", root)
        assert code == 0, out
        assert not [c for c in RAW if c in out], (args, out)
    assert "FORGED" in ordo(capsys, "show", "-C", root)[1]


def test_terminal_safe_escapes_controls_and_bidi() -> None:
    assert terminal_safe("a\x1b[1mb\r\nc\u202ed\x9b\x7f\u2028") == "a\\x1b[1mb\\x0d\\x0ac\\u202ed\\x9b\\x7f\\u2028"
    assert terminal_safe("plain ünïcode → ok") == "plain ünïcode → ok"
    assert terminal_safe("half \udfff of a pair") == "half \\udfff of a pair"   # (a journal written before)
    assert shown("[bold]x\x1b") == "\\[bold]x\\x1b"


def test_columns_line_up_by_the_cells_text_takes_and_are_inert() -> None:
    """`ordo state` and `ordo history` print their rows so (rich's Table took 3.5 s on 10,000 rows)."""
    import io

    from rich.console import Console

    from ordo.render import columns

    out = io.StringIO()
    columns(Console(file=out, width=20), ("A", "B"), [("日本", "x"), ("abc", "\x1b[31m"), ("a-much-longer-cell", "")])
    assert out.getvalue().splitlines() == ["A                   B", "日本                x",
                                           "abc                 \\x1b[31m", "a-much-longer-cell"]


UNTEXT = """\
import json, sys
request = json.load(sys.stdin)
if request["action"] == "observe":
    print(json.dumps({"exists": False}))
elif request["resource"] == "lone":
    print('{"outputs": {"note": "\\\\ud800x"}}')
elif request["resource"] == "nameless":
    print(json.dumps({"outputs": {"note": "ok", "": 1}}))
elif request["resource"] == "long":
    print(json.dumps({"outputs": {"K" * 300: 1}}))
elif request["resource"] == "escaped":
    print(json.dumps({"outputs": {"a\\x1b[31mb": 1}}))
else:
    print('{"error": "bad \\\\udfff thing"}')
    sys.exit(1)
"""


def test_answers_that_are_no_text_or_name_no_record_fail_the_call_not_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Half a UTF-16 pair in an output, or an output named '', 300 characters long or with an escape:
    the journal's record of the result failed after the call (a bug in ordo, and each resume made the
    call again); half a pair in an error was stored, and `ordo show` failed on it every time after
    (a sweep's). Each is now the call's failure, named (an error that is no text is not quoted); every
    view shows the run."""
    names = ("lone", "nameless", "long", "escaped", "failing")
    root = project(tmp_path / "p", UNTEXT, resources="".join(f"  - {{name: {n}, type: thing}}\n" for n in names))
    code, applied = ordo(capsys, "apply", "-C", root, "--auto-approve")
    assert code == 3 and "bug in ordo" not in applied, applied
    assert "unpaired surrogate ('\\ud800')" in applied
    assert "an output named ''" in applied and "an output named 'KKKK" in applied
    assert "an output named 'a\\x1b[31mb'" in applied and "\x1b" not in applied
    for args in (("show",), ("show", "--json"), ("history",), ("state", "--export")):
        code, out = ordo(capsys, *args, "-C", root)
        assert code == 0 and "bug in ordo" not in out, (args, out)
    assert "operation 'create' of 'failing': exit code 1" in ordo(capsys, "show", "-C", root)[1]   # (no text to show)
