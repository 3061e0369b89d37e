"""The event stream end to end (issue 16, point 5): resuming with Last-Event-ID gives exactly
the events missed, in order; writers whose transactions commit out of order are neither
missed nor repeated by a follower that keeps leaving and coming back; a cursor older than
retention is 410; while nothing happens, web runs no query on the events table (Postgres's
statement log); the page list pages by the same cursor."""
from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from psycopg.types.json import Jsonb

from tests.support.sse import SseReader, data
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"


def stream(platform, last: str | None = None, **params) -> SseReader:
    headers = {"Last-Event-ID": last} if last else {}
    reader = SseReader(f"{platform.url}/api/events/stream", platform.admin_token,
                       params=params, headers=headers)
    assert reader.status == 200, reader.response.text
    return reader


def take(reader: SseReader, count: int, timeout: float = 90) -> list[dict]:
    """The next ``count`` events, each as its JSON with its SSE id."""
    seen = []

    def enough(event) -> bool:
        seen.append(event)
        return len(seen) >= count
    reader.until(enough, timeout, f"{count} events")
    return [{**data(e), "sse_id": e.id} for e in seen]


def test_reconnecting_with_last_event_id_gives_exactly_the_missed_events(api, platform):
    name = f"evs-{uuid.uuid4().hex[:6]}"
    reader = stream(platform, container=name)
    api.job(api.post("/api/containers", json={"image": HTTPD, "name": name, "node": "local"}))
    first = take(reader, 1)
    reader.close()
    last = first[-1]["sse_id"]
    assert last == str(first[-1]["cursor"])
    # things happen while the client is away
    api.job(api.post(f"/api/containers/{name}/stop", params={"timeout": 1}))
    api.job(api.post(f"/api/containers/{name}/start"))
    api.job(api.post(f"/api/containers/{name}/pause"))
    missed = wait_until(lambda: missed_since(api, name, last), 30, "the missed events listed")
    again = stream(platform, last=last, container=name)
    got = take(again, len(missed))
    again.close()
    assert [e["cursor"] for e in got] == [e["cursor"] for e in missed]
    assert [e["kind"] for e in got] == [e["kind"] for e in missed]
    print(f"missed and received again: {[e['kind'] for e in got]}")
    api.delete(f"/api/containers/{name}", params={"force": "true", "wait": 30})


def missed_since(api, name: str, cursor: str) -> list[dict] | None:
    """The container's events after ``cursor`` once the pause is among them."""
    items = api.get("/api/events", params={"container": name, "cursor": cursor,
                                           "limit": 1000}).json()["items"]
    return items if any(e["kind"] == "pause" for e in items) else None


def insert(conn: psycopg.Connection, kind: str, n: int) -> int:
    return conn.execute("INSERT INTO events (kind, detail) VALUES (%s, %s) RETURNING id",
                        (kind, Jsonb({"n": n}))).fetchone()[0]


