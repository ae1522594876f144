"""The web page: the runs with their state and progress, and a run's plan as a live graph.

No build step and nothing fetched from elsewhere: the HTML and the SVG are drawn here,
in Python, from the journal (the plan: waves left to right, dependencies as edges),
and a small inline script follows the run's Server-Sent Events (/v1/runs/{id}/events)
to colour each operation as it goes (pending, running, done, failed, retried). Names,
reasons and controller outputs are untrusted: every text goes through ``html.escape``,
the script only reads event data and sets classes and text (never HTML).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse

from executor.journal import RESUMABLE, Event, RunInfo
from service.app import authorize
from service.engine import LocalEngine
from service.so import status as so_status

#: An operation's look, from the events of the plan it belongs to.
OP_STATES = ("pending", "running", "waiting", "done", "failed", "retried")
#: (waiting: for an outside event, `wait:` in the catalog; one that sends nothing first has no intent)
_KIND_STATE = {"intent": "running", "waiting": "waiting", "result": "done", "failed": "failed", "retry": "retried"}
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 200, 48, 70, 16, 24
MAX_LABEL = 26
LIST_LIMIT = 200
#: Operations a plan may have to be drawn: a larger one is shown as its waves, counted by look (the graph of a
#: 10,000-resource run, 31,000 operations, was a page of 20 MB that a browser could not lay out).
MAX_DRAWN = 1000
KEPT_PAGES = 32   # pages of ended runs kept (a page draws MAX_DRAWN operations at most: under 1 MB)


def web_router(engine: LocalEngine) -> APIRouter:
    router = APIRouter(dependencies=[Depends(authorize)], include_in_schema=False)

    ended: dict[int, so_status.Progress] = {}   # the progress of runs that ended, which no longer changes

    @router.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return _html(runs_page(engine, ended))

    pages = _EndedPages()

    @router.get("/ui/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: Annotated[int, Path(ge=1, le=1 << 62)]) -> HTMLResponse:
        info = engine.run(run_id)
        live = info.effective_status == "running" or engine.driving(run_id)
        if live or info.status in RESUMABLE:
            return _html(run_view(info, engine.events(run_id), live=live))
        return _html(pages.page(info, lambda: run_view(info, engine.events(run_id), live=False)))

    return router


class _EndedPages:
    """The pages of runs that ended for good (not resumable: nothing adds to them), the last
    KEPT_PAGES viewed, each made once: the page of an ended run of 63,000 events was made from them
    all at every view (5.5 s and 80 MB each; eight views at once held `GET /v1/runs` 18 s). One is
    made at a time: views of the same run wait for the first's page."""

    def __init__(self) -> None:
        self._kept: OrderedDict[int, tuple[tuple[str, float], Page]] = OrderedDict()
        self._lock = threading.Lock()
        self._making = threading.Lock()

    def page(self, info: RunInfo, make: Callable[[], Page]) -> Page:
        key = (info.status, info.updated)   # (a row written since, superseded or rolled back: made again)
        if (kept := self._kept_page(info.id, key)) is not None:
            return kept
        with self._making:
            if (kept := self._kept_page(info.id, key)) is not None:   # (made by the view before)
                return kept
            page = make()
            with self._lock:
                self._kept[info.id] = (key, page)
                self._kept.move_to_end(info.id)
                while len(self._kept) > KEPT_PAGES:
                    self._kept.popitem(last=False)
            return page

    def _kept_page(self, run_id: int, key: tuple[str, float]) -> Page | None:
        with self._lock:
            kept = self._kept.get(run_id)
            if kept is None or kept[0] != key:
                return None
            self._kept.move_to_end(run_id)
            return kept[1]


class Page(str):
    """A page's HTML, and the text of the one script it was made with (``_page``): what its policy lets
    run, whatever else the HTML holds."""

    script: str = ""


def _html(body: Page) -> HTMLResponse:
    """The page, with a policy that lets the browser run only the page's own script, by its digest
    (a script or handler someone else's text brought in would not run, were one ever let through
    ``escape``), and no other site frame it."""
    own = body.script if isinstance(body, Page) else ""
    scripts = f"'sha256-{base64.b64encode(hashlib.sha256(own.encode()).digest()).decode()}'" if own else "'none'"
    return HTMLResponse(body, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": f"default-src 'self'; style-src 'unsafe-inline'; script-src {scripts}; "
                                   "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"})



