"""The journal's schema, by version, written once for every backend (the column types that
differ are the backend's ``types``: ``{id}`` a run's number, ``{serial}`` an event's sequence
number, ``{int}`` a 64-bit integer, ``{real}`` a time, ``{add_column}`` a column added, once however
many open a new journal at once).

A journal records its version (SQLite's ``user_version``, PostgreSQL's ``ordo_schema``
table). Opening one of an older version applies the missing steps in place, in one
transaction; one of a newer version is refused: it was written by a newer ordo.
"""

from __future__ import annotations

import re

#: The version this ordo writes and reads.
SCHEMA_VERSION = 5

#: Each version's steps, from the one before it. Statements are idempotent (IF NOT EXISTS).
MIGRATIONS: dict[int, str] = {
    # the events, and the runs and the state projected from them
    1: """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id {id},
    created {real} NOT NULL,
    updated {real} NOT NULL,
    project TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    host TEXT,
    options TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS events (
    seq {serial},
    run {int} NOT NULL REFERENCES runs(id),
    at {real} NOT NULL,
    kind TEXT NOT NULL,
    op TEXT,
    key TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run, seq);
CREATE TABLE IF NOT EXISTS state (
    resource TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    run {int} NOT NULL,
    seq {int} NOT NULL
);
""",
    # runs that hold some resources only (the service); version-1 journals may have the table already
    2: """
CREATE TABLE IF NOT EXISTS claims (
    run {int} NOT NULL REFERENCES runs(id),
    resource TEXT NOT NULL,
    PRIMARY KEY (resource, run)
);
CREATE INDEX IF NOT EXISTS claims_run ON claims(run);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
""",
    # runs side by side share the controllers' concurrency (leases on slots, which expire with their
    # holder), and the service finds a run by its idempotency key without reading every run
    3: """
CREATE TABLE IF NOT EXISTS slots (
    run {int} NOT NULL REFERENCES runs(id),
    op TEXT NOT NULL,
    controller TEXT NOT NULL,
    expires {real} NOT NULL,
    PRIMARY KEY (run, op)
);
CREATE INDEX IF NOT EXISTS slots_controller ON slots(controller);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    run {int} NOT NULL REFERENCES runs(id)
);
""",
    # the ids clients know a run by (the service's SO request ids: the request that started it, and
    # one more per resume requested), so that one is found without reading every run
    4: """
CREATE TABLE IF NOT EXISTS request_ids (
    id TEXT PRIMARY KEY,
    run {int} NOT NULL REFERENCES runs(id),
    original TEXT,
    at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS request_ids_run ON request_ids(run);
""",
    # the process that runs a run, told apart from another given its pid later by its boot and start
    # (the kernel's clock ticks since boot: a step of the wall clock does not move them)
    5: """
ALTER TABLE runs {add_column} owner TEXT;
""",
}


def steps(after: int, types: dict[str, str]) -> list[str]:
    """The statements that bring a journal of version ``after`` to :data:`SCHEMA_VERSION`."""
    out = []
    for version in range(after + 1, SCHEMA_VERSION + 1):
        text = MIGRATIONS[version].format(**types)
        out.extend(s.strip() for s in text.split(";") if s.strip())
    return out


#: The tables the migrations make (a store that holds one of these names but no ordo schema is another
#: program's: executor/store/postgres.py).
TABLES: tuple[str, ...] = tuple(dict.fromkeys(
    re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", "".join(MIGRATIONS.values()))))
