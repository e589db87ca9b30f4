"""The callers a service was told about over its control plane (``/_sandbox/auth/applications`` and ``/users``),
kept in the service's own database so that they live as long as its data: a restart of ``sandbox up`` keeps them
(SQLite in the data folder, or PostgreSQL), ``--memory`` throws them away with everything else, and the workers of
``--workers N`` share them.

One table, ``sandbox_auth_registrations`` (kind, key, the registration as JSON), outside the model's metadata like
the shared faults (:mod:`sandbox.shared`), so a ``reset`` of the data leaves it alone: the services provision a
registered caller's ``systemusers`` row again when a reset removed it.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from sandbox.odata.store import Store

_METADATA = sa.MetaData()
_REGISTRATIONS = sa.Table(
    "sandbox_auth_registrations",
    _METADATA,
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
)

#: kinds of registration: an app (by application id) and a user (by Entra object id)
APPLICATION = "application"
USER = "user"


class Registrations:
    """Read and write a service's registrations through its store's database (in the store's transactions, so an
    in-memory SQLite database, one shared connection, is never used from two places at once)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.db.transaction(may_sync=False) as connection:
            if connection.dialect.name == "postgresql":
                # the workers of one service start together: they take turns creating the table
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('sandbox.auth_registrations'))")
            _METADATA.create_all(connection)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self.store.db.transaction(may_sync=False) as connection:
            row = connection.execute(
                sa.select(_REGISTRATIONS.c.spec).where(_REGISTRATIONS.c.kind == kind, _REGISTRATIONS.c.key == key)
            ).first()
        return None if row is None else dict(json.loads(row.spec))

    def all(self, kind: str) -> dict[str, dict[str, Any]]:
        with self.store.db.transaction(may_sync=False) as connection:
            rows = connection.execute(
                sa.select(_REGISTRATIONS.c.key, _REGISTRATIONS.c.spec)
                .where(_REGISTRATIONS.c.kind == kind)
                .order_by(_REGISTRATIONS.c.key)
            )
            return {row.key: dict(json.loads(row.spec)) for row in rows}

    def put(self, kind: str, key: str, spec: dict[str, Any]) -> None:
        text = json.dumps(spec, sort_keys=True)
        with self.store.db.transaction(may_sync=False) as connection:
            where = (_REGISTRATIONS.c.kind == kind, _REGISTRATIONS.c.key == key)
            updated = connection.execute(sa.update(_REGISTRATIONS).where(*where).values(spec=text)).rowcount
            if not updated:
                connection.execute(sa.insert(_REGISTRATIONS).values(kind=kind, key=key, spec=text))
