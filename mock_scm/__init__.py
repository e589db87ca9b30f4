"""Mock Dynamics 365 Supply Chain Management: an F&O OData emulator for the order-to-cash processes.

The same shape as :mod:`mock_sales`: ``app`` (assembly), ``settings`` (configuration from the service config),
``schema`` (entities as data), ``values``, ``errors`` (Infolog refusals), ``status``, ``lookups``, ``pricing``,
``rules`` (what every write does), ``actions`` (bound OData actions), ``numbering`` and ``seed``; SCM's
processes add ``inventory``, ``credit``, ``quotations``, ``orders`` and ``payments``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from sandbox.runtime import ServiceConfig


def create_app(config: ServiceConfig | None = None) -> Flask:
    """The mock SCM Flask app (F&O OData at ``/data/``, control plane at ``/_sandbox/``)."""
    from mock_scm.app import create_app as build

    return build(config)
