"""The web page in a real browser: Debian's chromium, headless, driven by Playwright, against a real
`ordo serve` process running the vFW on simulated controllers slow enough to watch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_server
from tests.servicekit import INSTANTIATE, free_port, process_server, thread_server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    require_server("Chromium", CHROMIUM.exists(), "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server(vfw_copy: Path, tmp_path: Path):
    port = free_port()
    proc = process_server(vfw_copy, port, tmp_path / "serve.log", latency=0.6)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:  # noqa: BLE001 - then it is killed
            proc.kill()
            proc.wait(10)


def first_plan(api: httpx.Client, run: int) -> dict:
    """The run's plan, from its events (read only as far as the plan, while the run goes on)."""
    with api.stream("GET", f"/v1/runs/{run}/events") as response:
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "plan":
                return json.loads(json.loads(line[6:])["plan"])
    raise AssertionError("no plan event")


def test_the_plan_graph_turns_from_running_to_done_live(browser, server: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=server, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        operations = first_plan(api, run)["operations"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    failed: list[str] = []   # every answer of 400 or more the page met
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    answer = page.goto(f"{server}/ui/runs/{run}")
    nodes = page.locator("svg#plan g.op")
    assert nodes.count() == len(operations) > 3
    # only the page's own script runs (by its digest: it follows the run below); one put in later does not
    policy = answer.headers["content-security-policy"] if answer is not None else ""
    assert "script-src 'sha256-" in policy and "unsafe-inline' img" not in policy and "frame-ancestors 'none'" in policy
    assert page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.put = 1';
                                    document.body.appendChild(s); return window.put === undefined; }""")
    assert sorted(nodes.evaluate_all("gs => gs.map(g => g.getAttribute('data-op'))")) == sorted(
        op["id"] for op in operations)
    # one operation seen running, then the same one done, while the page stays open (events over SSE)
    page.wait_for_selector("svg#plan g.op.running", timeout=60_000)
    watched = page.locator("svg#plan g.op.running").first.get_attribute("data-op")
    node = page.locator(f'svg#plan g.op[data-op="{watched}"]')
    page.wait_for_function("g => g.classList.contains('done')", arg=node.element_handle(), timeout=60_000)
    shot = tmp_path / "run-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    page.wait_for_selector("#run-state.complete", timeout=120_000)  # the end reloads the page
    assert page.locator("svg#plan g.op.done").count() == len(operations)
    page.screenshot(path=str(tmp_path / "run-page-complete.png"), full_page=True)
    page.goto(f"{server}/")
    assert re.search(rf"\b{run}\b", page.locator("table").inner_text())
    assert failed == []
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    print(f"screenshots: {tmp_path}")


def test_a_page_whose_stream_is_refused_says_so_and_tries_again(browser, vfw_copy: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream refused (503: the most streams were open) was given up by the browser: the page said
    "running" for good, its counts frozen, nothing told (a web sweep's). It says so, and tries again."""
    import service.app

    with thread_server(vfw_copy, latency=0.1) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        monkeypatch.setattr(service.app, "MOST_STREAMS", 0)
        page = browser.new_page()
        page.goto(f"{url}/ui/runs/{run}")
        page.wait_for_function("() => document.getElementById('live').textContent.includes('stopped')",
                               timeout=30_000)
        assert "live updates stopped: the server refused them; trying again in 5 s" in page.inner_text("#live")
        monkeypatch.setattr(service.app, "MOST_STREAMS", 100)   # (the streams in the way gone)
        page.wait_for_selector("#run-state.complete", timeout=90_000)   # (the page tried again, and followed)


def test_a_browser_is_asked_for_a_password_where_tokens_are_needed(browser, vfw_copy: Path, tmp_path: Path) -> None:
    """With credentials configured, a browser given a name and a token as password (HTTP basic, which it
    sends only when the server's challenge asks for Basic first) sees the pages; without, 401."""
    tokens = tmp_path / "tokens"
    tokens.write_text("rd-0c9e8b7a6f5d4c3b reader dashboard\n")
    with thread_server(vfw_copy, tokens=tokens) as url:
        context = browser.new_context(http_credentials={"username": "dashboard", "password": "rd-0c9e8b7a6f5d4c3b"})
        try:
            page = context.new_page()
            assert page.goto(f"{url}/").status == 200
            assert page.locator("table, p").count() > 0
        finally:
            context.close()
        refused = httpx.get(f"{url}/", timeout=30)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic ")


def test_names_and_reasons_cannot_inject_html(vfw_copy: Path) -> None:
    """Untrusted text (a request's name, a reason) is shown as text, never as markup."""
    hostile = {**INSTANTIATE, "name": '<img src=x onerror="alert(1)"><script>alert(2)</script>'}
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        accepted = api.post("/v1/runs", json={"request": hostile})
        assert accepted.status_code == 202, accepted.text
        run = accepted.json()["id"]
        for path in ("/", f"/ui/runs/{run}"):
            page = api.get(path).text
            assert "<img src=x" not in page and "<script>alert" not in page
            assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
            # an icon of its own (none): a browser asked for /favicon.ico, a 404 in every log
            assert '<link rel="icon" href="data:,">' in page
        assert api.get("/ui/runs/999").status_code == 404


def test_a_reason_journaled_unmasked_is_masked_on_the_run_page(vfw_copy: Path) -> None:
    """A journal written before redaction (or a secret this server's environment knows) held a run's
    reason unmasked: `ordo show` and REST masked it again on the way out, the web page and SO's status
    message showed it (a layering review's). The engine masks what it reads of runs, for all of them."""
    import json
    import sqlite3

    from tests.conftest import run_ordo

    assert run_ordo("apply", "-C", vfw_copy, "--auto-approve").code == 0
    with sqlite3.connect(vfw_copy / ".ordo" / "journal.db") as db:
        summary = json.loads(db.execute("SELECT summary FROM runs WHERE id=1").fetchone()[0])
        summary["reason"] = "the controller said: Authorization: Bearer abcdef123456 password=hunter2"
        summary["status"] = "failed"   # (as a failed run's own summary says)
        db.execute("UPDATE runs SET status='failed', summary=? WHERE id=1", (json.dumps(summary),))
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        page, view = api.get("/ui/runs/1").text, api.get("/v1/runs/1").text
    assert "the controller said" in page and "hunter2" not in page and "abcdef123456" not in page, page
    assert "hunter2" not in view and "abcdef123456" not in view, view


def test_a_plan_too_large_to_draw_is_shown_as_its_waves(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph of a 10,000-resource run (31,000 operations) was a page of 20 MB that no browser lays out;
    past MAX_DRAWN operations the page shows each wave's operations counted by look."""
    from service import web
    from tests.servicekit import wait_state

    monkeypatch.setattr(web, "MAX_DRAWN", 3)
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        wait_state(api, run, ("complete",))
        operations = first_plan(api, run)["operations"]
        page = api.get(f"/ui/runs/{run}").text
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="plan"' not in page
    assert f"{len(operations)} operations: more than 3 are not drawn" in page
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>" + r"<td>(\d+)</td>" * len(web.OP_STATES), page)
    done = 2 + web.OP_STATES.index("done")
    assert sum(int(r[1]) for r in rows) == len(operations) == sum(int(r[done]) for r in rows)   # all done
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))


