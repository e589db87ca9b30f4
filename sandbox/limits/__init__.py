"""Real service limits as a mode, and a latency profile (``sandbox up --limits real --latency-profile cloud``).

- :mod:`sandbox.limits.profile`: what a stack limits (built-in ``real`` and ``off``, or a TOML/JSON file);
- :mod:`sandbox.limits.throttle`: service protection per caller, a request hook answering 429 with
  ``Retry-After`` and each service's own error;
- :mod:`sandbox.limits.latency`: delays per service and operation from a distribution.

:func:`install_service_limits` is the one call a service app makes (``sandbox/runtime.py``). The live-sync
limits of dual-write are applied by the bridge (``bridge/livelimits.py``). See docs/limits.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask

from sandbox.errors import SandboxError
from sandbox.limits.latency import (
    LATENCY_OPTION,
    Distribution,
    Latency,
    LatencyProfile,
    install_latency,
    load_latency_profile,
    operation_of,
)
from sandbox.limits.profile import (
    LIMITS_OPTION,
    LimitsError,
    LimitsProfile,
    LiveSyncLimits,
    ServiceLimits,
    load_profile,
    off_profile,
    real_profile,
)
from sandbox.limits.throttle import Throttle, install_limits, refusal, throttle_of

__all__ = [
    "LATENCY_OPTION",
    "LIMITS_OPTION",
    "Distribution",
    "Latency",
    "LatencyProfile",
    "LimitsError",
    "LimitsProfile",
    "LiveSyncLimits",
    "ServiceLimits",
    "Throttle",
    "install_latency",
    "install_limits",
    "install_service_limits",
    "load_latency_profile",
    "load_profile",
    "off_profile",
    "operation_of",
    "real_profile",
    "refusal",
    "throttle_of",
]


def install_service_limits(
    app: flask.Flask,
    options: dict[str, Any],
    flavour: str,
    identity_of: Callable[[Any], str],
    render_error: Callable[[SandboxError], flask.Response],
) -> None:
    """The limits and the delays ``options`` name (:data:`LIMITS_OPTION`, :data:`LATENCY_OPTION`) on a service
    app; nothing at all without them. ``flavour`` is the dialect's name (``dataverse``, ``fno``): whose errors.

    Call it right after authentication and before the journal (see :func:`install_limits`).
    """
    limits = options.get(LIMITS_OPTION)
    if limits:
        service_limits = ServiceLimits.from_dict(dict(limits))
        if service_limits.active:
            install_limits(app, Throttle(service_limits, flavour), identity_of, render_error)
    latency = options.get(LATENCY_OPTION)
    if latency:
        install_latency(app, Latency.from_option(dict(latency)))
