"""``ordo check``: every problem of a project at once.

Stages, each run even when an earlier one found problems where it can be:
project file; policy files (syntax, lint); models (YAML, schema, references,
relationship cycles); grounding the policies with the model's facts (unsafe
variables and other grounding errors).
"""

from __future__ import annotations

from pathlib import Path

from domain.errors import Diagnostic, DiagnosticsError
from domain.project import load_project, project_policy_files, read_project_file
from planner.core import all_policy_files, checked_program
from planner.facts import model_facts
from planner.solve import ground_only


def check(root: Path | str = ".", request: Path | str | None = None,
          inventory: Path | str | None = None) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    try:
        root, project_file, src = read_project_file(root)
    except DiagnosticsError as exc:
        return exc.diagnostics
    paths, problems = project_policy_files(root, project_file, src)
    diagnostics += problems
    files, problems = all_policy_files(project_file.policies.library, paths, root, src)
    diagnostics += problems
    model = None
    try:
        model = load_project(root, request, inventory, need_request=False).model
    except DiagnosticsError as exc:
        diagnostics += exc.diagnostics
    program = checked_program(files, root, dict(project_file.policies.enforcement), src, model,
                              dict(project_file.policies.parameters))
    diagnostics += program.diagnostics
    # Ground even when the models have errors (with no facts then): unsafe
    # variables do not depend on the facts. Not with #script or @-calls: they
    # are refused, and grounding would run them.
    if program.linted and not any(d.code == "script" for d in program.diagnostics):
        try:
            diagnostics += [d for d in ground_only(program, model_facts(model) if model else [])
                            if d.severity == "error"]
        except DiagnosticsError as exc:
            diagnostics += exc.diagnostics
    return sorted(set(diagnostics))
