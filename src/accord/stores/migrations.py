"""Numbered schema migrations, shared by the SQL backends (dialect differences are marked).

Both backends keep one ``schema_version`` table and apply, in one transaction, every migration
whose number is above the highest recorded there. A migration is never edited once released
(stored databases already ran it): a change to the schema is a new, higher number.
"""

from __future__ import annotations

# Each entry is (number, statements). {blob}, {auto} and {json} are filled per dialect.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE definitions (
                key TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL,
                deployed_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE cases (
                id TEXT PRIMARY KEY, process TEXT NOT NULL, status TEXT NOT NULL,
                version INTEGER NOT NULL, state {blob} NOT NULL,
                started_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL, incident TEXT)""",
            "CREATE INDEX cases_status ON cases (status)",
            """CREATE TABLE events (
                pos {auto}, id TEXT NOT NULL UNIQUE, case_id TEXT NOT NULL,
                seq INTEGER NOT NULL, type TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
                process TEXT NOT NULL, step TEXT, team TEXT, actor TEXT, task TEXT,
                data {json} NOT NULL, causation TEXT, source TEXT NOT NULL)""",
            "CREATE UNIQUE INDEX events_case_seq ON events (case_id, seq)",
            """CREATE TABLE tasks (
                id TEXT PRIMARY KEY, case_id TEXT NOT NULL, process TEXT NOT NULL,
                step TEXT NOT NULL, kind TEXT NOT NULL, team TEXT, role TEXT,
                status TEXT NOT NULL, assignee TEXT, ready_at DOUBLE PRECISION NOT NULL,
                claimed_at DOUBLE PRECISION, attempt INTEGER NOT NULL, hub INTEGER NOT NULL)""",
            "CREATE INDEX tasks_team ON tasks (team, status, ready_at)",
            "CREATE INDEX tasks_assignee ON tasks (assignee, status)",
            "CREATE INDEX tasks_case ON tasks (case_id)",
            """CREATE TABLE timers (
                id TEXT PRIMARY KEY, case_id TEXT NOT NULL, due DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX timers_due ON timers (due)",
            """CREATE TABLE effects (
                key TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL, PRIMARY KEY (key, kind))""",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ],
    ),
]

MIGRATIONS.append(
    (
        2,
        [
            # Leases let several engine replicas (and workers) share one queue: a replica takes
            # a row for a while; when it dies, the lease runs out and another one takes over.
            "ALTER TABLE tasks ADD COLUMN lease_owner TEXT",
            "ALTER TABLE tasks ADD COLUMN lease_until DOUBLE PRECISION",
            "ALTER TABLE timers ADD COLUMN lease_owner TEXT",
            "ALTER TABLE timers ADD COLUMN lease_until DOUBLE PRECISION",
            # The automated-step queue: ready automated tasks, oldest first.
            """CREATE INDEX tasks_jobs ON tasks (ready_at)
                WHERE kind = 'automated' AND status = 'ready'""",
            # Every live engine replica and worker, for health checks and operators.
            """CREATE TABLE replicas (
                id TEXT PRIMARY KEY, role TEXT NOT NULL, host TEXT NOT NULL,
                pid INTEGER NOT NULL, started_at DOUBLE PRECISION NOT NULL,
                seen_at DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, info {json} NOT NULL)""",
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        [
            # People and programs of the web app and HTTP API (accord.web.accounts). Teams and
            # roles are JSON arrays kept as text; a user without a password logs in by token only.
            """CREATE TABLE users (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, password TEXT,
                teams TEXT NOT NULL, roles TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
            # Only hashes of session cookies and API tokens are kept: a copy of the database
            # does not let anyone in.
            """CREATE TABLE web_sessions (
                hash TEXT PRIMARY KEY, user_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX web_sessions_user ON web_sessions (user_id)",
            """CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
                name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                last_used_at DOUBLE PRECISION)""",
            "CREATE INDEX api_tokens_user ON api_tokens (user_id)",
            # who deployed each definition through the API (an audit trail for deploys, which
            # belong to no case and so to no case's event log)
            "ALTER TABLE definitions ADD COLUMN deployed_by TEXT",
        ],
    )
)

MIGRATIONS.append(
    (
        4,
        [
            # Read models of the web app (accord.web.views): each page is a few range scans over
            # a time window or a status, never a pass over the whole log.
            # Recent events of one type: SLA breaches, handoffs, completions, claims.
            "CREATE INDEX events_type_at ON events (type, at)",
            # Open work by status across teams: failed tasks, per-team load and waiting, and
            # the inbox's count of a team's ready human work (covering: no table reads).
            "CREATE INDEX tasks_status ON tasks (status, team, kind, ready_at)",
            # Cycle times and throughput of recently ended cases (covering: no table reads).
            "CREATE INDEX cases_ended ON cases (status, ended_at, started_at)",
            "CREATE INDEX cases_started ON cases (started_at)",
            # The catalogue's cases per process and status; a process's newest open cases.
            "CREATE INDEX cases_process ON cases (process, status, started_at)",
        ],
    )
)

LATEST = MIGRATIONS[-1][0]
