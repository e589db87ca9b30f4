"""Checks a command makes before it starts anything, each failing with one line a user can act on.

A mistake in the setup (a port another program holds, a data folder that cannot exist, a database URL whose
driver is not installed, a stack that is not running) is found here, before a stack is half started or a demo
has run for a minute, and said as what went wrong, where, and what to do: :class:`SetupError`, which the
``sandbox`` command prints as ``Error: ...`` and exits 1.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import click

#: the option that sets each service's port, named in the advice a busy port gets
PORT_OPTIONS = {"sales": "--sales-port", "scm": "--scm-port", "bridge": "--bridge-port", "identity": "--identity-port"}
#: the service names as a user reads them
SERVICE_TITLES = {"sales": "mock Sales", "scm": "mock SCM", "bridge": "the bridge", "identity": "the identity service"}

__all__ = [
    "PORT_OPTIONS",
    "SetupError",
    "check_data_dir",
    "check_database_url",
    "check_data_files",
    "check_ports_free",
    "one_line",
    "unreachable",
]


class SetupError(click.ClickException):
    """A problem with the user's setup, not a bug: one line saying what, where and what to do (exit 1)."""

    exit_code = 1


def one_line(exc: BaseException) -> str:
    """An exception as one line: its first line, without SQLAlchemy's "(Background on this error ...)" tail."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def check_ports_free(host: str, ports: Mapping[str, int]) -> None:
    """Refuse before anything starts when two services are given one port, or a port is taken or unusable.

    A port of 0 means "any free port" and is not checked. The probe binds as the servers do (with
    ``SO_REUSEADDR``, so a port that only has connections closing is not called busy).
    """
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if not port:
            continue
        if port in seen:
            raise click.UsageError(
                f"{PORT_OPTIONS.get(seen[port], seen[port])} and {PORT_OPTIONS.get(name, name)} are both {port}; "
                "give each service a port of its own"
            )
        seen[port] = name
    for name, port in ports.items():
        if port:
            _probe(name, host, port)


def _probe(name: str, host: str, port: int) -> None:
    service = SERVICE_TITLES.get(name, name)
    option = PORT_OPTIONS.get(name, "its port option")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SetupError(
            f"cannot listen on host {host!r} ({exc.strerror}); pass --host with an address of this machine, "
            "e.g. --host 127.0.0.1"
        ) from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        if os.name == "posix":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            where = f"{service} cannot listen on {host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise SetupError(
                    f"{where}: the port is already in use (another `sandbox up` or `sandbox demo --keep`?); "
                    f"stop what holds it or choose another port with {option} PORT (0: any free port)"
                ) from None
            if exc.errno == errno.EACCES:
                raise SetupError(
                    f"{where}: ports below 1024 need privileges; choose a port from 1024 up with {option} PORT"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise SetupError(
                    f"{where}: {host} is not an address of this machine; pass --host 127.0.0.1 (or 0.0.0.0)"
                ) from None
            raise SetupError(f"{where}: {exc.strerror or exc}; choose another port with {option} PORT") from None


def check_data_dir(path: Path, option: str = "--data-dir") -> None:
    """Make the data folder (and its parents) unless it exists, and check it can be written."""
    advice = f"choose a folder you can write, e.g. {option} .sandbox (or --memory for throwaway state)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SetupError(f"{option} {path}: a file of that name is in the way, not a folder; {advice}") from None
    except NotADirectoryError:
        blocker = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), path)
        raise SetupError(f"{option} {path}: {blocker} is not a folder, so nothing can go inside; {advice}") from None
    except PermissionError:
        raise SetupError(f"{option} {path}: no permission to create it; {advice}") from None
    except OSError as exc:
        raise SetupError(f"{option} {path}: cannot create it ({exc.strerror or exc}); {advice}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SetupError(f"{option} {path}: the folder is not writable; {advice}")


#: how to install the driver SQLAlchemy names for a database kind (the project's extra, then the package)
DRIVER_HINTS = {
    "postgresql": "pip install -e '.[postgres]' in the sandbox's checkout (or pip install 'psycopg[binary]')",
}


def check_database_url(service: str, url: str, option: str = "--database-url") -> None:
    """Refuse a URL SQLAlchemy cannot read, a database kind whose driver is not installed, or a SQLite file
    whose folder does not exist, before any service is built."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    where = f"{option} {service}={url}"
    example = "e.g. sqlite:///data/sales.sqlite or postgresql+psycopg://user:pw@127.0.0.1/sales"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SetupError(f"{where}: not a database URL; give one SQLAlchemy understands, {example}") from None
    where = f"{option} {service}={parsed.render_as_string(hide_password=True)}"  # no password on the screen
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise SetupError(
            f"{where}: unknown database kind {parsed.drivername!r}; use sqlite or postgresql, {example}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = getattr(exc, "name", None) or parsed.drivername
        hint = DRIVER_HINTS.get(parsed.get_backend_name(), f"install the Python package that provides {module}")
        raise SetupError(f"{where}: the driver {module!r} is not installed; {hint}") from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(where, parsed.database, uri=bool(parsed.query.get("uri")))


def _check_sqlite_file(where: str, database: str | None, *, uri: bool) -> None:
    if not database or database == ":memory:" or uri:
        return
    path = Path(database)
    if path.is_dir():
        raise SetupError(f"{where}: {path} is a folder; name a file in it, e.g. sqlite:///{path.as_posix()}/db.sqlite")
    folder = path.parent
    if not folder.is_dir():
        raise SetupError(
            f"{where}: the folder {folder} does not exist; create it or point the URL at a file in an existing "
            "folder (sqlite:///relative/path or sqlite:////absolute/path)"
        )
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise SetupError(f"{where}: {path} cannot be written; choose a file in a folder you can write")
    _check_sqlite_contents(where, path, "point the URL at another file")


def check_data_files(data_dir: Path, services: list[str], option: str = "--data-dir") -> None:
    """Refuse a service's file in the data folder (``<service>.sqlite``) that is there but no SQLite database,
    naming the file, before any service is built."""
    for service in services:
        path = data_dir / f"{service}.sqlite"
        _check_sqlite_contents(f"{option} {data_dir}", path, f"choose another {option} (or --memory)")


def _check_sqlite_contents(where: str, path: Path, elsewhere: str) -> None:
    """A file that exists must open as a SQLite database (read-only here: nothing is created or changed)."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # the service creates it
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SetupError(
            f"{where}: {path} is not a SQLite database ({exc}); move the file away (the service then starts "
            f"afresh) or {elsewhere}"
        ) from None


def unreachable(service: str, url: str, exc: BaseException, option: str) -> SetupError:
    """The error for a service that does not answer at ``url`` (no stack running, most often)."""
    title = SERVICE_TITLES.get(service, service)
    return SetupError(
        f"cannot reach {title} at {url} ({one_line(exc)}); start the stack with `sandbox up`, "
        f"or pass {option} where it runs"
    )
