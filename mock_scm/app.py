"""How mock SCM is assembled from the shared platform: model, dialect, rules, actions and seed.

The rules, the actions and the seeder of one app run with that app's :class:`ScmSettings` (built from
``ServiceConfig.options``), which the app also keeps in ``app.extensions`` for whoever serves or inspects it.
"""

from __future__ import annotations

from flask import Flask

from mock_scm import actions, rules, schema, seed
from mock_scm.settings import ScmSettings
from sandbox.odata.fno import FnoDialect
from sandbox.odata.fno.metadata import CatalogFacts
from sandbox.odata.fno.metadataservice import metadata_blueprint
from sandbox.runtime import ServiceConfig, ServiceSpec, build_app, runtime_of

#: Where an app keeps its :class:`ScmSettings` in ``app.extensions``.
SETTINGS_EXTENSION = "mock_scm.settings"


def service_spec(settings: ScmSettings) -> ServiceSpec:
    """Mock SCM as a service of the platform, every part of it configured by ``settings``."""
    return ServiceSpec(
        name="scm",
        build_model=schema.build_model,
        build_dialect=lambda _config: FnoDialect(
            default_company=settings.default_company,
            max_page_size=settings.page_size,
            catalog_facts=CatalogFacts(categories=schema.ENTITY_CATEGORIES),
        ),
        behaviors=lambda: rules.behaviors(settings),
        register_actions=lambda registry: actions.register_actions(registry, settings),
        seed=lambda store, seed_value, options: seed.seed(store, seed_value, options, settings=settings),
    )


def create_app(config: ServiceConfig | None = None) -> Flask:
    """The mock SCM Flask app for ``config``, with its settings read from ``config.options``."""
    config = config or ServiceConfig()
    settings = ScmSettings.from_options(config.options)
    app = build_app(service_spec(settings), config)
    app.extensions[SETTINGS_EXTENSION] = settings
    _serve_metadata(app)
    return app


def _serve_metadata(app: Flask) -> None:
    """``/Metadata/``, derived from the app's model and actions by its dialect when first asked."""
    runtime = runtime_of(app)
    dialect = runtime.dialect
    assert isinstance(dialect, FnoDialect)
    app.register_blueprint(metadata_blueprint(lambda: dialect.catalog(runtime.model, runtime.actions.all())))


def settings_of(app: Flask) -> ScmSettings:
    """The settings an app built by :func:`create_app` runs with."""
    settings: ScmSettings = app.extensions[SETTINGS_EXTENSION]
    return settings
