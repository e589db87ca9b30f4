"""Mock Dynamics 365 Sales: a Dataverse Web API emulator for the lead-to-cash tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from sandbox.runtime import ServiceConfig


def create_app(config: ServiceConfig | None = None) -> Flask:
    """The mock Sales Flask app (Dataverse Web API at ``/api/data/v9.2/``, control plane at ``/_sandbox/``)."""
    from mock_sales.app import create_app as build

    return build(config)
