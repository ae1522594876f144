"""Policy files: parsed with clingo.ast, checked, and labelled for explanations.

Two rewrites give every answer a provenance without asking authors to write
anything special:

* an integrity constraint ``:- body.`` becomes
  ``__violation(I, (X1,...,Xn)) :- body.`` where I numbers the constraint and
  X1..Xn are its body's variables. In normal mode ``:- __violation(_,_).``
  forbids them all; to explain "no plan" the planner minimises them instead,
  so the answer names each constraint (file:line) that cannot hold and the
  resources it was about.
* a rule with head ``before(A,B)`` becomes ``__before(A,B,I) :- body.``
  (with ``before(A,B) :- __before(A,B,_).``) so every precedence edge of a plan
  says which rule made it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import clingo
from clingo import ast

import policies
from domain.errors import Diagnostic
from planner.metadata import PolicyMeta, read_metadata

_MSG = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+)(?:-\d+(?::\d+)?)?: (?P<sev>\w+): (?P<text>.*)$",
                  re.S)


@dataclass(frozen=True)
class RuleInfo:
    """Where a labelled rule or constraint is, and what it says."""

    index: int
    kind: str  # "constraint" or "before"
    file: str
    line: int
    column: int
    text: str
    variables: tuple[str, ...] = ()
    comment: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class PolicyFile:
    path: Path
    display: str
    origin: str  # "base", "library" or "project"
    sha256: str = ""  # of the bytes read, for the plan's digest
    statements: list[ast.AST] = field(default_factory=list)
    meta: PolicyMeta = field(default_factory=lambda: PolicyMeta(name=""))


@dataclass
class Program:
    """Parsed and rewritten policy files, ready to add to a Control."""

    files: list[PolicyFile]
    rules: list[RuleInfo]
    diagnostics: list[Diagnostic]

    @property
    def has_objective(self) -> bool:
        """True when some file minimises, has weak constraints, or is a soft policy."""
        return any(stm.ast_type == ast.ASTType.Minimize for f in self.files for stm in f.statements) or any(
            f.meta.enforcement == "soft" for f in self.files)

    def meta_of(self, display: str) -> PolicyMeta:
        for pfile in self.files:
            if pfile.display == display:
                return pfile.meta
        return PolicyMeta(name=policy_name(display))

    def enforcement_facts(self) -> str:
        """Each labelled constraint's enforcement level, as facts for STRICT/RELAXED."""
        level = {f.display: f.meta for f in self.files}
        out = []
        for rule in self.rules:
            if rule.kind != "constraint":
                continue
            meta = level.get(rule.file)
            if meta is None or meta.enforcement == "hard":
                out.append(f"__hard({rule.index}).")
            elif meta.enforcement == "soft":
                out.append(f"__soft({rule.index},{meta.weight},{meta.priority}).")
            else:
                out.append(f"__advisory({rule.index}).")
        return "\n".join(out)

    @property
    def displays(self) -> dict[str, str]:
        """Path as clingo reports it -> path as the user knows it."""
        return {str(f.path): f.display for f in self.files}

    def add_to(self, ctl: clingo.Control) -> None:
        with ast.ProgramBuilder(ctl) as builder:
            for pfile in self.files:
                for stm in pfile.statements:
                    builder.add(stm)


def parse_message(message: str, displays: dict[str, str]) -> Diagnostic:
    """A clingo log message as a diagnostic, with the path shown as the user wrote it."""
    first, _, rest = message.partition("\n")
    match = _MSG.match(first)
    if not match:
        return Diagnostic(summary=message.strip())
    file = displays.get(match["file"], match["file"])
    severity = "error" if match["sev"] == "error" else "warning"
    text = match["text"].strip()
    line = int(match["line"])
    if text.startswith("unsafe variables in:"):
        # clingo shows its rewritten rule (#inc_base, #Anon0): show the rule as written.
        unsafe = re.findall(r"note: ('[^']*') is unsafe", rest)
        written = _source_line(match["file"], line)
        return Diagnostic(file=file, line=line, column=int(match["col"]),
                          summary=f"unsafe variables in: {written}" if written else text,
                          detail=", ".join(f"{v} is unsafe" for v in unsafe) +
                          ": every variable must occur in a positive atom of the body",
                          severity=severity, code="asp")
    for path, display in displays.items():
        rest = rest.replace(path, display)
    detail = " ".join(part.strip() for part in rest.splitlines() if part.strip())
    return Diagnostic(file=file, line=line, column=int(match["col"]),
                      summary=text, detail=detail, severity=severity, code="asp")


def _source_line(path: str, line: int) -> str:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


class _Variables(ast.Transformer):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_Variable(self, node: ast.AST) -> ast.AST:  # noqa: N802 (clingo's naming)
        if node.name != "_" and not node.name.startswith("_") and node.name not in self.names:
            self.names.append(node.name)
        return node


def _global_variables(body: list[ast.AST]) -> list[str]:
    """Variables bound by positive atoms at the top of a body (safe to put in a head)."""
    finder = _Variables()
    for lit in body:
        if (lit.ast_type == ast.ASTType.Literal and lit.sign == ast.Sign.NoSign
                and lit.atom.ast_type == ast.ASTType.SymbolicAtom):
            finder(lit.atom)
    return finder.names


