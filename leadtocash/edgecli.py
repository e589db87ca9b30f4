"""The command line's options for edge safety and logs (``sandbox up``, ``sandbox demo``), kept in one place.

- ``--allowed-host NAME`` / ``--allowed-origin ORIGIN`` (repeatable): what :mod:`sandbox.websafety` lets through
  besides loopback and the stack's own origins;
- ``--log-level`` / ``--log-format``: :mod:`leadtocash.logs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from leadtocash.logs import DEFAULT_FORMAT, DEFAULT_LEVEL, FORMATS, LEVELS, STACK_LOGGER, configure_logging
from sandbox.logs import NOTICE
from sandbox.websafety import is_loopback, parse_origin

F = TypeVar("F", bound=Callable[..., Any])


def _hosts(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not value.strip() or "/" in value or value.strip() != value:
            raise click.BadParameter(
                f"{value!r} is not a host name; expected e.g. sandbox.internal", param_hint="--allowed-host"
            )
    return values


def _origins(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(parse_origin(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allowed-origin") from None


def edge_options(command: F) -> F:
    """``--allowed-host`` and ``--allowed-origin`` on a command that serves a stack."""
    command = click.option(
        "--allowed-origin",
        "allowed_origins",
        multiple=True,
        metavar="ORIGIN",
        callback=_origins,
        help="An origin (scheme://host[:port]) whose web pages may change the services, e.g. "
        "http://localhost:3000; repeatable. Other pages' writes get 403.",
    )(command)
    return click.option(
        "--allowed-host",
        "allowed_hosts",
        multiple=True,
        metavar="NAME",
        callback=_hosts,
        help="A host name the services answer to besides --host, localhost and loopback addresses; "
        "repeatable. Other Host headers get 421 (DNS rebinding).",
    )(command)


def log_options(command: F) -> F:
    """``--log-level`` and ``--log-format``."""
    command = click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        default=DEFAULT_FORMAT,
        show_default=True,
        help="Log lines (on stderr) as text, or as one JSON object per line.",
    )(command)
    return click.option(
        "--log-level",
        type=click.Choice(list(LEVELS), case_sensitive=False),
        default=DEFAULT_LEVEL,
        show_default=True,
        help="notice: startup, errors, map state changes; info: also a line per request and per synced "
        "record; debug: also health probes and tracebacks.",
    )(command)


def start_logging(level: str, fmt: str) -> None:
    """Configure logging for the running command; its end (however it ends) puts the previous setup back."""
    restore = configure_logging(level, fmt)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(restore)


def warn_if_exposed(host: str) -> None:
    """Say so when the services listen beyond this machine: then only authentication protects them."""
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}, reachable from other machines: keep authentication on (do not use "
            "--auth off), and name the host names clients use with --allowed-host.",
            err=True,
        )


def log_ready(level: str) -> None:
    """The startup's last log line (notice), with how to see more."""
    hint = "" if LEVELS[level.lower()] <= logging.INFO else " (--log-level info logs every request and synced record)"
    logging.getLogger(STACK_LOGGER).log(NOTICE, "serving; log level %s%s", level.lower(), hint)
