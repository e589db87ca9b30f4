"""How mock Sales is assembled from the shared platform: model, dialect, rules, actions and seed.

The same shape as :mod:`mock_scm.app`: the app is built for its :class:`SalesSettings` (read from
``ServiceConfig.options``) and keeps them in ``app.extensions``.
"""

from __future__ import annotations

from flask import Flask

from mock_sales import actions, rules, schema, seed
from mock_sales.settings import SalesSettings
from sandbox.odata.dataverse import DataverseDialect
from sandbox.runtime import ServiceConfig, ServiceSpec, build_app

#: Where an app keeps its :class:`SalesSettings` in ``app.extensions``.
SETTINGS_EXTENSION = "mock_sales.settings"


def service_spec(settings: SalesSettings) -> ServiceSpec:
    """Mock Sales as a service of the platform, configured by ``settings``."""
    return ServiceSpec(
        name="sales",
        build_model=schema.build_model,
        build_dialect=lambda _config: DataverseDialect(max_page_size=settings.page_size),
        behaviors=rules.behaviors,
        register_actions=actions.register_actions,
        seed=seed.seed,
    )


def create_app(config: ServiceConfig | None = None) -> Flask:
    """The mock Sales Flask app for ``config``, with its settings read from ``config.options``."""
    config = config or ServiceConfig()
    settings = SalesSettings.from_options(config.options)
    app = build_app(service_spec(settings), config)
    app.extensions[SETTINGS_EXTENSION] = settings
    return app


def settings_of(app: Flask) -> SalesSettings:
    """The settings an app built by :func:`create_app` runs with."""
    settings: SalesSettings = app.extensions[SETTINGS_EXTENSION]
    return settings
