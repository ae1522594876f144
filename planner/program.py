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

import functools
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import clingo
from clingo import ast

import policies
from domain.errors import Diagnostic
from domain.project import display_path
from domain.yamlsrc import name_problem, not_utf8, text_position
from planner.metadata import PolicyMeta, clingo_lines, read_metadata

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
    strings: tuple[str, ...] = ()   # a constraint's strings in positive atoms, sorted: what it names as written

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
    parameters: dict = field(default_factory=dict)  # a stock policy's values from ordo.yaml (planner/parameters.py)
    #: What the statements are made from, for the caches of what is read from them (``CACHES``);
    #: () where they are not cached.
    made_of: tuple = ()


@dataclass
class Program:
    """Parsed and rewritten policy files, ready to add to a Control."""

    files: list[PolicyFile]
    rules: list[RuleInfo]
    diagnostics: list[Diagnostic]
    linted: bool = False  # parsed without errors and linted (planner.core.checked_program)
    root: Path | None = None  # the folder includes are confined to (load_program's root)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity != "error"]

    @property
    def has_objective(self) -> bool:
        """True when some policy file minimises, has weak constraints, or is a soft policy.
        (The base library's one preference, the request's order among siblings,
        counts only when a request sets one: planner.facts.orders_siblings.)"""
        return any(stm.ast_type == ast.ASTType.Minimize for f in self.files if f.origin != "base"
                   for stm in f.statements) or any(f.meta.enforcement == "soft" for f in self.files)

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


#: A name with a hyphen written without quotes (region-one): clingo reads a subtraction.
_MINUS_NAME = re.compile(r"\b[a-z_][A-Za-z0-9_']*(?:-[a-z_][A-Za-z0-9_']*)+\b")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


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
    if text.startswith("operation undefined") and (name := _MINUS_NAME.search(_QUOTED.sub('""', detail))):
        text, detail = f"operation undefined: {detail}", (
            f"unquoted, {name[0]} is a subtraction, which has no value, and the rule never applies: "
            f"write the name in quotes, \"{name[0]}\"")
    return Diagnostic(file=file, line=line, column=int(match["col"]),
                      summary=text, detail=detail, severity=severity, code="asp")


