"""The dual-write bridge: table maps as data, live sync with rollback, initial sync, pause and catch-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from bridge.app import BridgeConfig


def create_app(config: BridgeConfig) -> Flask:
    """The bridge Flask app (see :mod:`bridge.app`); ``config`` carries the two services' models."""
    from bridge.app import create_app as build

    return build(config)
