"""Golden databases: seeded services and a whole bridged stack, built once per test session and copied per test.

Seeding a mock takes about a second and the shipped maps' initial sync a few more, while copying the SQLite
databases they leave takes milliseconds. So a session builds each state once (:class:`Golden`, lazily, in a
folder of its own: one per pytest-xdist worker) and every test gets its own copy, restored page by page with
SQLite's backup API into the in-memory database of a freshly built app (``seed=None``: nothing is seeded).

A restored stack is what the real start leaves, rebuilt the way a restarted bridge rebuilds itself: the maps'
states come from the bridge database (Running, live, initial sync done), and what the bridge keeps only in
memory after an initial sync (the Sales companies it looked up, the last initial-sync report of each map) is
carried over, so the test sees the same stack as one that ran the initial sync itself.
tests/test_golden.py checks that the two agree.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from flask import Flask

from leadtocash.stack import Stack, StackConfig, build_stack, factory, wire_bridge
from sandbox.db import Database
from sandbox.identity.keys import SigningKey
from sandbox.odata.store import Store
from sandbox.runtime import ServiceConfig

#: the seed every golden database is built with (the default of the services and of the old fixtures)
SEED = 1
MOCKS = ("sales", "scm")


def _sqlite(raw: Any) -> sqlite3.Connection:
    connection = raw.driver_connection
    assert isinstance(connection, sqlite3.Connection), "golden databases are SQLite databases"
    return connection


def save_database(db: Database, target: Path) -> None:
    """Write the whole SQLite database ``db`` (in memory or a file) to the file ``target``."""
    raw = db.engine.raw_connection()
    try:
        with closing(sqlite3.connect(target)) as destination:
            _sqlite(raw).backup(destination)
    finally:
        raw.close()


def load_database(source: Path, db: Database) -> None:
    """Replace everything in the SQLite database ``db`` (schema and rows) with the file ``source``."""
    raw = db.engine.raw_connection()
    try:
        with closing(sqlite3.connect(source)) as origin:
            origin.backup(_sqlite(raw))
    finally:
        raw.close()


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of the SQLite file ``source`` at ``target`` (no -wal/-shm file to carry along)."""
    with closing(sqlite3.connect(source)) as origin, closing(sqlite3.connect(target)) as destination:
        origin.backup(destination)


@contextmanager
def _first_call_replaced(
    owner: type, name: str, instead: Callable[..., Any], applies: Callable[..., bool]
) -> Iterator[None]:
    """Within the block, the first call of ``owner.name`` from this thread for which ``applies(*args)`` holds runs
    ``instead(*args)``; every other call, in this thread or another, runs the original. Fails if no call was
    taken over: the shortcut it stands for would silently have stopped applying."""
    descriptor = owner.__dict__[name]  # put back as it was (a classmethod stays one)
    original = getattr(owner, name)
    thread = threading.get_ident()
    pending = [True]

    def replacement(*args: Any, **kwargs: Any) -> Any:
        if pending and threading.get_ident() == thread and applies(*args, **kwargs):
            pending.clear()
            return instead(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, descriptor)
    assert not pending, f"{owner.__name__}.{name} was not called: the shortcut no longer applies"


def _schema_from(source: Path) -> AbstractContextManager[None]:
    """While a service app is built in this thread, its database's ``create_all`` restores the golden file
    ``source`` instead: the copy brings the schema with the rows, so the tables and indexes are not created only
    to be replaced (that DDL is about half of what building an app costs, and nearly every test builds one)."""
    return _first_call_replaced(
        Database,
        "create_all",
        lambda db: load_database(source, db),
        lambda db: isinstance(db, Database) and db.is_sqlite,
    )


def restored_service(name: str, source: Path, options: dict[str, Any] | None = None) -> Flask:
    """The app of mock ``name`` on a private in-memory database holding the golden file ``source``, configured
    with the service ``options`` (which must not change what seeding writes)."""
    make = factory(name)
    with _schema_from(source):
        app = make(ServiceConfig(database_url="sqlite://", seed=None, options=dict(options or {})))
    runtime = app.extensions["sandbox"]
    runtime.after_import()  # the outbox's latest seq comes from the data (row versions: the database's counter)
    return app


def load_version_floor(store: Store, db: Database) -> None:
    """After rows were copied into ``db`` around the store: its row-version counter is above every copied row."""
    assert store.db is db
    store.reset_versions()