def _source_line(path: str, line: int) -> str:
    try:
        lines = clingo_lines(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


#: A string term (skipped) or a variable's name, in a term's text: a name that
#: starts with a capital; one that starts with '_' is anonymous (never a head's).
_VARIABLE = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![A-Za-z0-9_\'])(_*[A-Z][A-Za-z0-9_\']*)')   # _X is a variable too


def _global_variables(body: list[ast.AST]) -> list[str]:
    """Variables bound by positive atoms at the top of a body (safe to put in
    a head), in the order they first occur. Read from each atom's text (one
    call into clingo, where a walk of its terms takes one per node): clingo
    writes a term's parts in the order they are held, and strings escaped."""
    names: list[str] = []
    for lit in body:
        if lit.ast_type == ast.ASTType.Literal and lit.sign == ast.Sign.NoSign:
            atom = lit.atom
            if atom.ast_type == ast.ASTType.SymbolicAtom:
                for name in _VARIABLE.findall(str(atom)):
                    if name and name not in names:
                        names.append(name)
    return names


def _comment_before(lines: list[str], line: int) -> str:
    """The comment block just above a line, as one sentence."""
    out: list[str] = []
    index = line - 2
    while index >= 0 and lines[index].strip().startswith("%"):
        if not lines[index].strip().startswith("%@"):  # metadata is not the rule's description
            out.insert(0, lines[index].strip().lstrip("%").strip())
        index -= 1
    return " ".join(out)


def load_program(files: list[tuple[Path, str, str]], root: Path) -> Program:
    """Parse (path, display name, origin) files and the files they
    ``#include``; collect the syntax errors of all.

    ordo expands ``#include`` itself, so clingo never opens a file: an
    included file must be inside ``root`` (the project folder; for ordo's own
    files, the policy library) and becomes a policy file of its own, with its
    own name in messages and in the plan's digest. Without a ``%@`` header it
    is part of the policy that includes it. As in clingo, a file is loaded
    once, however often it is included."""
    rules: list[RuleInfo] = []
    diagnostics: list[Diagnostic] = []
    parsed: list[PolicyFile] = []
    seen: set[Path] = set()
    given = []
    for path, display, origin in files:   # a file given twice (`--policy` of one ordo.yaml lists) is loaded once
        if (resolved := path.resolve()) not in seen:
            seen.add(resolved)
            given.append((path, display, origin))
    todo: list[tuple[Path, str, str, PolicyMeta | None]] = [(p, d, o, None) for p, d, o in reversed(given)]
    while todo:
        path, display, origin, parent = todo.pop()
        pfile, includes = _parse_file(path, display, origin, parent, rules, diagnostics)
        if pfile is None:
            continue
        parsed.append(pfile)
        found = []
        for include in includes:
            target = _resolve_include(pfile, include, root, diagnostics)
            if target is not None and target not in seen:
                seen.add(target)
                found.append((target, _included_display(pfile, target, root), origin, pfile.meta))
        todo.extend(reversed(found))
    diagnostics += _name_clashes(parsed)
    return Program(files=parsed, rules=rules, diagnostics=diagnostics, root=root)


_STOCK_FIRST = {"base": 0, "library": 1}


def _name_clashes(files: list[PolicyFile]) -> list[Diagnostic]:
    """A policy whose name another policy has already (a file included without a header of its own
    is part of the policy that includes it, not another): ordo.yaml's enforcement levels,
    ``--without-policy`` and tests pick policies by name, and would pick both. The stock policy, or
    else the first file, keeps the name; each other is refused at its header."""
    first: dict[str, PolicyFile] = {}
    stock = _stock_names()
    out = []
    for pfile in sorted(files, key=lambda f: _STOCK_FIRST.get(f.origin, 2)):   # (stable: the load order within)
        name = pfile.meta.name
        owner = first.setdefault(name, pfile)
        if owner.meta is not pfile.meta:   # another policy's name (not its includer's)
            taken = owner.display
        elif owner is pfile and pfile.origin == "project" and name in stock:
            # a stock policy's name, loaded now or not: the library's are loaded when ordo.yaml enables
            # them, the re-plan's at a re-plan, avoid-refused-targets by whatif --target-down
            taken = stock[name]
        else:
            continue
        how = ("rename it in its %@ name: line" if pfile.meta.declared and pfile.meta.line else
               "give it a %@ name: line of its own (a policy without one is named after its file)")
        out.append(Diagnostic(
            file=pfile.display, line=pfile.meta.line or 1, column=1, code="metadata",
            summary=f"policy name '{name}' is taken by {taken}",
            detail=f"every policy needs a name of its own: ordo.yaml's enforcement, --without-policy and "
                   f"tests select policies by name; {how}"))
    return out


@functools.cache
def _stock_names() -> dict[str, str]:
    """The name of every policy of ordo's own (base, library, re-plan), and the file that has it."""
    folders = (("<base>", policies.base_files()), ("<library>", list(policies.library().values())),
               ("<replan>", policies.replan_files()))
    out: dict[str, str] = {}
    for prefix, paths in folders:
        for path in paths:
            display = f"{prefix}/{path.name}"
            out.setdefault(read_metadata(path.read_text(encoding="utf-8"), display, policy_name(display))[0].name,
                           display)
    return out


@dataclass(frozen=True)
class _Parsed:
    """What parsing and labelling one file gave: its statements, and what it added to the rules
    and the diagnostics."""

    meta: PolicyMeta
    statements: tuple[ast.AST, ...]
    rules: tuple[RuleInfo, ...]
    diagnostics: tuple[Diagnostic, ...]
    includes: tuple[_Include, ...]
    inherited: bool   # meta is the including policy's


class _Caches(threading.local):
    """What a thread made of policy files, kept for its next plan. A long-lived process (``ordo
    serve``, a worker, ``ordo test``'s cases) plans again and again with the same files; walking
    their statements in Python took most of a small plan's time. Each thread has its own:
    every read of an AST node's attribute changes clingo's count of references to it, which is
    not promised to be safe across threads, so no node is handed to two threads. At most ``LIMIT`` entries each."""

    #: A vFW program (10 files) takes 0.74 MB; each edit of a file makes another entry of it (and of
    #: the files after it, when their rules' indices move): a thread keeps at most some 10 MB per cache.
    LIMIT = 128

    def __init__(self) -> None:
        #: Files parsed and labelled, by all that the result depends on: the path, the bytes'
        #: sha256, the display name, the origin, the including policy's metadata and the number
        #: of rules labelled before (each rule's index is written into its statement).
        self.parsed: dict[tuple, _Parsed] = {}
        #: A stock policy's statements with its parameters in place (planner/parameters.py).
        self.substituted: dict[tuple, tuple] = {}
        #: The words of a file's interface atoms (planner/lint.py).
        self.words: dict[tuple, tuple] = {}

    @staticmethod
    def keep(cache: dict, key: tuple, value) -> None:
        if len(cache) >= _Caches.LIMIT:
            cache.clear()
        cache[key] = value

    @staticmethod
    def kept(cache: dict, key: tuple, make):
        """``make()``, kept in ``cache`` under ``key``; made each time, and kept nowhere, for a key ()."""
        value = cache.get(key) if key else None
        if value is None:
            value = make()
            if key:
                _Caches.keep(cache, key, value)
        return value


CACHES = _Caches()


def _parse_file(path: Path, display: str, origin: str, parent: PolicyMeta | None, rules: list[RuleInfo],
                diagnostics: list[Diagnostic]) -> tuple[PolicyFile | None, list[_Include]]:
    """One policy file, parsed and labelled, and the ``#include`` directives it holds (``CACHES``)."""
    if (problem := name_problem(str(path), display)) is not None:
        diagnostics.append(problem)
        return None, []
    try:
        raw = path.read_bytes()
        source = raw.decode("utf-8")
    except OSError as exc:
        diagnostics.append(Diagnostic(file=display, summary=f"cannot read policy file: {exc}"))
        return None, []
    except UnicodeDecodeError as exc:   # where, as an editor shows it (not the byte's offset)
        diagnostics.append(replace(not_utf8(display, raw, exc.start, "a policy file"), code="asp"))
        return None, []
    key = (str(path), hashlib.sha256(raw).hexdigest(), display, origin, parent, len(rules))
    parsed = CACHES.parsed.get(key)
    if parsed is None:
        before_rules, before_diagnostics = len(rules), len(diagnostics)
        pfile, includes = _parse_new(path, source, key[1], display, origin, parent, rules, diagnostics)
        if not _unchanged(path, raw):   # clingo read the file itself: what it read is not kept as these bytes'
            return pfile, includes
        parsed = _Parsed(pfile.meta, tuple(pfile.statements), tuple(rules[before_rules:]),
                         tuple(diagnostics[before_diagnostics:]), tuple(includes), pfile.meta is parent)
        CACHES.keep(CACHES.parsed, key, parsed)
    else:
        rules.extend(parsed.rules)
        diagnostics.extend(parsed.diagnostics)
    # a file without a header of its own is part of the policy that includes it: its very metadata,
    # which _name_clashes tells apart by identity (the includer's, parsed again, is another object)
    meta = parent if parsed.inherited else parsed.meta
    return PolicyFile(path=path, display=display, origin=origin, sha256=key[1], statements=list(parsed.statements),
                      meta=meta, made_of=key), list(parsed.includes)


def _unchanged(path: Path, raw: bytes) -> bool:
    try:
        return path.read_bytes() == raw
    except OSError:
        return False


def _parse_new(path: Path, source: str, sha256: str, display: str, origin: str, parent: PolicyMeta | None,
               rules: list[RuleInfo], diagnostics: list[Diagnostic]) -> tuple[PolicyFile, list[_Include]]:
    pfile = PolicyFile(path=path, display=display, origin=origin, sha256=sha256)
    messages: list[str] = []
    lines = clingo_lines(source)
    # (a byte order mark is refused below, once: its header is read as written, not as "below line 1")
    pfile.meta, problems = read_metadata(source.removeprefix("\ufeff"), display, policy_name(display))
    if parent is not None and not pfile.meta.declared:
        pfile.meta = parent
    if origin == "base":
        pfile.meta = PolicyMeta(name=pfile.meta.name, description=pfile.meta.description,
                                owner=pfile.meta.owner or "ordo", declared=True)  # always hard
    diagnostics.extend(problems)
    includes, text = _includes(source)
    # a character clingo's message would cut in two (its logger cannot decode it), or a nest too deep for it
    unreadable = _unreadable_character(source, display) or _too_deep(source, display)
    if unreadable is not None:
        diagnostics.append(unreadable)
        if source.startswith("\ufeff") and (other := _unreadable_character(" " + source[1:], display)) is not None:
            diagnostics.append(other)   # (the first one after the mark, which hid it: a policy author's sweep)
        return pfile, includes
    relocate = _Relocate(str(path)) if includes or text != source else None

    long_numbers = _LONG_NUMBER.search(source) is not None
    reserved = origin == "project" and "__" in source

    too_long: list[ast.Position] = []   # (the statement's start: clingo raises the exception anew, without it)

    def on_statement(stm: ast.AST) -> None:
        if _length(stm.location, lines) > MOST_OPERATORS and _operators(stm.location, lines) > MOST_OPERATORS:
            too_long.append(stm.location.begin)
            raise _TooLong
        if relocate is not None:
            stm = relocate(stm)
        if long_numbers:
            diagnostics.extend(_wrapped_numbers(stm, display, lines))
        if reserved and stm.ast_type != ast.ASTType.Definition:   # (a #const is planner/lint.py's to name)
            diagnostics.extend(_reserved_names(stm, display))
        pfile.statements.append(_label(stm, pfile, rules, lines))

    log = {"logger": lambda _code, msg: messages.append(msg), "message_limit": 50}
    try:
        if relocate is None:
            ast.parse_files([str(path)], on_statement, **log)
        else:
            ast.parse_string(text, on_statement, **log)
    except _TooLong:
        begin = too_long[0]
        diagnostics.append(Diagnostic(
            file=display, line=begin.line, column=begin.column, code="asp",
            summary=f"a statement of more than {MOST_OPERATORS:,} operators and parentheses",
            detail="ordo reads statements of at most that many (a sum of 20,000 terms ended the process: clingo "
                   "writes it out a level at a time): split it into rules of their own"))
    except RuntimeError:
        if not messages:
            messages.append(f"{path}:1:1: error: could not parse the file")
    for msg in messages:
        diagnostics.append(_unclosed_comment(
            _missing_period(parse_message(msg, {str(path): display, "<string>": display}), text), text))
    return pfile, includes


_RESERVED = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![A-Za-z0-9_\'])(__[A-Za-z0-9_\']*)')


def _reserved_names(stm: ast.AST, display: str) -> list[Diagnostic]:
    """A project's statement that names a predicate or term ordo writes itself
    (``__violation``, ``__before``, ...): it would pass for one of ordo's own."""
    names = sorted({name for name in _RESERVED.findall(str(stm)) if name})
    loc = stm.location.begin
    return [Diagnostic(file=display, line=loc.line, column=loc.column, code="reserved",
                       summary=f"uses '{name}', a name ordo reserves",
                       detail="names that start with '__' are ordo's own") for name in names]


#: clingo's integers are 32-bit: a longer literal wraps silently (99999999999999999999 reads as 1661992959).
CLINGO_MAX_INT = 2**31 - 1
_UNREADABLE = re.compile(r"[^\t\n\r\x20-\x7e]")


#: The deepest a policy's parentheses nest, and the most operators and parentheses a statement may hold
#: (outside its strings and comments): clingo writes a statement out (and ordo walks it) a level of its
#: terms at a time, and a term 20,000 levels deep, or a sum of 20,000 terms, ended the process (a
#: segmentation fault, no message); a flat pool of thousands of strings is no deeper than one.
MOST_NESTED = 100
MOST_OPERATORS = 5_000


class _TooLong(Exception):
    """A statement of more than MOST_OPERATORS operators, which stops the parse."""


def _length(location: ast.Location, lines: list[str]) -> int:
    """At least how many characters a statement spans (clingo's columns count bytes): a cheap first look."""
    begin, end = location.begin, location.end
    if begin.line == end.line:
        return end.column - begin.column
    return sum(len(lines[n]) for n in range(begin.line - 1, min(end.line, len(lines)))) - begin.column


def _operators(location: ast.Location, lines: list[str]) -> int:
    """How many operators and parentheses the statement's text holds outside its strings and comments."""
    begin, end = location.begin, location.end
    raw = "\n".join(lines[begin.line - 1:end.line]).encode()
    start = begin.column - 1
    stop = len(raw) - (len(lines[end.line - 1].encode()) - (end.column - 1)) if end.line <= len(lines) else len(raw)
    text = raw[start:stop].decode("utf-8", "replace")
    return sum(text.count(op, first, last) for kind, first, last in _lexed(text) if kind == "code"
               for op in "+-*/\\^&|~(")


def _too_deep(source: str, display: str) -> Diagnostic | None:
    """Parentheses nested more than MOST_NESTED levels deep, in code (strings and comments aside)."""
    if source.count("(") <= MOST_NESTED:   # (nothing nests so deep: the text is not lexed)
        return None
    depth = 0
    for kind, start, end in _lexed(source):
        if kind != "code":
            continue
        for found in _PARENS.finditer(source, start, end):
            depth += 1 if found[0] == "(" else -1
            if depth > MOST_NESTED:
                line, column = text_position(source, found.start())
                return Diagnostic(file=display, line=line, column=column, code="asp",
                                  summary=f"parentheses nested more than {MOST_NESTED} levels deep",
                                  detail="ordo reads terms of at most that depth: write the term flatter")
    return None


_PARENS = re.compile(r"[()]")


def _unreadable_character(source: str, display: str) -> Diagnostic | None:
    """A character clingo cannot read where it stands: outside a string or a comment, one that is
    not printable ASCII (a byte order mark, a letter with an accent, a quote pasted from a
    document: clingo's message about it cuts it in two, and a process reading that message
    ends); a NUL anywhere (it would end the text there)."""
    if _UNREADABLE.search(source) is None:
        return None
    at, theory = source.find("\0"), False
    if at < 0:   # the first one in code (a #script block's text is read as it is, as clingo reads it)
        spans = list(_lexed(source))
        # theory terms (#theory, &atoms) are read by a lexer of their own, without strings: in a file
        # that has them, a string is code too (an accent there ended the process as well)
        theory = any(kind == "code" and ("&" in source[start:end] or source.startswith("#theory", start))
                     for kind, start, end in spans)
        code = ("code", "script", "string") if theory else ("code", "script")
        at = next((found.start() for kind, start, end in spans if kind in code
                   for found in [_UNREADABLE.search(source, start, end)] if found is not None), -1)
    if at < 0:
        return None
    char = source[at]
    line, column = text_position(source, at)
    code = f"U+{ord(char):04X}"
    if char == "\ufeff":
        what, detail = f"a byte order mark ({code})", "save the file as UTF-8 without one"
    elif char == "\0":
        what, detail = f"a NUL character ({code})", "a policy file is text"
    elif char.isprintable():
        what, detail = f"'{char}' ({code})", "clingo reads only ASCII there: write it in ASCII, or inside a string"
    else:
        what, detail = f"a control character ({code})", "clingo reads only printable ASCII there"
    where = ("in a policy file" if char == "\0" else "outside a comment in a file with theory terms (#theory, &)"
             if theory else "outside a string or a comment")
    return Diagnostic(file=display, line=line, column=column, summary=f"{what} is not allowed {where}",
                      detail=detail, code="asp")


_LONG_NUMBER = re.compile(r"\d{10}")


def _wrapped_numbers(stm: ast.AST, display: str, lines: list[str]) -> list[Diagnostic]:
    """A diagnostic for each number literal of ``stm`` that clingo cannot hold (it would wrap): one for
    each place (a #minimize element's weight is a child of the statement twice over)."""
    out: dict[tuple[int, int], Diagnostic] = {}
    stack = [stm]
    while stack:
        node = stack.pop()
        if node.ast_type == ast.ASTType.SymbolicTerm and node.symbol.type == clingo.SymbolType.Number:
            begin, end = node.location.begin, node.location.end
            written = (lines[begin.line - 1].encode()[begin.column - 1:end.column - 1].decode(errors="replace")
                       if begin.line == end.line else "")   # (clingo counts columns in bytes)
            if written.isdigit() and int(written) > CLINGO_MAX_INT:
                out[begin.line, begin.column] = Diagnostic(
                    file=display, line=begin.line, column=begin.column, summary=f"the number {written} is too large",
                    detail=f"clingo's integers are 32-bit: at most {CLINGO_MAX_INT}", code="number")
            continue
        for key in node.child_keys:
            child = getattr(node, key)
            if isinstance(child, ast.AST):
                stack.append(child)
            elif child is not None:
                stack.extend(child)
    return list(out.values())


#: A token that can end a statement: the last one before a missing '.'.
_ENDS_STATEMENT = re.compile(r'[A-Za-z0-9_)"}]')


def _missing_period(diag: Diagnostic, text: str) -> Diagnostic:
    """clingo reports a missing '.' where the next statement starts ("10:1:
    syntax error, unexpected :-"); point at the end of the statement that
    lacks it instead. Only when the unexpected token starts its line, is a
    ':-', a directive or the end of the file, and the code before it ends
    like a statement (not after ',' or ':-')."""
    match = re.match(r"syntax error, unexpected (\S+)", diag.summary)
    if not match or not diag.line:
        return diag
    lines = text.split("\n")
    token = match[1].rstrip(",")
    if diag.line <= len(lines):
        offset = sum(len(line) + 1 for line in lines[:diag.line - 1]) + diag.column - 1
    elif token == "EOF":   # a file that ends with no line break: clingo's end is on the line after its last
        offset = len(text)
    else:
        return diag
    starts_line = not text[offset - diag.column + 1:offset].strip()
    if not (starts_line or token in (":-", "EOF") or token.startswith("#")):
        return diag
    end = _last_code(text, offset)
    if end is None or not _ENDS_STATEMENT.match(text[end]):
        return diag
    line, column = text_position(text, end + 1)   # just after the last character
    # clingo expects a ')' there (and no '.'): a '(' left open, which a '.' would not mend (an authoring sweep's)
    unclosed = re.search(r", expecting \) or ;$", diag.summary) is not None
    missing, why = ("')'", "a '(' is not closed before the next statement") if unclosed else \
        ("'.'", "no '.' ends the statement here")
    return Diagnostic(file=diag.file, line=line, column=column, summary=f"syntax error: missing {missing}?",
                      detail=f"{why}; clingo, at {diag.line}:{diag.column}: {diag.summary}",
                      severity=diag.severity, code=diag.code)


def _unclosed_comment(diag: Diagnostic, text: str) -> Diagnostic:
    """clingo reports a block comment never closed at the end of the file ("lexer error, unexpected
    <EOF>"); point at where it opens instead."""
    if diag.summary != "lexer error, unexpected <EOF>":
        return diag
    start = next((start for kind, start, _ in _lexed(text) if kind == "unclosed comment"), None)
    if start is None:
        return diag
    line, column = text_position(text, start)
    return Diagnostic(file=diag.file, line=line, column=column, summary="a '%*' comment that is never closed",
                      detail=f"end it with '*%', and each '%*' inside it too (they nest); clingo, at "
                             f"{diag.line}:{diag.column}: {diag.summary}", severity=diag.severity, code=diag.code)


def _last_code(text: str, stop: int) -> int | None:
    """The offset of the last character before ``stop`` that is neither
    blank nor in a comment (``_lexed``); strings are code."""
    last = None
    for kind, start, end in _lexed(text):
        if start >= stop:
            break
        if not kind.endswith("comment"):
            end = min(end, stop)
            code = text[start:end].rstrip()
            if code:
                last = start + len(code) - 1
    return last


@dataclass(frozen=True)
class _Include:
    """One ``#include`` directive: where it is, and the file it names
    (None when it does not name a file in quotes)."""

    line: int
    column: int
    target: str | None


#: clingo's lexer (libgringo nongroundlexer): a string, a directive.
_STRING = r'"(?:[^\\"\n]|\\"|\\\\|\\n)*"'
_STRING_RE = re.compile(_STRING)
_DIRECTIVE = re.compile(r"#include(?![A-Za-z0-9_])\s*(?:(" + _STRING + r")\s*\.)?")
_KEYWORD_END = re.compile(r"(?![A-Za-z0-9_])")


def _lexed(source: str) -> Iterator[tuple[str, int, int]]:
    """A policy's text as clingo's lexer (libgringo's) sees it, as far as ordo reads it: (kind, start,
    end) spans, in order, that cover it. Kinds: "comment" (``%`` and ``#!`` to the end of the line;
    ``%* *%``, which nest, and within which a ``%`` starts a line comment; "unclosed comment" for one
    that the file ends in), "string", "script" (a
    ``#script`` block to its ``#end``: read as it is), "include" (an ``#include`` directive and what
    it names) and "code"."""
    index, size = 0, len(source)
    while index < size:
        char = source[index]
        if source.startswith("%*", index):
            start, depth, index = index, 1, index + 2
            while depth and index < size:
                if source.startswith("*%", index):
                    depth, index = depth - 1, index + 2
                elif source.startswith("%*", index):
                    depth, index = depth + 1, index + 2
                elif source[index] == "%":
                    index = _line_end(source, index)
                else:
                    index += 1
            yield "comment" if depth == 0 else "unclosed comment", start, index
        elif char == "%" or source.startswith("#!", index):
            end = _line_end(source, index)
            yield "comment", index, end
            index = end
        elif char == '"':
            match = _STRING_RE.match(source, index)
            end = match.end() if match else index + 1
            yield "string", index, end
            index = end
        elif source.startswith("#script", index) and _KEYWORD_END.match(source, index + 7):
            end = source.find("#end", index)
            end = size if end < 0 else end + 4
            yield "script", index, end
            index = end
        elif source.startswith("#include", index) and _KEYWORD_END.match(source, index + 8):
            match = _DIRECTIVE.match(source, index)
            assert match is not None
            yield "include", index, match.end()
            index = match.end()
        else:
            match = _CODE_RE.match(source, index)
            end = match.end() if match else index + 1
            yield "code", index, end
            index = end


#: A run of code: up to the next character that may start a comment, a string or a directive.
_CODE_RE = re.compile(r'[^%"#]+')


def _includes(source: str) -> tuple[list[_Include], str]:
    """The ``#include`` directives of a policy file, and its text with each
    one blanked (lines and columns kept) for clingo to parse. Comments,
    strings and ``#script`` blocks are skipped as clingo's lexer skips them;
    an ``#include`` anywhere outside a string is blanked, so clingo never
    follows one."""
    if "#include" not in source:
        return [], source
    found: list[_Include] = []
    strings: list[tuple[int, int]] = []
    spans: list[tuple[int, int]] = []
    for kind, index, end in _lexed(source):
        if kind == "string":
            strings.append((index, end))
        elif kind == "include":
            match = _DIRECTIVE.match(source, index)
            assert match is not None
            found.append(_Include(*text_position(source, index), _unquote(match[1][1:-1]) if match[1] else None))
            spans.append((index, end))
    start = source.find("#include")
    while start >= 0:  # the rest, in comments and scripts: clingo skips them too, blanked all the same
        if not any(a <= start < b for a, b in strings):
            spans.append((start, start + 8))
        start = source.find("#include", start + 8)
    chars = list(source)
    for a, b in spans:
        chars[a:b] = [c if c == "\n" else " " for c in source[a:b]]
    return found, "".join(chars)


def _line_end(source: str, index: int) -> int:
    end = source.find("\n", index)
    return len(source) if end < 0 else end


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


class _Relocate(ast.Transformer):
    """Gives every node of a statement parsed from a string its file's name."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def visit(self, node: ast.AST, *args, **kwargs) -> ast.AST:
        changed = self.visit_children(node)
        if "location" in node.keys():  # noqa: SIM118 (an AST is no mapping)
            loc = node.location
            changed["location"] = ast.Location(loc.begin._replace(filename=self.filename),
                                               loc.end._replace(filename=self.filename))
        return node.update(**changed)


def _resolve_include(pfile: PolicyFile, include: _Include, root: Path,
                     diagnostics: list[Diagnostic]) -> Path | None:
    """The file an ``#include`` names, if it may be loaded; else a diagnostic."""
    folder = root if pfile.origin == "project" else Path(policies.__file__).parent

    def problem(summary: str, detail: str) -> None:
        diagnostics.append(Diagnostic(file=pfile.display, line=include.line, column=include.column,
                                      summary=summary, detail=detail, code="include"))

    if include.target is None:
        problem('expected #include "FILE".', "a policy includes a file of the project by its path, in quotes")
        return None
    try:
        target = (pfile.path.parent / include.target).resolve()
    except (OSError, RuntimeError):   # (it was "a bug in ordo")
        problem(f"#include of '{include.target}': a loop of symbolic links, or a name too long to resolve",
                "include a file of the project by a name that leads to it")
        return None
    if not target.is_relative_to(folder.resolve()):
        problem(f"#include of '{include.target}': outside the project folder",
                "a policy may include only files inside the project folder, where ordo.yaml is")
        return None
    if target.is_dir():
        problem(f"#include of '{include.target}': a folder, not a file",
                "include each file of it by its name, or list the folder in ordo.yaml's policies.files")
        return None
    if not target.is_file():   # (it said clingo's "file could not be opened: (nothere.lp)")
        looked = display_path(target, root) if pfile.origin == "project" else target.name
        problem(f"#include of '{include.target}': no such file",
                f"looked for {looked}: a path is read from the folder of the file that includes it")
        return None
    return target


def _included_display(pfile: PolicyFile, target: Path, root: Path) -> str:
    if pfile.origin == "project":
        return display_path(target, root)
    return f"{pfile.display.rsplit('/', 1)[0]}/{target.name}"


def _label(stm: ast.AST, pfile: PolicyFile, rules: list[RuleInfo], lines: list[str]) -> ast.AST:
    kind = stm.ast_type
    if kind == ast.ASTType.Minimize:
        # Preferences count only in strict mode: explaining "no plan" needs
        # no optimal placement, only the fewest violated constraints.
        strict = ast.Literal(stm.location, ast.Sign.NoSign,
                             ast.SymbolicAtom(ast.Function(stm.location, "__strict", [], False)))
        return stm.update(body=[*stm.body, strict])
    if kind != ast.ASTType.Rule:
        return stm
    head = stm.head
    loc = stm.location
    if head.ast_type != ast.ASTType.Literal or head.sign != ast.Sign.NoSign:
        return stm
    atom = head.atom
    if atom.ast_type == ast.ASTType.BooleanConstant and not atom.value:
        body = list(stm.body)
        names = _global_variables(body)
        info = RuleInfo(len(rules), "constraint", pfile.display, loc.begin.line, loc.begin.column,
                        _text(lines, loc), tuple(names), _comment_before(lines, loc.begin.line), _strings(body))
        rules.append(info)
        values = ast.Function(loc, "", [ast.Variable(loc, n) for n in names], False)
        new_head = ast.Function(loc, "__violation",
                                [ast.SymbolicTerm(loc, clingo.Number(info.index)), values], False)
        # a Rule made anew, not stm.update(head=...): that reads every attribute again
        return ast.Rule(loc, ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(new_head)), body)
    sym = before_head(stm)
    if sym is not None:
        info = RuleInfo(len(rules), "before", pfile.display, loc.begin.line, loc.begin.column,
                        _text(lines, loc), (), _comment_before(lines, loc.begin.line))
        rules.append(info)
        new_head = ast.Function(loc, "__before",
                                [*sym.arguments, ast.SymbolicTerm(loc, clingo.Number(info.index))], False)
        return ast.Rule(loc, ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(new_head)), stm.body)
    return stm


