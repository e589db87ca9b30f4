"""Dual-write's live-sync limits, enforced when a stack runs with ``--limits real`` (or a file that sets them).

One source transaction is one live unit: dual-write refuses a unit of more than 1,000 records, or one that takes
longer than 2 minutes, and both sides roll back (``docs/reference/limits.md`` section 3; DW ``sync-limits``).
The engine asks :class:`LiveUnitLimits` before it plans a unit (records) and again before it writes (time
spent so far); a refusal is a :class:`~bridge.engine.SyncError` with status 400, so the source rolls back and
its caller reads why. Time spent in the target's own writes is not cut short: the check comes before them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from sandbox.limits import LIMITS_OPTION, LiveSyncLimits

__all__ = ["LIMITS_OPTION", "LiveUnitLimits", "install_live_limits", "live_unit_limits"]


@dataclass
class LiveUnitLimits:
    """The live-sync limits of one bridge; ``clock`` is injectable so tests need not wait two minutes."""

    limits: LiveSyncLimits
    clock: Callable[[], float] = field(default=time.monotonic)

    def records_refusal(self, records: int) -> str | None:
        """Why a unit of ``records`` source records is refused (None: it is not)."""
        limit = self.limits.records
        if limit is None or records <= limit:
            return None
        return (
            f"The transaction has {records} records; dual-write live synchronization supports at most {limit} "
            f"record{'' if limit == 1 else 's'} per transaction. Split the work into smaller transactions."
        )

    def time_refusal(self, started: float) -> str | None:
        """Why a unit that began at ``started`` (on :attr:`clock`) is refused now (None: it is within its time)."""
        limit = self.limits.seconds
        if limit is None:
            return None
        spent = self.clock() - started
        if spent <= limit:
            return None
        return (
            f"The transaction took {spent:.1f} seconds; dual-write live synchronization allows at most {limit:g} "
            f"seconds per transaction, so it was rolled back. Split the work into smaller transactions."
        )


def live_unit_limits(limits: LiveSyncLimits | None) -> LiveUnitLimits | None:
    """The engine's guard for ``limits`` (None when no live-sync limit is set)."""
    return LiveUnitLimits(limits) if limits is not None and limits.active else None


def install_live_limits(bridge_app: Flask, options: dict[str, Any]) -> None:
    """Apply the live-sync limits of the bridge's options (``StackConfig.options["bridge"]``, the
    :data:`LIMITS_OPTION` that :meth:`sandbox.limits.LimitsProfile.stack_options` writes) to its engine."""
    value = options.get(LIMITS_OPTION)
    limits = LiveSyncLimits.from_dict(dict(value)) if value else None
    bridge_app.extensions["bridge"].engine.live_limits = live_unit_limits(limits)