def test_the_list_of_runs_reads_a_few_events_of_each_and_an_ended_runs_once(vfw_copy: Path) -> None:
    """The list read every event of its 200 runs, their plans whole, at every refresh (1.5 s for ten
    runs of 400 resources: the fourth sweep). It reads what SO's answers read, and a run that ended
    once."""
    import time

    from service.engine import LocalEngine, Submission
    from service.web import runs_page

    engine = LocalEngine(vfw_copy)
    engine.start()
    try:
        run = engine.submit(Submission(), "test").run
        deadline = time.monotonic() + 60
        while engine.driving(run) and time.monotonic() < deadline:
            time.sleep(0.05)
        total = sum(1 for ev in engine.events(run) if ev.kind == "result")
        reads: list[dict] = []
        real = engine.events
        engine.events = lambda run_id, **options: reads.append(options) or real(run_id, **options)  # type: ignore
        ended: dict = {}
        page = runs_page(engine, ended)
        assert f"{total}/{total}" in page and reads and all(r.get("kinds") == ("result",) for r in reads), reads
        reads.clear()
        assert runs_page(engine, ended) == page and reads == []
    finally:
        engine.shutdown(30)


def test_the_page_of_a_run_that_ended_is_made_once(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page of an ended run was made from all its events at every view (5.5 s and 80 MB at 63,000
    events: the scale sweep). A run that ended for good is read once (one that can go on, resumable, is
    read at each view, as before)."""
    from service.engine import LocalEngine
    from tests.servicekit import wait_state

    reads: list[int] = []
    real = LocalEngine.events

    def events(self, run_id, *args, **kwargs):
        if not args and not kwargs:   # (every event: what the run's page reads)
            reads.append(run_id)
        return real(self, run_id, *args, **kwargs)

    monkeypatch.setattr(LocalEngine, "events", events)
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        wait_state(api, run, ("complete",))
        reads.clear()
        pages = [api.get(f"/ui/runs/{run}").text for _ in range(3)]
        assert reads == [run] and pages[0] == pages[1] == pages[2] and "complete" in pages[0]
        assert api.post(f"/v1/runs/{run}/abort").status_code == 409   # (it ended: its page stands)
        assert api.get(f"/ui/runs/{run}").text == pages[0] and reads == [run]


def test_a_page_of_another_name_resolved_to_loopback_changes_nothing(server: str) -> None:
    """DNS rebinding: a page of another site whose name is resolved again to 127.0.0.1 once it has
    loaded is, to the browser, of this server's origin, so what the browser says of its origin lets
    it through. Without credentials every caller is an operator: such a page started runs (a sweep
    of the web view's). The server answers only requests addressed to a loopback name then."""
    require_server("Chromium", CHROMIUM.exists(), "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    port = server.rsplit(":", 1)[1]
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=[*ARGS, "--host-resolver-rules=MAP rebound.test 127.0.0.1"])
        try:
            page = chromium.new_page()
            first = page.goto(f"http://rebound.test:{port}/healthz")
            assert first is not None and first.status == 403 and "loopback" in page.content()
            said = page.evaluate("""async (request) => {
                const r = await fetch('/v1/runs', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                   body: JSON.stringify({request: request})});
                return [r.status, await r.text()]; }""", INSTANTIATE)
            assert said[0] == 403 and "loopback" in said[1], said
            assert page.evaluate("async () => (await fetch('/v1/state')).status") == 403
            # the same browser, by a loopback name: the web view as usual
            assert page.goto(f"http://localhost:{port}/") is not None and page.locator("h1").count() >= 1
        finally:
            chromium.close()
    with httpx.Client(base_url=server, timeout=60) as api:
        assert api.get("/v1/runs").json()["runs"] == []
        for host in ("localhost", f"localhost:{port}", "127.0.0.2:1", f"[::1]:{port}", "ordo.localhost"):
            assert api.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("rebound.test", f"127.0.0.1.nip.io:{port}", "[::2]", "localhost:x", "0.0.0.0", "127.0.0.1:"):
            refused = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Host": host})
            assert refused.status_code == 403, host
        so = api.get("/onap/so/infra/orchestrationRequests/v7", headers={"Host": "rebound.test"})
        assert so.status_code == 403 and "loopback" in so.json()["requestError"]["serviceException"]["text"]
        assert api.get("/v1/runs", headers={"X-Forwarded-Host": "rebound.test"}).status_code == 403


def test_the_policy_lets_only_the_pages_own_script_run(browser) -> None:
    """The policy named every <script> the page held by its digest, so one that text brought in past
    ``escape`` would have been let run too (a review's). It names the one script the page was made
    with: in chromium, that one runs and one in the body does not."""
    from service.web import _html, _page

    page = _page("t", '<p id="p">name: <script>window.injected = 1</script></p>', script="window.own = 1;")
    answer = _html(page)
    policy = answer.headers["content-security-policy"]
    assert policy.count("'sha256-") == 1 and "unsafe-inline' img" not in policy
    tab = browser.new_page()
    tab.route("http://page.test/", lambda route: route.fulfill(status=200, headers=dict(answer.headers),
                                                               body=bytes(answer.body)))
    tab.goto("http://page.test/")
    assert tab.evaluate("() => [window.own, window.injected === undefined]") == [1, True]
    assert "script-src 'none'" in _html(_page("t", "<script>x()</script>")).headers["content-security-policy"]


def test_a_run_with_more_failures_than_shown_says_how_many_and_where_the_rest_are() -> None:
    """The page listed the last 50 failures and retries of a run of hundreds as if they were all."""
    from executor.core.event import Event
    from service.web import FAILURES_SHOWN, _failures

    events = [Event("retry", op=f"create:net-{i}", data={"error": f"timeout {i}"}, seq=i, run=7) for i in range(120)]
    shown = _failures(events, 7)
    assert shown.count("<li>") == FAILURES_SHOWN and "timeout 119" in shown and "timeout 69<" not in shown
    assert f"The last {FAILURES_SHOWN} of 120" in shown and 'href="/v1/runs/7/events"' in shown
    few = _failures(events[:3], 7)
    assert few.count("<li>") == 3 and "The last" not in few
    assert _failures([Event("completed", op="create:net-1")], 7) == ""
