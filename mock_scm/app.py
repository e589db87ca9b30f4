"""How mock SCM is assembled from the shared platform: model, dialect, rules, actions and seed."""

from __future__ import annotations

from mock_scm import actions, rules, schema, seed
from sandbox.odata.fno import FnoDialect
from sandbox.runtime import ServiceConfig, ServiceSpec


def _dialect(config: ServiceConfig) -> FnoDialect:
    return FnoDialect(
        default_company=str(config.options.get("default_company", "usmf")),
        max_page_size=int(config.options.get("page_size", 10000)),
    )


SPEC = ServiceSpec(
    name="scm",
    build_model=schema.build_model,
    build_dialect=_dialect,
    behaviors=rules.behaviors,
    register_actions=actions.register_actions,
    seed=seed.seed,
)
