"""Plain SQL for the paths every job goes through several times (placing, starting, output,
finishing), on PostgreSQL and SQLite alike.

Building a query with the ORM costs about a millisecond of CPU here, more than PostgreSQL
takes to run it; a job goes through some thirty of them, and on a busy pool that CPU is what
limits how many jobs a second the portal dispatches (`bench/dispatch.py`). These helpers keep
the ORM's field conversions (`get_db_prep_save`, `from_db_value`) and table and column names,
and skip only the query building. Everything else uses the ORM.
"""

from dataclasses import dataclass
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections


def _db():
    # Resolved once per helper call: each use of the `connection` proxy looks it up again.
    return connections[DEFAULT_DB_ALIAS]


@cache
def _converters(model, name: str, vendor: str) -> tuple:
    db = _db()
    column = model._meta.get_field(name).cached_col
    return column, tuple(db.ops.get_db_converters(column) + column.get_db_converters(db))


def rows(sql: str, params=()) -> list[tuple]:
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params=()) -> int:
    """Run a statement; how many rows it changed."""
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def for_update(alias: str) -> str:
    """The row-lock clause for a SELECT, where the database has one (SQLite serialises writing
    transactions instead)."""
    db = _db()
    if db.features.has_select_for_update_of:
        return f" FOR UPDATE OF {db.ops.quote_name(alias)}"
    if db.features.has_select_for_update:
        return " FOR UPDATE"
    return ""


def insert(model, records: list[dict]) -> None:
    """INSERT these records (field name → value) in one statement; they share their keys."""
    if not records:
        return
    db = _db()
    names = list(records[0])
    fields = [model._meta.get_field(name) for name in names]
    params, groups = [], []
    group = "(" + ", ".join(["%s"] * len(names)) + ")"
    for record in records:
        groups.append(group)
        params.extend(f.get_db_prep_save(record[n], db) for f, n in zip(fields, names, strict=True))
    quote = db.ops.quote_name
    execute(
        f"INSERT INTO {_table(model)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join(groups)}",
        params,
    )