@dataclass
class Golden:
    """The golden databases of one test session, each built the first time a test asks for it."""

    folder: Path
    #: per map, the report of the golden stack's initial sync (kept in the bridge's memory only)
    initial_reports: dict[str, Any] = field(default_factory=dict)
    _signing_key: SigningKey | None = None

    def database(self, name: str, build: Callable[[], Database]) -> Path:
        """The golden file ``name``: the database ``build`` returns (then disposed of), saved the first time."""
        path = self.folder / f"{name}.sqlite"
        if not path.exists():
            db = build()
            try:
                self._save(db, path)
            finally:
                db.dispose()
        return path

    def service(self, name: str) -> Path:
        """The file of mock ``name`` seeded with :data:`SEED`, as the services' seed leaves it."""

        def seeded() -> Database:
            make = factory(name)
            return make(ServiceConfig(database_url="sqlite://", seed=SEED)).extensions["sandbox"].db

        return self.database(name, seeded)

    def service_app(self, name: str, options: dict[str, Any] | None = None) -> Flask:
        """A fresh app of mock ``name`` holding its own copy of the seeded database, run with ``options``."""
        return restored_service(name, self.service(name), options)

    def stack_files(self) -> dict[str, Path]:
        """The files of Sales, SCM and the bridge after the shipped maps' initial sync (SCM master), as
        ``build_stack`` leaves them with the mocks in memory."""
        folder = self.folder / "stack"
        paths = {name: folder / f"{name}.sqlite" for name in (*MOCKS, "bridge")}
        if not all(path.exists() for path in paths.values()):
            folder.mkdir(exist_ok=True)
            building = folder / "building-bridge.sqlite"
            building.unlink(missing_ok=True)
            url = f"sqlite:///{building.as_posix()}"
            stack = build_stack(StackConfig(memory=True, seed=SEED, database_urls={"bridge": url}))
            try:
                runtime = stack.apps["bridge"].extensions["bridge"]
                runtime.worker.stop()  # nothing may write while the databases are saved
                runtime.state.flush()
                self.initial_reports = copy.deepcopy(runtime.lifecycle.initial.last_reports)
                for name in MOCKS:
                    self._save(stack.apps[name].extensions["sandbox"].db, paths[name])
                self._save(runtime.db, paths["bridge"])
            finally:
                stack.close()
                building.unlink(missing_ok=True)
        return paths

    def stack(self, bridge_file: Path, *, auth: bool = False) -> Stack:
        """A stack restored from :meth:`stack_files`, its bridge database at ``bridge_file`` (a copy), the maps
        Running live as after ``build_stack`` (the async drainers started, nothing to recover). With ``auth`` the
        services check tokens of an identity service in this process (``stack.identity``), as ``sandbox up``'s do;
        besides the in-process names, tokens may be asked for ``http://localhost`` (Flask's test clients)."""
        from leadtocash import auth as stack_auth
        from sandbox.auth import AUTH_OPTION, AuthSettings

        files = self.stack_files()
        # a 2048-bit RSA key costs a few tenths of a second: each restored stack's identity signs with the
        # session's key instead of a fresh one, as a restarted `sandbox up` keeps its key in its data dir
        key = self.signing_key()
        with _first_call_replaced(SigningKey, "generate", lambda: key, lambda: True):
            identity = stack_auth.build_identity(StackConfig(memory=True, auth=auth))
        settings = AuthSettings(enabled=auth, identity_url=stack_auth.IN_PROCESS_IDENTITY_URL)
        options = {AUTH_OPTION: settings.to_options()}
        apps = {name: restored_service(name, files[name], options) for name in MOCKS}
        shell = Stack(
            apps,
            {"identity": httpx.WSGITransport(app=identity)},
            {
                "identity": stack_auth.IN_PROCESS_IDENTITY_URL,
                **{name: f"http://{name}.sandbox" for name in (*MOCKS, "bridge")},
            },
            identity=identity,
            auth=auth,
        )
        stack_auth.register_resources(shell)
        identity.extensions["identity"].directory.add_resources(["http://localhost"])
        for app in apps.values():
            stack_auth.hand_keys(shell, app)
        copy_database(files["bridge"], bridge_file)
        bridge_app = wire_bridge(
            apps,
            bridge_database_url=f"sqlite:///{bridge_file.as_posix()}",
            auth=settings,
            credentials=stack_auth.bridge_credentials(shell) if auth else None,
        )
        stack_auth.hand_keys(shell, bridge_app)
        assert bridge_app is not None
        runtime = bridge_app.extensions["bridge"]
        # What the initial sync left in the bridge's memory: the companies it read, its last reports.
        runtime.engine.load_companies()
        runtime.lifecycle.initial.last_reports = copy.deepcopy(self.initial_reports)
        apps["bridge"] = bridge_app
        shell.transports.update({name: httpx.WSGITransport(app=app) for name, app in apps.items()})
        return shell

    def signing_key(self) -> SigningKey:
        """The identity signing key of this session's restored stacks, generated the first time."""
        if self._signing_key is None:
            self._signing_key = SigningKey.generate()
        return self._signing_key

    @staticmethod
    def _save(db: Database, path: Path) -> None:
        # written under another name and renamed: a half-written file is never taken for a golden one
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        save_database(db, partial)
        partial.replace(path)