def _comment_before(lines: list[str], line: int) -> str:
    """The comment block just above a line, as one sentence."""
    out: list[str] = []
    index = line - 2
    while index >= 0 and lines[index].strip().startswith("%"):
        if not lines[index].strip().startswith("%@"):  # metadata is not the rule's description
            out.insert(0, lines[index].strip().lstrip("%").strip())
        index -= 1
    return " ".join(out)


def load_program(files: list[tuple[Path, str, str]]) -> Program:
    """Parse (path, display name, origin) files; collect syntax errors of all."""
    rules: list[RuleInfo] = []
    diagnostics: list[Diagnostic] = []
    parsed: list[PolicyFile] = []
    for path, display, origin in files:
        pfile = PolicyFile(path=path, display=display, origin=origin)
        messages: list[str] = []
        try:
            raw = path.read_bytes()
            source = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(Diagnostic(file=display, summary=f"cannot read policy file: {exc}"))
            continue
        pfile.sha256 = hashlib.sha256(raw).hexdigest()
        lines = source.splitlines()
        pfile.meta, problems = read_metadata(source, display, policy_name(display))
        if origin == "base":
            pfile.meta = PolicyMeta(name=pfile.meta.name, description=pfile.meta.description,
                                    owner=pfile.meta.owner or "ordo", declared=True)  # always hard
        diagnostics.extend(problems)

        def on_statement(stm: ast.AST, pfile: PolicyFile = pfile, lines: list[str] = lines) -> None:
            pfile.statements.append(_label(stm, pfile, rules, lines))

        try:
            ast.parse_files([str(path)], on_statement,
                            logger=lambda _code, msg, out=messages: out.append(msg), message_limit=50)
        except RuntimeError:
            if not messages:
                messages.append(f"{path}:1:1: error: could not parse the file")
        for msg in messages:
            diagnostics.append(parse_message(msg, {str(path): display}))
        parsed.append(pfile)
    return Program(files=parsed, rules=rules, diagnostics=diagnostics)


def _label(stm: ast.AST, pfile: PolicyFile, rules: list[RuleInfo], lines: list[str]) -> ast.AST:
    if stm.ast_type == ast.ASTType.Minimize:
        # Preferences count only in strict mode: explaining "no plan" needs
        # no optimal placement, only the fewest violated constraints.
        strict = ast.Literal(stm.location, ast.Sign.NoSign,
                             ast.SymbolicAtom(ast.Function(stm.location, "__strict", [], False)))
        return stm.update(body=[*stm.body, strict])
    if stm.ast_type != ast.ASTType.Rule:
        return stm
    head = stm.head
    loc = stm.location
    if head.ast_type != ast.ASTType.Literal or head.sign != ast.Sign.NoSign:
        return stm
    atom = head.atom
    if atom.ast_type == ast.ASTType.BooleanConstant and not atom.value:
        names = _global_variables(list(stm.body))
        info = RuleInfo(len(rules), "constraint", pfile.display, loc.begin.line, loc.begin.column,
                        _text(lines, loc), tuple(names), _comment_before(lines, loc.begin.line))
        rules.append(info)
        values = ast.Function(loc, "", [ast.Variable(loc, n) for n in names], False)
        new_head = ast.Function(loc, "__violation",
                                [ast.SymbolicTerm(loc, clingo.Number(info.index)), values], False)
        return stm.update(head=ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(new_head)))
    if atom.ast_type == ast.ASTType.SymbolicAtom:
        sym = atom.symbol
        if sym.ast_type == ast.ASTType.Function and sym.name == "before" and len(sym.arguments) == 2:
            info = RuleInfo(len(rules), "before", pfile.display, loc.begin.line, loc.begin.column,
                            _text(lines, loc), (), _comment_before(lines, loc.begin.line))
            rules.append(info)
            new_head = ast.Function(loc, "__before",
                                    [*sym.arguments, ast.SymbolicTerm(loc, clingo.Number(info.index))], False)
            return stm.update(head=ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(new_head)))
    return stm


def policy_name(file: str) -> str:
    """A policy's default name: its file's name without .lp."""
    base = file.rsplit("/", 1)[-1]
    return base[:-3] if base.endswith(".lp") else base


def _text(lines: list[str], loc: ast.Location) -> str:
    chunk = lines[loc.begin.line - 1: loc.end.line]
    return " ".join(" ".join(chunk).split())


#: Added in every mode: how the labelled heads feed the rest of the program
#: (policies/internal/glue.lp; it defines ``__top_priority`` too).
GLUE = policies.internal("glue")

#: Soft policies: each violated instance costs its weight at its priority.
SOFT = policies.internal("soft")

#: Normal mode: hard constraints hold, soft ones cost, the order is acyclic;
#: switching the external ``__strict`` off makes it RELAXED without grounding again.
STRICT = policies.internal("strict") + SOFT

#: Explain mode: pay for each violated hard constraint, above every user priority.
RELAXED = policies.internal("relaxed") + SOFT

#: The priority at which RELAXED counts violated hard constraints (glue.lp's ``__top_priority``).
RELAXED_PRIORITY = int(re.search(r"^#const __top_priority = (\d+)\.$", GLUE, re.M)[1])