# --- the list of runs ---------------------------------------------------------------------

def runs_page(engine: LocalEngine, ended: dict[int, so_status.Progress]) -> Page:
    """The list of runs, the last LIST_LIMIT. Each one's progress from the few events SO's answers
    read (every event of 200 runs, their plans whole, was read at each refresh: 1.5 s for ten runs of
    400 resources), and once only for a run that ended (``ended``: kept here)."""
    rows = []
    runs, total = engine.runs_page(None, 0, LIST_LIMIT)   # (a page: the whole history was read at each refresh)
    for gone in set(ended) - {info.id for info in runs}:   # (those shown no more; it was cleared whole, and the
        ended.pop(gone, None)                              # next refresh read 200 runs' plans again; another
        # refresh may take it out at the same time)
    for info in runs:
        prog = ended.get(info.id)
        if prog is None:
            prog = so_status.progress(so_status.read_events(engine, info.id))
            if info.status not in RESUMABLE:
                ended[info.id] = prog
        state = info.effective_status
        pct = 100 if state == "complete" else (prog.done * 100 // prog.total if prog.total else 0)
        so = info.options.get("so") if isinstance(info.options.get("so"), dict) else {}
        who = info.options.get("principal") or "ordo apply"
        rows.append(
            f'<tr><td><a href="/ui/runs/{info.id}">{info.id}</a></td>'
            f'<td><span class="state {_cls(state)}">{escape(state)}</span></td>'
            f'<td><div class="bar"><div style="width:{pct}%"></div></div>'
            f'<small>{prog.done}/{prog.total}{_replans(prog.plan)}</small></td>'
            f'<td>{escape(str(info.request))}</td>'
            f'<td>{escape(str(so.get("request_id") or ""))}</td>'
            f'<td>{escape(str(who))}</td><td>{_when(info.created)}</td></tr>')
    more = f"<p>{total - LIST_LIMIT} older runs not shown.</p>" if total > LIST_LIMIT else ""
    table = ("<table><thead><tr><th>run</th><th>state</th><th>progress</th><th>request</th>"
             "<th>SO request</th><th>by</th><th>started</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>") if rows else "<p>No runs yet.</p>"
    return _page("ordo: runs", f"<h1>Runs</h1>{table}{more}", refresh=True)


def _replans(number: int) -> str:
    return f" · plan {number}" if number > 1 else ""


# --- one run --------------------------------------------------------------------------------

def current_plan(events: list[Event]) -> tuple[dict[str, Any] | None, int]:
    """The run's current plan (the last plan or re-plan event's) and that event's seq."""
    for ev in reversed(events):
        if ev.kind in ("plan", "replan") and ev.data.get("plan"):
            plan = ev.data["plan"]
            try:
                plan = json.loads(plan) if isinstance(plan, str) else plan
            except ValueError:
                return None, ev.seq
            return (plan if isinstance(plan, dict) else None), ev.seq
    return None, 0


def op_states(events: list[Event], since: int) -> dict[str, str]:
    """Each operation's look from the events after its plan's (seq ``since``)."""
    states: dict[str, str] = {}
    for ev in events:
        if ev.seq > since and ev.op and ev.kind in _KIND_STATE:
            states[ev.op] = _KIND_STATE[ev.kind]
    return states


def run_view(info: RunInfo, events: list[Event], *, live: bool) -> Page:
    plan, plan_seq = current_plan(events)
    states = op_states(events, plan_seq)
    last = events[-1].seq if events else 0
    state = info.effective_status
    ops = plan.get("operations") if plan else None
    if not ops:
        graph = "<p>No plan (yet).</p>"
    elif isinstance(ops, list) and len(ops) > MAX_DRAWN:
        graph = waves_table(plan, states)
    else:
        graph = plan_svg(plan, states)
    prog = so_status.progress(events)
    head = (f'<p><a href="/">&larr; runs</a></p><h1>Run {info.id}</h1>'
            f'<p><span id="run-state" class="state {_cls(state)}">{escape(state)}</span> '
            f'{escape(str(info.request))} · started {_when(info.created)} · '
            f'<span id="progress">{prog.done}/{prog.total}</span> operations of plan {prog.plan or "-"}'
            f'{LIVE_NOTE if live else ""}</p>')
    reason = (info.summary or {}).get("reason")
    # (a run resumed keeps its last stop's reason while it runs again, or once it crashed: not its own)
    why = f'<p class="reason">{escape(str(reason))}</p>' if reason and state != "complete" \
        and info.summary_is_current else ""
    legend = "".join(f'<span class="key {s}">{s}</span>' for s in OP_STATES)
    body = (head + why + _explanation(events) + f'<h2>Plan</h2><div class="legend">{legend}</div>'
            f'<div class="graph">{graph}</div>' + _replan_list(events) + _failures(events, info.id))
    script = _SCRIPT.replace("%RUN%", str(info.id)).replace("%SINCE%", str(last)).replace(
        "%PLANSEQ%", str(plan_seq)).replace("%DONE%", str(prog.done)).replace("%TOTAL%", str(prog.total)) \
        if live else ""
    return _page(f"ordo: run {info.id}", body, script=script)


def plan_svg(plan: dict[str, Any], states: dict[str, str]) -> str:
    """The plan as SVG: one column per wave, left to right, and an arrow per dependency."""
    ops, waves = _waves(plan)
    where: dict[str, tuple[int, int]] = {}
    for col, wave in enumerate(waves):
        for row, oid in enumerate(wave):
            where[oid] = (PAD + col * (NODE_W + COL_GAP), PAD + 20 + row * (NODE_H + ROW_GAP))
    width = PAD * 2 + max(1, len(waves)) * (NODE_W + COL_GAP) - COL_GAP
    height = PAD * 2 + 20 + max((len(w) for w in waves), default=1) * (NODE_H + ROW_GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="plan" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="the plan as a graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a6"/></marker></defs>']
    for col in range(len(waves)):
        parts.append(f'<text class="wave" x="{PAD + col * (NODE_W + COL_GAP) + NODE_W // 2}" y="{PAD}">'
                     f'wave {col + 1}</text>')
    for edge in plan.get("edges") or []:
        if not isinstance(edge, dict) or str(edge.get("before")) not in where or str(edge.get("after")) not in where:
            continue
        (x1, y1), (x2, y2) = where[str(edge["before"])], where[str(edge["after"])]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H // 2, y2 + NODE_H // 2
        mid = (x1 + x2) // 2
        rules = ", ".join(str(r) for r in edge.get("rules") or [])
        parts.append(f'<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" '
                     f'marker-end="url(#arrow)"><title>{escape(rules)}</title></path>')
    for index, (oid, (x, y)) in enumerate(sorted(where.items(), key=lambda kv: (kv[1][0], kv[1][1]))):
        op = ops[oid]
        look = states.get(oid, "pending")
        title = (f"{oid}: {op.get('resource')} {op.get('operation')} ({op.get('from_state')} -> "
                 f"{op.get('to_state')}) on {op.get('controller')}, ~{op.get('duration')}s\n{op.get('reason') or ''}")
        what = f"{op.get('operation')} → {op.get('to_state')}"
        parts.append(
            f'<g class="op {look}" id="op-{index}" data-op="{escape(oid)}" transform="translate({x},{y})">'
            f'<title>{escape(title)}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="8"/>'
            f'<text class="name" x="10" y="20">{escape(_short(str(op.get("resource"))))}</text>'
            f'<text class="what" x="10" y="38">{escape(_short(what))}'
            f'</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _waves(plan: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]]]:
    """The plan's operations by id, and its waves of their ids (those in no wave last, as one more)."""
    ops = {str(op.get("id")): op for op in plan.get("operations") or [] if isinstance(op, dict)}
    waves = [[str(o) for o in wave if str(o) in ops] for wave in plan.get("waves") or [] if isinstance(wave, list)]
    leftover = sorted(set(ops) - {o for wave in waves for o in wave})
    if leftover:
        waves.append(leftover)
    return ops, waves


def waves_table(plan: dict[str, Any], states: dict[str, str]) -> str:
    """A plan too large to draw: each wave's operations counted by look."""
    ops, waves = _waves(plan)
    rows = []
    for number, wave in enumerate(waves, 1):
        counts = dict.fromkeys(OP_STATES, 0)
        for oid in wave:
            counts[states.get(oid, "pending")] += 1
        rows.append(f"<tr><td>{number}</td><td>{len(wave)}</td>"
                    + "".join(f"<td>{counts[look]}</td>" for look in OP_STATES) + "</tr>")
    head = "".join(f"<th>{look}</th>" for look in OP_STATES)
    return (f'<p id="not-drawn">{len(ops):,} operations: more than {MAX_DRAWN:,} are not drawn; the waves as they '
            f"stood when the page was made.</p><table><thead><tr><th>wave</th><th>operations</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"


def _replan_list(events: list[Event]) -> str:
    items = [f"<li>plan {escape(str(ev.data.get('number')))} ({escape(str(ev.data.get('mode') or 'forward'))}): "
             f"{escape(str(ev.data.get('reason') or ''))}</li>" for ev in events if ev.kind == "replan"]
    return f'<h2>Re-plans</h2><ul id="replans">{"".join(items)}</ul>' if items else ""


#: How many of a run's failures and retries its page lists (the last ones).
FAILURES_SHOWN = 50


def _failures(events: list[Event], run_id: int) -> str:
    seen = [ev for ev in events if ev.kind in ("failed", "retry", "guard-denied")]
    if not seen:
        return ""
    items = [f"<li><code>{escape(str(ev.op))}</code> ({escape(ev.kind)}): {escape(str(ev.data.get('error') or ''))}"
             "</li>" for ev in seen[-FAILURES_SHOWN:]]
    events_url = f"/v1/runs/{run_id}/events"
    more = (f'<p class="more">The last {FAILURES_SHOWN} of {len(seen)}; every event of the run: '
            f'<a href="{events_url}">{events_url}</a>.</p>') if len(seen) > FAILURES_SHOWN else ""
    return f'<h2>Failures and retries</h2>{more}<ul>{"".join(items)}</ul>'


def _explanation(events: list[Event]) -> str:
    """On fallout: why no plan exists, each conflicting policy at file:line with its resources."""
    ev = next((e for e in reversed(events) if e.kind == "no-plan"), None)
    data = ev.data.get("explanation") if ev else None
    if not isinstance(data, dict):
        return ""
    rows = []
    for c in data.get("conflicts") or []:
        if isinstance(c, dict):
            rows.append(f"<li><b>{escape(str(c.get('policy')))}</b> at <code>{escape(str(c.get('file')))}:"
                        f"{escape(str(c.get('line')))}</code>: {escape(str(c.get('description') or ''))} "
                        f"<i>on {escape(', '.join(str(r) for r in c.get('resources') or []))}</i></li>")
    return (f'<div class="fallout" id="explanation"><h2>Why no plan exists</h2>'
            f'<p>{escape(str(data.get("summary") or ev.data.get("reason") or ""))}</p><ul>{"".join(rows)}</ul></div>')


def _cls(state: str) -> str:
    return state if state.replace("_", "").isalpha() else "unknown"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _page(title: str, body: str, *, script: str = "", refresh: bool = False) -> Page:
    """``script``: the text of the page's script, without its tags."""
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    # (an icon of its own, none: a browser asks for /favicon.ico otherwise)
    page = Page(f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<link rel="icon" href="data:,">'
                f'<title>{escape(title)}</title>'
                f"<style>{_STYLE}</style></head><body>{body}"
                f"{'<script>' + script + '</script>' if script else ''}</body></html>")
    page.script = script
    return page


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px 32px;color:#1f2933;background:#f7f8fa}
h1{font-size:22px;margin:0 0 8px}h2{font-size:16px;margin:22px 0 8px}a{color:#2563eb}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0001}
th,td{padding:7px 12px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:middle}
th{background:#f1f3f6;font-weight:600}
.bar{display:inline-block;width:90px;height:8px;background:#e5e7eb;border-radius:4px;margin-right:6px;overflow:hidden}
.bar div{height:100%;background:#16a34a}
.state{padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e5e7eb}
.state.running,.state.crashed,.state.interrupted{background:#dbeafe;color:#1d4ed8}
.state.complete{background:#dcfce7;color:#166534}
.state.fallout,.state.failed,.state.aborted{background:#fee2e2;color:#991b1b}
.graph{background:#fff;box-shadow:0 1px 2px #0001;overflow:auto;padding:4px;border-radius:6px}
.wave{font-size:12px;fill:#6b7280;text-anchor:middle}
.edge{fill:none;stroke:#8a94a6;stroke-width:1.4}
.op rect{fill:#f3f4f6;stroke:#9ca3af;stroke-width:1.5}
.op text{font-size:12px;fill:#1f2933}.op .name{font-weight:600}.op .what{fill:#4b5563}
.op.running rect{fill:#dbeafe;stroke:#2563eb;stroke-width:2.5}
.op.waiting rect{fill:#fef9c3;stroke:#ca8a04;stroke-width:2.5}
.op.done rect{fill:#dcfce7;stroke:#16a34a}
.op.failed rect{fill:#fee2e2;stroke:#dc2626;stroke-width:2.5}
.op.retried rect{fill:#ffedd5;stroke:#ea580c;stroke-width:2.5}
.legend{margin:0 0 8px}.key{display:inline-block;margin-right:10px;padding:1px 8px;border-radius:4px;
border:1.5px solid #9ca3af;background:#f3f4f6;font-size:12px}
.key.running{background:#dbeafe;border-color:#2563eb}.key.waiting{background:#fef9c3;border-color:#ca8a04}.key.done{background:#dcfce7;border-color:#16a34a}
.key.failed{background:#fee2e2;border-color:#dc2626}.key.retried{background:#ffedd5;border-color:#ea580c}
.fallout{background:#fff5f5;border:1px solid #fecaca;border-radius:6px;padding:4px 16px}
.reason{color:#991b1b}.live{color:#92400e}code{background:#f1f3f6;padding:0 3px;border-radius:3px}
"""

# Follows the run's events after the ones drawn (Last-Event-ID carries on after a reconnect);
# it only sets classes and text, never HTML. A new plan, or the end, reloads the page.
#: Where a live page says its updates stopped or are being reconnected (the page's script).
LIVE_NOTE = ' <span id="live" class="live"></span>'

_SCRIPT = """
(function () {
  var looks = %LOOKS%;
  var nodes = {};
  document.querySelectorAll("g.op").forEach(function (g) { nodes[g.getAttribute("data-op")] = g; });
  var drawn = Object.keys(nodes).length > 0;   // else a plan too large to draw: only the count goes on
  var done = %DONE%;
  var counted = {};   // (a plan too large to draw: the operations counted done since the page was made)
  var total = %TOTAL%;
  var live = document.getElementById("live");
  function note(text) { if (live) { live.textContent = text; } }
  // (reloaded once the server answers: one going away, as the end of an interrupted run tells, left the
  // tab on the browser's error page)
  function reloadWhenUp() {
    function later() { note("the server does not answer: waiting for it"); setTimeout(reloadWhenUp, 2000); }
    fetch("/healthz", {cache: "no-store"}).then(function (r) { if (r.ok) { location.reload(); } else { later(); } },
                                                later);
  }
  var source = new EventSource("/v1/runs/%RUN%/events?since=%SINCE%");
  // A stream refused (503: the most streams are open) is given up by the browser: the page said "running"
  // for good, nothing told (a web sweep's). Said, and tried again; a stream cut is reconnected by the browser.
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      note("live updates stopped: the server refused them; trying again in 5 s");
      setTimeout(reloadWhenUp, 5000);
    } else {
      note("live updates lost: reconnecting");
    }
  };
  source.onopen = function () { note(""); };
  function look(ev) {
    var data = JSON.parse(ev.data);
    if (data.seq <= %PLANSEQ%) { return; }
    if (ev.type === "replan" || ev.type === "run-ended") { source.close(); reloadWhenUp(); return; }
    var g = nodes[data.op];
    if (drawn && !g) { return; }
    var was = g ? g.classList.contains("done") : counted[data.op] === 1;
    if (g) { g.setAttribute("class", "op " + looks[ev.type]); }
    if (looks[ev.type] === "done" && !was) { done += 1; counted[data.op] = 1; }
    document.getElementById("progress").textContent = done + "/" + total;
  }
  Object.keys(looks).concat(["replan", "run-ended"]).forEach(function (kind) {
    source.addEventListener(kind, look);
  });
})();
""".replace("%LOOKS%", json.dumps(_KIND_STATE, sort_keys=True))
