"""Every SQL text of the jobs app: the statements a profile showed the ORM to cost too much CPU
on, and the two that have no ORM form. Rows are mapped by column name. Each statement has a
test that runs on SQLite and on PostgreSQL (tests/jobs/test_sql.py).

Why these: `bench/statements.py` runs trivial jobs the whole way in one process, counts each
statement per job, and times it as plain SQL and as the ORM query it stands for (this
process's CPU per call; the database's own work is the same). On PostgreSQL, 2026-11-29, on
the 2-core development machine (µs per call, plain SQL / ORM; what the ORM adds per job):

    statement                per job   plain   ORM    ORM adds
    jobs_waiting (placement)     3.0      58   843    2.36 ms   kept here
    jobs_placed (placement)      3.0      50   345    0.88 ms   kept here
    job_locked (transitions)     2.0     212   598    0.77 ms   kept here
    update of a job row          3.0      63   147    0.25 ms   back to the ORM
    insert of events             ~4       79   142    0.25 ms   back to the ORM
    insert of a transition       ~4       67   129    0.25 ms   back to the ORM
    job_uploads (runner)         1.0     109   319    0.21 ms   back to the ORM
    job_active_with (submit)     1.0      55   279    0.22 ms   back to the ORM
    job_watch (runner, 2/s)      -        51   331    -         back to the ORM
    events lock (runner output)  -        64   321    -         back to the ORM

A placement pass runs on every submission and every hand-over, whether or not anything can be
placed; the three kept here save 4.0 ms of the CPU a job costs (38 to 50 ms in all across
runs of `bench/dispatch.py`); the others together 1.2 ms, and each reads better as the ORM.
job_watch and the output lock run per second of a job's life, not per job: on a node with 8
running jobs the ORM adds about 4 ms of CPU a second (0.4 % of a core).
"""

from django.db import DEFAULT_DB_ALIAS, connections


def _db():
    # Resolved once per helper call: each use of the `connection` proxy looks it up again.
    return connections[DEFAULT_DB_ALIAS]


def _table(model) -> str:
    return _db().ops.quote_name(model._meta.db_table)


def _rows(sql: str, params=()) -> list[dict]:
    """Rows as dicts keyed by column name."""
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _value(model, name: str, raw):
    """A value read by plain SQL as the ORM would give it (times made aware, JSON decoded)."""
    db = _db()
    column = model._meta.get_field(name).cached_col
    for converter in db.ops.get_db_converters(column) + column.get_db_converters(db):
        raw = converter(raw, column, db)
    return raw


def _for_update(alias: str) -> str:
    """The row-lock clause for a SELECT, where the database has one (SQLite serialises writing
    transactions instead)."""
    db = _db()
    if db.features.has_select_for_update_of:
        return f" FOR UPDATE OF {db.ops.quote_name(alias)}"
    if db.features.has_select_for_update:
        return " FOR UPDATE"
    return ""


# --- Kept for their cost (see above). Only table and column names, from the models, and
# placeholders are formatted into them.


def jobs_placed(states: list[str]) -> list[dict]:
    """Where every placed job in one of these states is and what it takes there: `node_id`,
    `slot`, `gpu`, `owner_id`, `kind`, `gpu_memory`, `gpu_alone`."""
    from jobs.models import Job

    found = _rows(
        f"SELECT node_id, slot, gpu, owner_id, kind, gpu_memory, gpu_alone FROM {_table(Job)} "
        "WHERE node_id IS NOT NULL "
        f"AND state IN ({', '.join(['%s'] * len(states))})",
        states,
    )
    for row in found:
        row["gpu_alone"] = bool(row["gpu_alone"])  # SQLite's 0 or 1
    return found


def jobs_waiting(state: str, per_user: int) -> list[dict]:
    """Each user's first `per_user` unplaced jobs in `state` per priority, oldest first: what
    a placement pass needs of each (no model instances: a pass reads many)."""
    from jobs.models import Job

    listed = (
        "id, kind, owner_id, priority, queued_at, placement, time_limit, gpu_memory, gpu_alone, "
        "needs"
    )
    found = _rows(
        f"SELECT {listed} FROM (SELECT {listed}, ROW_NUMBER() OVER (PARTITION BY owner_id, "
        f"priority ORDER BY queued_at, id) AS turn FROM {_table(Job)} "
        "WHERE state = %s AND node_id IS NULL) AS w WHERE turn <= %s",
        [state, per_user],
    )
    for row in found:
        row["queued_at"] = _value(Job, "queued_at", row["queued_at"])
        row["needs"] = _value(Job, "needs", row["needs"])
        row["gpu_alone"] = bool(row["gpu_alone"])
    return found


def job_locked(job_id: int, conditions: dict):
    """Lock a job's row (only it: the node joined in may be null) if it matches `conditions`
    (job column or `node_name` → value) and read it: the job, with its node's name as
    `locked_node_name`; None if it does not match."""
    from jobs.models import Job
    from nodes.models import Node

    where, params = ["j.id = %s"], [job_id]
    for name, value in conditions.items():
        where.append("n.name = %s" if name == "node_name" else f"j.{name} = %s")
        params.append(value)
    found = list(
        Job.objects.raw(
            f"SELECT j.*, n.name AS locked_node_name FROM {_table(Job)} j "
            f"LEFT JOIN {_table(Node)} n ON n.id = j.node_id "
            f"WHERE {' AND '.join(where)}{_for_update('j')}",
            params,
        )
    )
    return found[0] if found else None


# --- PostgreSQL's own, with no ORM form (nothing to do on SQLite, which serialises every
# writing transaction and always waits for its disk).


def lock_submissions(project_id: int, digest: str) -> None:
    """Hold a transaction-scoped advisory lock on (project, work), so two submissions of the
    same work to a project are one after the other."""
    import hashlib

    if _db().vendor != "postgresql":
        return
    key = int.from_bytes(
        hashlib.sha256(f"{project_id}:{digest}".encode()).digest()[:8], "big", signed=True
    )
    with _db().cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def commit_without_waiting() -> None:
    """Let this transaction commit without waiting for the database's log to reach the disk: a
    database crash may lose its last moment (a runner's output, events and their numbers
    together), never a job's state."""
    if _db().vendor == "postgresql":
        with _db().cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