def test_writers_committing_out_of_order_are_neither_missed_nor_repeated(platform):
    kind = f"test_order_{uuid.uuid4().hex[:6]}"
    url = platform.env["DATABASE_URL"]
    reader = stream(platform, kind=kind)
    # an id would get this wrong: A inserts first, B commits first
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        id_a = insert(a, kind, 0)
        id_b = insert(b, kind, 1)
        b.commit()
        (seen_b,) = take(reader, 1)
        reader.close()
        a.commit()
    assert seen_b["detail"] == {"n": 1} and id_a < id_b
    resumed = stream(platform, last=seen_b["sse_id"], kind=kind)
    (seen_a,) = take(resumed, 1)
    resumed.close()
    assert seen_a["detail"] == {"n": 0} and seen_a["cursor"] > seen_b["cursor"]
    # then many writers at once, each transaction held a random while before its commit,
    # and a follower that leaves every few events and resumes after the last it saw
    total, got, last = 60, [seen_b, seen_a], seen_a["sse_id"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        writers = [pool.submit(write_slowly, url, kind, n) for n in range(2, total)]
        while len(got) < total:
            follower = stream(platform, last=last, kind=kind)
            try:
                got += take(follower, min(random.randint(3, 9), total - len(got)), 120)
            finally:
                follower.close()
            last = got[-1]["sse_id"]
        ids = [w.result() for w in writers]   # a writer that failed fails the test
    numbers = [e["detail"]["n"] for e in got]
    assert sorted(numbers) == list(range(total)), numbers          # none missed or repeated
    cursors = [e["cursor"] for e in got]
    assert cursors == sorted(cursors) and len(set(cursors)) == total
    by_n = dict(zip(range(2, total), ids))
    inversions = sum(1 for x, y in zip(got[2:], got[3:])
                     if by_n[x["detail"]["n"]] > by_n[y["detail"]["n"]])
    print(f"{total} events from concurrent writers; {inversions} commit-order neighbours "
          "whose ids are the other way round")
    # no more than the total arrives: a last stream from the last cursor stays quiet
    extra = stream(platform, last=last, kind=kind)
    with pytest.raises(AssertionError, match="no event within"):
        extra.next(3)
    extra.close()


def write_slowly(url: str, kind: str, n: int) -> int:
    with psycopg.connect(url) as conn:
        event_id = insert(conn, kind, n)
        time.sleep(random.uniform(0, 0.4))
        conn.commit()
    return event_id


def test_a_cursor_older_than_retention_is_gone(platform, api):
    kind = f"test_old_{uuid.uuid4().hex[:6]}"
    cursor = platform.sql("INSERT INTO events (kind, at) VALUES (%s, now() - interval '400 days')"
                          " RETURNING id", (kind,))
    wait_until(lambda: not platform.sql("SELECT 1 FROM events WHERE kind = %s", (kind,)), 60,
               "cleanup removed the event past retention")
    pruned = platform.sql("SELECT pruned_through FROM event_horizon")[0][0]
    assert pruned >= 1 and cursor
    for headers, params in (({"Last-Event-ID": str(pruned - 1)}, {}),
                            ({}, {"after": pruned - 1})):
        gone = api.get("/api/events/stream", headers=headers, params=params)
        assert gone.status_code == 410, gone.text
        assert "retention" in gone.json()["detail"]
    ok = stream(platform, last=str(pruned))
    ok.close()
    never = api.get("/api/events/stream", headers={"Last-Event-ID": "999999999"})
    assert never.status_code == 410 and "never given" in never.json()["detail"]


def test_the_list_pages_in_commit_order_by_cursor(api, platform):
    kind = f"test_page_{uuid.uuid4().hex[:6]}"
    for n in range(5):
        platform.sql("INSERT INTO events (kind, detail) VALUES (%s, %s)", (kind, Jsonb({"n": n})))
    first = api.get("/api/events", params={"kind": kind, "limit": 3}).json()
    rest = api.get("/api/events", params={"kind": kind, "limit": 3,
                                          "cursor": first["next"]}).json()
    assert first["next"] == str(first["items"][-1]["cursor"]) and rest["next"] is None
    assert [e["detail"]["n"] for e in first["items"] + rest["items"]] == [0, 1, 2, 3, 4]


def test_idle_streams_run_no_query_on_the_events_table(platform, api):
    """With streams open and nothing happening for 30 s, web runs no statement that names
    the events table (every statement web's connections run is logged meanwhile)."""
    readers = [stream(platform), stream(platform, kind="die")]
    try:
        for attempt in range(4):
            quiet, statements = logged_window(platform, api, 30)
            if quiet:
                break
            print(f"attempt {attempt}: events were written meanwhile; the window is not idle")
        assert quiet, "no idle 30 s window in four tries"
        mine = [s for s in statements if "harbormaster-web" in s]
        print(f"{len(mine)} statements from web in 30 s idle, e.g. {mine[:3]}")
        # the log does catch web's queries: the listing's, on the containers table
        assert any("from containers" in s.lower() for s in mine), mine
        assert not [s for s in mine if "events" in s.lower()], mine
    finally:
        for reader in readers:
            reader.close()


def logged_window(platform, api, seconds: float) -> tuple[bool, list[str]]:
    """(whether no event was written, the statements logged) over ``seconds``."""
    log_file = platform.service_logs()["postgres"]   # the embedded server's log
    platform.sql("ALTER SYSTEM SET log_statement = 'all'")
    platform.sql("ALTER SYSTEM SET log_line_prefix = '%%m [%%p] app=%%a '")
    platform.sql("SELECT pg_reload_conf()")
    try:
        before = platform.sql("SELECT COALESCE(max(cursor), 0) FROM events")[0][0]
        offset = log_file.stat().st_size
        # a request through web that reads another table: the log catches web's statements
        assert api.get("/api/containers").status_code == 200
        time.sleep(seconds)
        after = platform.sql("SELECT COALESCE(max(cursor), 0) FROM events")[0][0]
    finally:
        platform.sql("ALTER SYSTEM RESET log_statement")
        platform.sql("ALTER SYSTEM RESET log_line_prefix")
        platform.sql("SELECT pg_reload_conf()")
    with open(log_file, errors="replace") as log:
        log.seek(offset)
        # simple statements log as "statement:", parameterised ones as "execute <name>:"
        lines = [line for line in log.read().splitlines()
                 if "LOG:  statement:" in line or "LOG:  execute" in line]
    return before == after, lines


def test_an_idle_stream_sends_a_heartbeat_comment(platform):
    """A comment every HARBORMASTER_STREAM_HEARTBEAT seconds (15; 1 on this extra web
    process) while nothing matches: proxies and the server see the connection live."""
    with platform.extra_web("heartbeat", HARBORMASTER_STREAM_HEARTBEAT="1") as url:
        r = requests.get(f"{url}/api/events/stream", params={"kind": "never-happens"},
                         headers={"Authorization": f"Bearer {platform.admin_token}"},
                         stream=True, timeout=(10, 60))
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
        seen = b""
        started = time.monotonic()
        for chunk in r.iter_content(None):
            seen += chunk
            if seen.count(b": heartbeat") >= 2:
                break
        r.close()
        print(f"two heartbeats in {time.monotonic() - started:.1f}s: {seen[:120]!r}")
        assert seen.startswith(b"retry: 2000\n: events after ")
        assert b"data:" not in seen