def update(model, where: str, where_params, fields: dict) -> int:
    """UPDATE `model`'s table SET these fields (field name → value) WHERE `where`; how many
    rows changed."""
    db = _db()
    sets, params = [], []
    for name, value in fields.items():
        field = model._meta.get_field(name)
        sets.append(f"{db.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, db))
    return execute(
        f"UPDATE {_table(model)} SET {', '.join(sets)} WHERE {where}",
        [*params, *where_params],
    )


def value(model, name: str, raw):
    """A value read by plain SQL as the ORM would give it (JSON decoded, times made aware)."""
    db = _db()
    column, converters = _converters(model, name, db.vendor)
    for converter in converters:
        raw = converter(raw, column, db)
    return raw


def converted(model, names: list[str], values) -> dict:
    """A row read by plain SQL as the ORM would give it."""
    return {name: value(model, name, raw) for name, raw in zip(names, values, strict=True)}


def param(model, name: str, given):
    """A value for a WHERE clause, prepared as the field stores it."""
    return model._meta.get_field(name).get_db_prep_value(given, _db())


# --- The statements ------------------------------------------------------------------------
# Only table and column names, from the models, and placeholders are formatted into them.


def _table(model) -> str:
    return _db().ops.quote_name(model._meta.db_table)


def nodes_available(since) -> list:
    """Enabled nodes, not draining, with a heartbeat after `since`, by name."""
    from nodes.models import Node

    return list(
        Node.objects.raw(
            f"SELECT * FROM {_table(Node)} WHERE enabled = %s AND draining = %s "
            "AND last_heartbeat_at > %s ORDER BY name",
            [True, False, param(Node, "last_heartbeat_at", since)],
        )
    )


def jobs_placed(states: list[str]) -> list[tuple]:
    """(node id, slot, owner id) of every placed job in one of these states."""
    from jobs.models import Job

    return rows(
        f"SELECT node_id, slot, owner_id FROM {_table(Job)} WHERE node_id IS NOT NULL "
        f"AND state IN ({', '.join(['%s'] * len(states))})",
        states,
    )


@dataclass(slots=True)
class Waiting:
    """What a placement pass needs of a waiting job (no model instance: a pass reads many)."""

    pk: int
    kind: str
    owner_id: int
    priority: int
    queued_at: object
    placement: int
    time_limit: int
    gpu_memory: int | None


def jobs_waiting(state: str, per_user: int) -> list[Waiting]:
    """Each user's first `per_user` unplaced jobs in `state` per priority, oldest first."""
    from jobs.models import Job

    listed = "id, kind, owner_id, priority, queued_at, placement, time_limit, gpu_memory"
    return [
        Waiting(*row[:4], value(Job, "queued_at", row[4]), *row[5:])
        for row in rows(
            f"SELECT {listed} FROM (SELECT {listed}, ROW_NUMBER() OVER (PARTITION BY owner_id, "
            f"priority ORDER BY queued_at, id) AS turn FROM {_table(Job)} "
            "WHERE state = %s AND node_id IS NULL) AS w WHERE turn <= %s",
            [state, per_user],
        )
    ]


def last_placed(owners: list[int]) -> dict:
    """When each of these users last had a job placed."""
    from jobs.models import Job

    if not owners:
        return {}
    found = rows(
        f"SELECT owner_id, MAX(placed_at) FROM {_table(Job)} WHERE owner_id IN "
        f"({', '.join(['%s'] * len(owners))}) AND placed_at IS NOT NULL GROUP BY owner_id",
        owners,
    )
    return {owner: converted(Job, ["placed_at"], [at])["placed_at"] for owner, at in found}


def job_active_with(project_id: int, fingerprint: str, states: list[str]) -> int | None:
    """The oldest job of a project doing this work (same fingerprint) in one of these states."""
    from jobs.models import Job

    found = rows(
        f"SELECT id FROM {_table(Job)} WHERE project_id = %s AND fingerprint = %s "
        f"AND state IN ({', '.join(['%s'] * len(states))}) ORDER BY id LIMIT 1",
        [project_id, fingerprint, *states],
    )
    return found[0][0] if found else None


def job_locked(job_id: int, conditions: dict) -> tuple | None:
    """Lock a job's row (only it: the node joined in may be null) if it matches `conditions`
    (job column or `node_name` → value) and read it: (the job, its node's name)."""
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
            f"WHERE {' AND '.join(where)}{for_update('j')}",
            params,
        )
    )
    if not found:
        return None
    return found[0], found[0].locked_node_name


def job_run_locked(job_id: int, placement: int, state: str) -> dict | None:
    """Lock a job's row if that placement of it is in `state`; its event count and metrics."""
    from jobs.models import Job

    found = rows(
        f"SELECT event_seq, metrics FROM {_table(Job)} WHERE id = %s AND placement = %s "
        f"AND state = %s{for_update(Job._meta.db_table)}",
        [job_id, placement, state],
    )
    return converted(Job, ["event_seq", "metrics"], found[0]) if found else None


def job_uploads(job_id: int) -> list:
    """A job's input uploads in order, each with its `position`."""
    from jobs.models import JobInput
    from portal.uploads.models import Upload

    return list(
        Upload.objects.raw(
            f"SELECT u.*, i.position FROM {_table(Upload)} u "
            f"JOIN {_table(JobInput)} i ON i.upload_id = u.id "
            "WHERE i.job_id = %s ORDER BY i.position",
            [job_id],
        )
    )


def job_watch(job_id: int) -> dict | None:
    """What a runner checks of its job every half second."""
    from jobs.models import Job
    from nodes.models import Node

    found = rows(
        "SELECT j.state, j.placement, j.cancel_requested, j.cancel_requested_by_id, n.enabled "
        f"FROM {_table(Job)} j LEFT JOIN {_table(Node)} n ON n.id = j.node_id WHERE j.id = %s",
        [job_id],
    )
    if not found:
        return None
    keys = ["state", "placement", "cancel_requested", "cancel_requested_by", "node_enabled"]
    return dict(zip(keys, found[0], strict=True))
