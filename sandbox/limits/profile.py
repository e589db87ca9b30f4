"""Limits profiles: which documented service limits a stack applies (``sandbox up --limits real|off|FILE``).

A profile holds, per mock service, the service-protection limits of one caller over a sliding window
(:class:`ServiceLimits`) and, for the bridge, dual-write's live-sync limits (:class:`LiveSyncLimits`). The
built-in ``real`` profile carries the published figures (see ``docs/reference/limits.md``); ``off`` (the default
of every stack) carries none. A TOML or JSON file overrides ``real`` (or ``off`` with ``base = "off"``)::

    base = "real"            # or "off": what the keys below change
    [sales]                  # Dataverse service protection, per caller and process ("web server")
    window_seconds = 10
    requests = 10            # false turns one limit off
    [scm]
    requests = false
    [dualwrite]
    records = 1000
    seconds = 120

Profiles travel to child processes as plain dicts in the services' options (:func:`LimitsProfile.service_options`),
so every value here is JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

#: the key of a mock's ``ServiceConfig.options`` holding its :class:`ServiceLimits` as a dict
LIMITS_OPTION = "limits"
#: the sections of a profile file besides ``base``: the two mocks (by service name) and the bridge
SERVICE_SECTIONS = ("sales", "scm")
LIVESYNC_SECTION = "dualwrite"
PROFILE_NAMES = ("real", "off")


class LimitsError(ValueError):
    """A limits or latency profile that cannot be used; the message is one line a user can act on."""


@dataclass(frozen=True)
class ServiceLimits:
    """Service-protection limits of one service. ``None`` turns a limit off.

    ``requests``, ``execution_ms`` and ``concurrent`` are per caller (the authenticated identity) and per
    process, as Dataverse counts them per user and per web server (``docs/reference/limits.md`` section 1);
    ``total_concurrent`` is across callers, the stand-in for F&O's resource-based throttling (section 2).
    ``concurrent_retry_after`` is the ``Retry-After`` of a concurrency refusal (no published figure: assumed).
    ``exempt`` names callers never throttled (none in ``real``): with a tiny window, ``["dualwrite"]`` lets the
    bridge's initial sync at start through while your own clients meet the limits.
    """

    window_seconds: float = 300.0
    requests: int | None = None
    execution_ms: int | None = None
    concurrent: int | None = None
    total_concurrent: int | None = None
    concurrent_retry_after: int = 1
    exempt: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return any(v is not None for v in (self.requests, self.execution_ms, self.concurrent, self.total_concurrent))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "limits") -> ServiceLimits:
        """The limits in ``values`` over the defaults of this class (every limit off); raises :class:`LimitsError`."""
        return _apply(cls(), values, where)


@dataclass(frozen=True)
class LiveSyncLimits:
    """Dual-write's live-sync limits per source transaction: records and seconds (``None``: off)."""

    records: int | None = None
    seconds: float | None = None

    @property
    def active(self) -> bool:
        return self.records is not None or self.seconds is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = LIVESYNC_SECTION) -> LiveSyncLimits:
        return _apply(cls(), values, where)


#: Dataverse service protection (docs/reference/limits.md section 1)
DATAVERSE_REAL = ServiceLimits(window_seconds=300.0, requests=6000, execution_ms=1_200_000, concurrent=52)
#: F&O user-based service protection as documented for the versions that offered it (limits.md section 2)
FNO_REAL = ServiceLimits(window_seconds=300.0, requests=6000, execution_ms=1_200_000, concurrent=52)
#: dual-write live sync: 1,000 records and 2 minutes per transaction (limits.md section 3)
LIVESYNC_REAL = LiveSyncLimits(records=1000, seconds=120.0)


@dataclass(frozen=True)
class LimitsProfile:
    """The limits of a whole stack: per mock service (by name) and the bridge's live sync."""

    name: str
    services: dict[str, ServiceLimits] = field(default_factory=dict)
    livesync: LiveSyncLimits = field(default_factory=LiveSyncLimits)

    @property
    def active(self) -> bool:
        return self.livesync.active or any(limits.active for limits in self.services.values())

    def for_service(self, name: str) -> ServiceLimits:
        return self.services.get(name, ServiceLimits())

    def stack_options(self) -> dict[str, dict[str, Any]]:
        """Per service (the mocks by name, and ``bridge``), the options that install its limits; a service
        without any limit gets none (a stack's ``StackConfig.options``)."""
        out = {name: {LIMITS_OPTION: limits.to_dict()} for name, limits in self.services.items() if limits.active}
        if self.livesync.active:
            out["bridge"] = {LIMITS_OPTION: self.livesync.to_dict()}
        return out


