"""A plan's DAG as DOT or Mermaid text (rendering is the caller's job)."""

from __future__ import annotations

from planner.plan import Plan

_SHAPE = {"create": "+", "delete": "-", "update": "~", "change": "~", "run": "*", "replace": "-/+"}


def _symbols(plan: Plan) -> dict[str, str]:
    out = {}
    for change in plan.resource_changes:
        for op in change.operations:
            out[op] = _SHAPE[change.shape]
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(plan: Plan) -> str:
    symbols = _symbols(plan)
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, fontname=\"monospace\"];"]
    for wave_no, wave in enumerate(plan.waves, start=1):
        lines.append(f"  subgraph cluster_wave{wave_no} {{")
        lines.append(f"    label={_quote(f'wave {wave_no}')}; style=dashed;")
        for op_id in wave:
            op = plan.operation(op_id)
            label = f"{symbols[op_id]} {op.resource}\\n{op.operation} [{op.controller}]"
            lines.append(f"    {_quote(op_id)} [label=\"{label}\"];")
        lines.append("  }")
    for edge in plan.edges:
        lines.append(f"  {_quote(edge.before)} -> {_quote(edge.after)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


#: What Mermaid draws at most unless the page that renders it says otherwise (its maxEdges and
#: maxTextSize): a larger diagram is refused there, whatever it holds.
MERMAID_MOST_EDGES = 500
MERMAID_MOST_TEXT = 50_000


def mermaid_too_large(plan: Plan, text: str) -> str | None:
    """Why Mermaid would refuse ``text`` (``to_mermaid(plan)``) as it is set up by default, or None."""
    if len(plan.edges) > MERMAID_MOST_EDGES:
        return f"{len(plan.edges):,} edges, more than the {MERMAID_MOST_EDGES} Mermaid draws (maxEdges)"
    if len(text) > MERMAID_MOST_TEXT:
        return f"{len(text):,} characters, more than the {MERMAID_MOST_TEXT:,} Mermaid reads (maxTextSize)"
    return None


def to_mermaid(plan: Plan) -> str:
    symbols = _symbols(plan)
    ids = {op.id: f"op{i}" for i, op in enumerate(plan.operations)}
    lines = ["flowchart LR"]
    for wave_no, wave in enumerate(plan.waves, start=1):
        lines.append(f"  subgraph wave{wave_no}[\"wave {wave_no}\"]")
        for op_id in wave:
            op = plan.operation(op_id)
            label = f"{symbols[op_id]} {op.resource}<br/>{op.operation}".replace('"', "'")
            lines.append(f"    {ids[op_id]}[\"{label}\"]")
        lines.append("  end")
    for edge in plan.edges:
        lines.append(f"  {ids[edge.before]} --> {ids[edge.after]}")
    return "\n".join(lines) + "\n"
