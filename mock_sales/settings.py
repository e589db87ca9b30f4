"""How one mock Sales behaves where Dataverse is configurable: read once from the service config, then frozen.

The same shape as :mod:`mock_scm.settings`: each app builds its :class:`SalesSettings` from
``ServiceConfig.options`` and hands it to the parts that need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SalesSettings:
    """The configurable behaviour of one mock Sales, with Dataverse's defaults."""

    #: Rows per page of a collection read (Dataverse pages at 5,000).
    page_size: int = 5000

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SalesSettings:
        """Settings from ``ServiceConfig.options``; options this class does not name are left to others."""
        values: dict[str, Any] = {}
        if options.get("page_size") is not None:
            values["page_size"] = int(options["page_size"])
        return cls(**values)
