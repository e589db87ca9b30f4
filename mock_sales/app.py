"""How mock Sales is assembled from the shared platform: model, dialect, rules, actions and seed."""

from __future__ import annotations

from mock_sales import actions, rules, schema, seed
from sandbox.odata.dataverse import DataverseDialect
from sandbox.runtime import ServiceConfig, ServiceSpec


def _dialect(config: ServiceConfig) -> DataverseDialect:
    return DataverseDialect(max_page_size=int(config.options.get("page_size", 5000)))


SPEC = ServiceSpec(
    name="sales",
    build_model=schema.build_model,
    build_dialect=_dialect,
    behaviors=rules.behaviors,
    register_actions=actions.register_actions,
    seed=seed.seed,
)
