"""What the map lifecycle needs from the async drainers (:class:`bridge.worker.AsyncWorker` implements it).

The lifecycle decides when a map runs, pauses and changes mode; the drainers apply the change feeds of maps
in async mode. The two call each other, so the lifecycle knows the drainers only through this interface,
and the bridge runtime hands them over when it composes the two (:meth:`bridge.lifecycle.Lifecycle.attach_drainer`).
A bridge without drainers (a lifecycle never given one) runs live maps only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.engine import Source
    from bridge.mapping import TableMap


class AsyncDrainer(ABC):
    """The async drainers, as the lifecycle calls them."""

    @abstractmethod
    def begin(self, table_map: TableMap) -> None:
        """``table_map`` is entering async mode: from now on the drainers apply its changes, starting after the
        source feeds' latest change (initial sync covered what existed)."""

    @abstractmethod
    def wake(self) -> None:
        """A map's state changed: a drainer waiting for news looks again at once."""

    @abstractmethod
    def flush(self, table_map: TableMap) -> int:
        """Apply what is pending for ``table_map`` now (it is leaving async mode); returns how many changes."""

    @abstractmethod
    def position(self, table_map: TableMap, source: Source) -> int:
        """The seq of ``source``'s change feed through which ``table_map``'s changes have been handled."""

    @abstractmethod
    def status_fields(self, table_map: TableMap, row: dict[str, Any]) -> dict[str, Any]:
        """What the status of ``table_map`` (its state ``row``) gains from the feeds: lag, and the queue."""


__all__ = ["AsyncDrainer"]
