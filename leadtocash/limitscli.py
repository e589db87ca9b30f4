"""The command line's options for real limits and a latency profile (``sandbox up``, ``sandbox load``), in one place.

- ``--limits real|off|FILE``: :mod:`sandbox.limits.profile` (default ``off``: no limits);
- ``--latency-profile cloud|none|FILE`` and ``--latency-seed N``: :mod:`sandbox.limits.latency` (default none).

Both become services' options in the stack's configuration (:func:`with_limits`), so they reach mocks in child
processes too; the bridge takes the live-sync limits (``bridge/livelimits.py``). See docs/limits.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from leadtocash.stack import StackConfig
from sandbox.limits import LatencyProfile, LimitsError, LimitsProfile, load_latency_profile, load_profile

F = TypeVar("F", bound=Callable[..., Any])


def _limits(_ctx: click.Context, _param: click.Parameter, value: str) -> LimitsProfile:
    try:
        return load_profile(value)
    except LimitsError as exc:
        raise click.BadParameter(str(exc), param_hint="--limits") from None


def _latency(_ctx: click.Context, _param: click.Parameter, value: str) -> LatencyProfile:
    try:
        return load_latency_profile(value)
    except LimitsError as exc:
        raise click.BadParameter(str(exc), param_hint="--latency-profile") from None


def limits_options(command: F) -> F:
    """``--limits``, ``--latency-profile`` and ``--latency-seed`` on a command that starts a stack."""
    command = click.option(
        "--latency-seed",
        type=int,
        default=None,
        help="Seed of the latency profile's random delays (the same seed, the same delays in the same order).",
    )(command)
    command = click.option(
        "--latency-profile",
        "latency",
        default="none",
        show_default=True,
        metavar="cloud|none|FILE",
        callback=_latency,
        help="Delay each request like a cloud tenant: per service and operation (read, write, batch, metadata), "
        "from a distribution; 'cloud' is the built-in assumption, a TOML/JSON file overrides it (docs/limits.md).",
    )(command)
    return click.option(
        "--limits",
        "limits",
        default="off",
        show_default=True,
        metavar="real|off|FILE",
        callback=_limits,
        help="Apply the real services' limits with their real errors: Dataverse and F&O service protection "
        "(429 with Retry-After) and dual-write's live-sync limits; a TOML/JSON file overrides 'real', e.g. a "
        "10-request window (docs/limits.md).",
    )(command)


def with_limits(
    config: StackConfig, limits: LimitsProfile, latency: LatencyProfile, latency_seed: int | None = None
) -> StackConfig:
    """``config`` with the services' options of ``limits`` and ``latency`` (``latency_seed`` over the file's)."""
    if latency_seed is not None:
        latency = dataclasses.replace(latency, seed=latency_seed)
    options = {name: dict(values) for name, values in config.options.items()}
    for extra in (limits.stack_options(), latency.stack_options()):
        for name, values in extra.items():
            options[name] = {**options.get(name, {}), **values}
    return dataclasses.replace(config, options=options)


def limits_line(limits: LimitsProfile, latency: LatencyProfile) -> str | None:
    """One line for ``sandbox up`` saying which limits and delays apply (None when neither does)."""
    parts = []
    if limits.active:
        parts.append(f"limits {limits.name}")
    if latency.services:
        parts.append(f"latency profile {latency.name}" + ("" if latency.seed is None else f" (seed {latency.seed})"))
    return ", ".join(parts) if parts else None
