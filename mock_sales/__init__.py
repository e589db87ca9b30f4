"""Mock Dynamics 365 Sales: a Dataverse Web API emulator for the lead-to-cash tables.

The same shape as :mod:`mock_scm`: ``app`` (assembly), ``settings`` (configuration from the service config),
``schema`` (tables as data), ``values``, ``errors``, ``status`` (state models and what each state allows),
``lookups``, ``pricing``, ``rules`` (what every write does), ``actions`` (the lead-to-cash actions, each
declared once), ``numbering`` and ``seed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from sandbox.runtime import ServiceConfig


def create_app(config: ServiceConfig | None = None) -> Flask:
    """The mock Sales Flask app (Dataverse Web API at ``/api/data/v9.2/``, control plane at ``/_sandbox/``)."""
    from mock_sales.app import create_app as build

    return build(config)