def real_profile() -> LimitsProfile:
    """The documented limits of the real services."""
    return LimitsProfile("real", {"sales": DATAVERSE_REAL, "scm": FNO_REAL}, LIVESYNC_REAL)


def off_profile() -> LimitsProfile:
    """No limits (every stack's default)."""
    return LimitsProfile("off")


def load_profile(spec: str) -> LimitsProfile:
    """``real``, ``off`` or the path of a TOML/JSON file overriding one of them; raises :class:`LimitsError`."""
    if spec == "real":
        return real_profile()
    if spec == "off":
        return off_profile()
    values = read_settings_file(spec, "limits profile")
    base = values.pop("base", "real")
    if base not in PROFILE_NAMES:
        raise LimitsError(f"{spec}: 'base' must be one of {', '.join(PROFILE_NAMES)}, got {base!r}")
    profile = real_profile() if base == "real" else off_profile()
    unknown = sorted(set(values) - {*SERVICE_SECTIONS, LIVESYNC_SECTION})
    if unknown:
        raise LimitsError(
            f"{spec}: unknown section(s) {', '.join(unknown)}; expected {', '.join([*SERVICE_SECTIONS, LIVESYNC_SECTION])}"
        )
    services = dict(profile.services)
    for name in SERVICE_SECTIONS:
        if name in values:
            services[name] = _apply(
                services.get(name, ServiceLimits()), _section(values, name, spec), f"{spec} [{name}]"
            )
    livesync = profile.livesync
    if LIVESYNC_SECTION in values:
        livesync = _apply(livesync, _section(values, LIVESYNC_SECTION, spec), f"{spec} [{LIVESYNC_SECTION}]")
    return LimitsProfile(Path(spec).name, services, livesync)


def read_settings_file(spec: str, what: str) -> dict[str, Any]:
    """A TOML (``.toml``) or JSON file as a dict; any problem is a :class:`LimitsError` naming the file."""
    path = Path(spec)
    if not path.is_file():
        raise LimitsError(f"{what} {spec!r}: no such file (or use one of {', '.join(PROFILE_NAMES)})")
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise LimitsError(f"{spec}: cannot read the {what}: {exc}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise LimitsError(f"{spec}: not valid {kind}: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise LimitsError(f"{spec}: the {what} must be an object (a table of sections)")
    return values


_L = TypeVar("_L", ServiceLimits, LiveSyncLimits)


def _section(values: dict[str, Any], name: str, spec: str) -> dict[str, Any]:
    section = values[name]
    if not isinstance(section, dict):
        raise LimitsError(f"{spec}: [{name}] must be a table of settings")
    return section


def _apply(base: _L, values: dict[str, Any], where: str) -> _L:
    """``base`` with the settings in ``values``, each checked: a positive number, or false for off."""
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise LimitsError(f"{where}: unknown setting(s) {', '.join(unknown)}; expected {', '.join(fields)}")
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == "exempt":
            # a list from a file or JSON; a tuple from the options of a stack in this process (asdict keeps it)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
                raise LimitsError(f"{where}: 'exempt' must be a list of caller identities, e.g. [\"dualwrite\"]")
            changes[name] = tuple(value)
            continue
        whole = name not in ("window_seconds", "seconds")
        can_be_off = name not in ("window_seconds", "concurrent_retry_after")
        if value is False or value is None:
            if not can_be_off:
                raise LimitsError(f"{where}: '{name}' cannot be turned off")
            changes[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
            kind = "a whole number" if whole else "a number"
            raise LimitsError(f"{where}: '{name}' must be {kind}{' or false' if can_be_off else ''}, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise LimitsError(f"{where}: '{name}' must be above 0, got {value!r}")
        changes[name] = float(value) if not whole else int(value)
    return dataclasses.replace(base, **changes)
