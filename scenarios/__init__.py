"""Scripted scenarios: named steps that drive both services through the public APIs and check both sides.

    from scenarios import scenario

    @scenario("lead-to-cash", "A lead becomes cash, across Sales and SCM")
    def run(ctx):
        with ctx.step("Qualify the lead"):
            ...

``ctx`` (:class:`scenarios.context.ScenarioContext`) offers ``ctx.sales`` and ``ctx.scm`` (typed clients,
usable like httpx clients on each service's API root through ``.http``), ``ctx.bridge`` (an httpx client on
the bridge admin API), ``ctx.control`` (control planes), a seeded ``ctx.fake`` and helpers to wait for and
compare synced records; ``ctx.isolated(maps_dirs)`` runs steps on a throwaway stack of the scenario's own (the
runner provides it: scenarios never build stacks).
"""

from __future__ import annotations

from scenarios.registry import REGISTRY, Scenario, scenario

__all__ = ["scenario", "Scenario", "REGISTRY"]
