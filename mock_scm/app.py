"""How mock SCM is assembled from the shared platform: model, dialect, rules, actions and seed.

The rules, the actions and the seeder of one app run with that app's :class:`ScmSettings` (built from
``ServiceConfig.options``), which the app also keeps in ``app.extensions`` for whoever serves or inspects it.
"""

from __future__ import annotations

from flask import Flask

from mock_scm import actions, rules, schema, seed
from mock_scm.settings import ScmSettings
from sandbox.odata.fno import FnoDialect
from sandbox.odata.fno.metadata import CatalogFacts, MetadataCatalog
from sandbox.odata.fno.metadataservice import metadata_blueprint
from sandbox.odata.fno.platform import SYSTEM_ENTITIES
from sandbox.runtime import ServiceConfig, ServiceSpec, build_app, runtime_of

#: Where an app keeps its :class:`ScmSettings` in ``app.extensions``.
SETTINGS_EXTENSION = "mock_scm.settings"


def service_spec(settings: ScmSettings) -> ServiceSpec:
    """Mock SCM as a service of the platform, every part of it configured by ``settings``."""
    return ServiceSpec(
        name="scm",
        build_model=schema.build_model,
        build_dialect=lambda _config: FnoDialect(
            default_company=settings.default_company, max_page_size=settings.page_size
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
    """``/Metadata/``, derived from the app's model and actions when first asked (most apps never are)."""
    runtime = runtime_of(app)
    built: list[MetadataCatalog] = []

    def catalog() -> MetadataCatalog:
        if not built:
            facts = CatalogFacts(categories=schema.ENTITY_CATEGORIES, system_entities=SYSTEM_ENTITIES)
            built.append(MetadataCatalog(runtime.model, runtime.actions.all(), facts))
        return built[0]

    app.register_blueprint(metadata_blueprint(catalog))


def settings_of(app: Flask) -> ScmSettings:
    """The settings an app built by :func:`create_app` runs with."""
    settings: ScmSettings = app.extensions[SETTINGS_EXTENSION]
    return settings
