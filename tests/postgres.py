"""PostgreSQL for the tests: one throwaway cluster per test session (per xdist worker), started from the
embedded package (the ``postgres`` extra, part of ``dev``), no system service.

- ``postgres_server``: the session's cluster.
- ``pg_urls``: fresh, empty databases for sales, scm and the bridge, dropped after the test.
- ``pg_golden_urls``: databases copied (``CREATE DATABASE ... TEMPLATE``, milliseconds) from a stack seeded and
  initially synced once per session, as ``tests/golden.py`` does for SQLite.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from leadtocash.postgres import EmbeddedPostgres
from leadtocash.stack import SERVICE_NAMES, StackConfig, start_stack

_NUMBERS = itertools.count(1)


class PostgresForTests:
    """The session's cluster, its golden databases and the databases handed out to tests."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server
        self._golden: dict[str, str] | None = None

    def fresh(self, prefix: str = "t", template: str | None = None) -> dict[str, str]:
        """A new database per service (``template``: copies of the golden ones), by service name."""
        number = next(_NUMBERS)
        urls = {}
        for name in SERVICE_NAMES:
            database = f"{prefix}{os.getpid()}_{number}_{name}"
            urls[name] = self._create(database, None if template is None else f"{template}_{name}")
        return urls

    def _create(self, database: str, template: str | None) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.server.url("postgres", driver="postgresql"), autocommit=True) as connection:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
            if template is not None:
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(database), sql.Identifier(template)
                )
            connection.execute(statement)
        return self.server.url(database)

    def drop(self, urls: dict[str, str]) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.server.url("postgres", driver="postgresql"), autocommit=True) as connection:
            for url in urls.values():
                database = url.rsplit("/", 1)[1]
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

    def golden(self) -> dict[str, str]:
        """Copies of the session's golden stack: both mocks seeded (seed 1), every shipped map running."""
        if self._golden is None:
            names = {name: f"golden_{name}" for name in SERVICE_NAMES}
            urls = {name: self._create(database, None) for name, database in names.items()}
            with start_stack(StackConfig(memory=True, seed=1, database_urls=urls)) as stack:
                stack.wait_ready()
            self._golden = urls
        return self.fresh("g", template="golden")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresForTests]:
    """The session's PostgreSQL cluster (throwaway, in a temporary folder; run as ``nobody`` under root)."""
    server = EmbeddedPostgres.temporary()
    server.start()
    try:
        yield PostgresForTests(server)
    finally:
        server.stop()


@pytest.fixture
def pg_urls(postgres_server: PostgresForTests) -> Iterator[dict[str, str]]:
    """Empty databases for sales, scm and the bridge on the session's cluster, dropped afterwards."""
    urls = postgres_server.fresh()
    yield urls
    postgres_server.drop(urls)


@pytest.fixture
def pg_golden_urls(postgres_server: PostgresForTests) -> Iterator[dict[str, str]]:
    """Databases for sales, scm and the bridge holding the golden stack (seeded, maps running), dropped afterwards."""
    urls = postgres_server.golden()
    yield urls
    postgres_server.drop(urls)