def before_head(stm: ast.AST) -> ast.AST | None:
    """The before/2 atom that is a rule's one head (``before(A,B) :- ...``), or None: the form ordo
    labels, so that a plan's edges name their rules (in a pool, a choice, a disjunction or an
    #external, an order would bind the solver and be missing from the plan: planner/lint.py)."""
    if stm.ast_type != ast.ASTType.Rule or (head := stm.head).ast_type != ast.ASTType.Literal \
            or head.sign != ast.Sign.NoSign or (atom := head.atom).ast_type != ast.ASTType.SymbolicAtom:
        return None
    sym = atom.symbol
    return sym if sym.ast_type == ast.ASTType.Function and sym.name == "before" and len(sym.arguments) == 2 else None


class _Strings(ast.Transformer):
    def __init__(self) -> None:
        self.found: set[str] = set()

    def visit_SymbolicTerm(self, node: ast.AST) -> ast.AST:  # noqa: N802 (clingo's naming)
        if node.symbol.type == clingo.SymbolType.String:
            self.found.add(node.symbol.string)
        return node


def _strings(body: list[ast.AST]) -> tuple[str, ...]:
    """The string constants of a rule body's positive atoms: what the rule is about, not what it
    compares with (R != "vfw") or needs to be false (not protected("x"))."""
    walker = _Strings()
    for literal in body:
        if (literal.ast_type == ast.ASTType.Literal and literal.sign == ast.Sign.NoSign
                and literal.atom.ast_type == ast.ASTType.SymbolicAtom):
            walker(literal)
    return tuple(sorted(walker.found))


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
