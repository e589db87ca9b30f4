"""Static files the browser pages share: the vendored libraries (htmx, uPlot) and one stylesheet.

Every service mounts :func:`static_blueprint` at ``/_static/``: the mocks' data browser and the bridge
console load ``/_static/vendor/htmx.min.js`` and friends from their own origin, so the pages work without
a network (see ``vendor/README.md`` for versions and checksums).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from werkzeug.exceptions import NotFound

#: the folder served at ``/_static/`` (only its subfolders :data:`SERVED`: never this package's source)
STATIC_DIR = Path(__file__).parent
SERVED = ("vendor", "app")
#: the URL prefix every service serves :data:`STATIC_DIR` under
STATIC_PREFIX = "/_static"


def static_blueprint() -> Blueprint:
    """A blueprint serving this folder at ``/_static/`` (cached for an hour: the files change only with a release)."""
    blueprint = Blueprint("sandbox_static", __name__)

    @blueprint.get(f"{STATIC_PREFIX}/<folder>/<path:filename>")
    def static_file(folder: str, filename: str) -> Response:
        if folder not in SERVED:
            raise NotFound()
        return send_from_directory(STATIC_DIR / folder, filename, max_age=3600)

    return blueprint


__all__ = ["STATIC_DIR", "STATIC_PREFIX", "static_blueprint"]
