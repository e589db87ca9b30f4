"""Mock Dynamics 365 Supply Chain Management: an F&O OData emulator for the order-to-cash processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from sandbox.runtime import ServiceConfig


def create_app(config: ServiceConfig | None = None) -> Flask:
    """The mock SCM Flask app (F&O OData at ``/data/``, control plane at ``/_sandbox/``)."""
    from mock_scm.app import create_app as build

    return build(config)
