"""Latency profiles: a delay per service and operation, so sync lag under load resembles a cloud tenant rather
than loopback (``sandbox up --latency-profile cloud|FILE``).

Each service (``sales``, ``scm``) maps operations to a distribution of milliseconds:

* ``read`` (GET/HEAD), ``write`` (POST/PATCH/PUT/DELETE), ``batch`` (``$batch``), ``metadata`` (``$metadata``,
  ``EntityDefinitions``, F&O's ``/Metadata/``), and ``default`` for anything a profile leaves out;
* a distribution is ``{fixed_ms = 40}``, or ``{p50_ms = 60, p95_ms = 200}`` (lognormal through those two
  percentiles), each bounded by ``max_ms`` (default ten times the p95, never above :data:`MAX_DELAY_MS`).

The built-in ``cloud`` figures are assumptions, not measurements (no per-request latency of Dataverse or F&O is
published; ``docs/reference/limits.md`` section 5 says what they rest on). A file (TOML or JSON) overrides them
(``base = "none"`` starts from no delay); ``seed = N`` makes the delays repeatable.

The delay is applied by a request hook after the limits hook, so a throttled request answers at once (as a
429 does) and an admitted one spends its delay inside its execution time.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask

from sandbox.limits.profile import LimitsError, read_settings_file
from sandbox.limits.throttle import exempt

#: the key of a mock's ``ServiceConfig.options`` holding its latency (a dict: operations and ``seed``)
LATENCY_OPTION = "latency"
OPERATIONS = ("read", "write", "batch", "metadata", "default")
LATENCY_SECTIONS = ("sales", "scm")
#: no delay is ever longer than this (a typo in a profile must not hang a stack)
MAX_DELAY_MS = 60_000.0
#: the z-score of the 95th percentile of a standard normal distribution
_Z95 = 1.6448536269514722

Sleeper = Callable[[float], None]


@dataclass(frozen=True)
class Distribution:
    """Milliseconds: fixed, or lognormal through ``p50_ms`` and ``p95_ms``; never above ``max_ms``."""

    p50_ms: float
    p95_ms: float
    max_ms: float

    @property
    def fixed(self) -> bool:
        return self.p50_ms == self.p95_ms

    def sample(self, rng: random.Random) -> float:
        if self.fixed or self.p50_ms <= 0:
            value = self.p50_ms
        else:
            sigma = (math.log(self.p95_ms) - math.log(self.p50_ms)) / _Z95
            value = rng.lognormvariate(math.log(self.p50_ms), sigma)
        return min(value, self.max_ms)

    def to_dict(self) -> dict[str, float]:
        if self.fixed:
            return {"fixed_ms": self.p50_ms, "max_ms": self.max_ms}
        return {"p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "max_ms": self.max_ms}

    @classmethod
    def parse(cls, value: Any, where: str) -> Distribution:
        """``{fixed_ms}`` or ``{p50_ms, p95_ms}``, with an optional ``max_ms``; raises :class:`LimitsError`."""
        if not isinstance(value, dict):
            raise LimitsError(f"{where}: must be a table like {{p50_ms = 60, p95_ms = 200}} or {{fixed_ms = 40}}")
        unknown = sorted(set(value) - {"fixed_ms", "p50_ms", "p95_ms", "max_ms"})
        if unknown:
            raise LimitsError(
                f"{where}: unknown setting(s) {', '.join(unknown)}; expected fixed_ms, or p50_ms and p95_ms"
            )
        numbers = {k: _milliseconds(v, f"{where}.{k}") for k, v in value.items()}
        if "fixed_ms" in numbers:
            if "p50_ms" in numbers or "p95_ms" in numbers:
                raise LimitsError(f"{where}: give fixed_ms, or p50_ms and p95_ms, not both")
            p50 = p95 = numbers["fixed_ms"]
        elif "p50_ms" in numbers and "p95_ms" in numbers:
            p50, p95 = numbers["p50_ms"], numbers["p95_ms"]
            if p95 < p50:
                raise LimitsError(f"{where}: p95_ms ({p95:g}) is below p50_ms ({p50:g})")
            if p50 == 0 < p95:
                raise LimitsError(f"{where}: a lognormal needs p50_ms above 0 (or use fixed_ms)")
        else:
            raise LimitsError(f"{where}: give fixed_ms, or both p50_ms and p95_ms")
        ceiling = numbers.get("max_ms", min(MAX_DELAY_MS, max(p95 * 10, p95)))
        if ceiling > MAX_DELAY_MS:
            raise LimitsError(f"{where}: max_ms must be at most {MAX_DELAY_MS:g}, got {ceiling:g}")
        if ceiling < p50:
            raise LimitsError(f"{where}: max_ms ({ceiling:g}) is below the median ({p50:g})")
        return cls(p50, p95, ceiling)


def _milliseconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise LimitsError(f"{where}: must be a number of milliseconds, 0 or more, got {value!r}")
    return float(value)


def _lognormal(p50: float, p95: float) -> Distribution:
    return Distribution(p50, p95, p95 * 10)


#: assumed figures for a cloud tenant reached from the same region (docs/reference/limits.md section 5)
CLOUD: dict[str, dict[str, Distribution]] = {
    "sales": {
        "read": _lognormal(60, 200),
        "write": _lognormal(120, 400),
        "batch": _lognormal(300, 1200),
        "metadata": _lognormal(100, 400),
        "default": _lognormal(100, 350),
    },
    "scm": {
        "read": _lognormal(150, 600),
        "write": _lognormal(300, 1200),
        "batch": _lognormal(800, 3000),
        "metadata": _lognormal(200, 1000),
        "default": _lognormal(250, 1000),
    },
}


@dataclass(frozen=True)
class LatencyProfile:
    """Distributions per service and operation; ``seed`` makes the delays repeatable."""

    name: str
    services: dict[str, dict[str, Distribution]] = field(default_factory=dict)
    seed: int | None = None

    def stack_options(self) -> dict[str, dict[str, Any]]:
        """Per mock service, the option that installs its delays (none for a service without any)."""
        out: dict[str, dict[str, Any]] = {}
        for name, operations in self.services.items():
            if operations:
                value: dict[str, Any] = {op: dist.to_dict() for op, dist in operations.items()}
                if self.seed is not None:
                    value["seed"] = self.seed
                out[name] = {LATENCY_OPTION: value}
        return out


def load_latency_profile(spec: str) -> LatencyProfile:
    """``cloud``, ``none``, or the path of a TOML/JSON file overriding one of them; raises :class:`LimitsError`."""
    if spec == "cloud":
        return LatencyProfile("cloud", {name: dict(ops) for name, ops in CLOUD.items()})
    if spec == "none":
        return LatencyProfile("none")
    values = read_settings_file(spec, "latency profile")
    base = values.pop("base", "cloud")
    if base not in ("cloud", "none"):
        raise LimitsError(f"{spec}: 'base' must be cloud or none, got {base!r}")
    seed = values.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise LimitsError(f"{spec}: 'seed' must be a whole number, got {seed!r}")
    unknown = sorted(set(values) - set(LATENCY_SECTIONS))
    if unknown:
        raise LimitsError(f"{spec}: unknown section(s) {', '.join(unknown)}; expected {', '.join(LATENCY_SECTIONS)}")
    services = {name: dict(ops) for name, ops in CLOUD.items()} if base == "cloud" else {}
    for name in LATENCY_SECTIONS:
        if name in values:
            services[name] = {**services.get(name, {}), **parse_operations(values[name], f"{spec} [{name}]")}
    return LatencyProfile(spec, services, seed)


def parse_operations(values: Any, where: str) -> dict[str, Distribution]:
    """``{operation: distribution}`` checked; raises :class:`LimitsError`."""
    if not isinstance(values, dict):
        raise LimitsError(f"{where}: must be a table of operations ({', '.join(OPERATIONS)})")
    unknown = sorted(set(values) - set(OPERATIONS))
    if unknown:
        raise LimitsError(f"{where}: unknown operation(s) {', '.join(unknown)}; expected {', '.join(OPERATIONS)}")
    return {op: Distribution.parse(value, f"{where} {op}") for op, value in values.items()}


def operation_of(method: str, path: str) -> str:
    """Which operation of a latency profile a request is."""
    if path.endswith("/$batch"):
        return "batch"
    if "$metadata" in path or "/EntityDefinitions" in path or path.startswith("/Metadata/"):
        return "metadata"
    if method.upper() in ("GET", "HEAD"):
        return "read"
    return "write"


class Latency:
    """The delays of one service: draws a delay per request from its operation's distribution."""

    def __init__(
        self,
        operations: dict[str, Distribution],
        seed: int | None = None,
        sleep: Sleeper = time.sleep,
    ) -> None:
        self.operations = operations
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # Random is not to be shared between threads unguarded

    @classmethod
    def from_option(cls, value: dict[str, Any], sleep: Sleeper = time.sleep) -> Latency:
        """From the service option :data:`LATENCY_OPTION` (:meth:`LatencyProfile.service_options`)."""
        values = dict(value)
        seed = values.pop("seed", None)
        return cls(parse_operations(values, "latency"), seed, sleep)

    def delay_ms(self, method: str, path: str) -> float:
        """The delay for one request (0 when its operation and ``default`` are unset)."""
        dist = self.operations.get(operation_of(method, path)) or self.operations.get("default")
        if dist is None:
            return 0.0
        with self._lock:
            return dist.sample(self._rng)

    def apply(self, method: str, path: str) -> float:
        """Sleep for one request's delay; returns the milliseconds slept."""
        delay = self.delay_ms(method, path)
        if delay > 0:
            self.sleep(delay / 1000.0)
        return delay


def install_latency(app: flask.Flask, latency: Latency) -> None:
    """Delay every API request of ``app`` (not the control plane or the data browser). Install it after the
    limits hook: a throttled request answers from before it, without delay."""
    app.extensions["sandbox_latency"] = latency

    def delay() -> None:
        if not exempt(flask.request.path):
            latency.apply(flask.request.method, flask.request.path)

    app.before_request(delay)
