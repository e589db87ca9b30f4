"""What each mock's data browser links to: the same record on the other side and its traces in the bridge console.

The mocks know neither each other nor the bridge's maps, so the composition root tells each mock through its
service option :data:`sandbox.browse.BROWSE_OPTION` (read as :class:`sandbox.browse.BrowseLinks`): the other
mock's origin, the bridge console's origin, and which of its entity sets a map syncs by plain key fields.

:func:`browse_options` computes that option from the maps and the stack's origins, the same whatever the wiring:
:func:`link_data_browsers` sets it on mocks in this process once the bridge is built (its runtime holds the
loaded maps), and :func:`with_browse_links` puts it into the configuration mocks in child processes start from
(``--wire processes``), with the maps loaded here as the bridge will load them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadtocash.clients import MOCKS

if TYPE_CHECKING:
    from bridge.mapping import TableMap
    from leadtocash.stack import Stack, StackConfig

#: each mock and the one its links point at
PEERS = {"sales": "scm", "scm": "sales"}


def synced_sets(maps: Iterable[TableMap]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """By mock, the entity sets the maps sync and, for each, the map, the other side's set and the key pairs
    (this side's property, the other side's); maps keyed through a lookup (lines by their header) are left
    out, since no plain filter on the other side finds their record."""
    synced: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in MOCKS}
    for table_map in maps:
        if any(key.sales[0].nav is not None or len(key.sales) != 1 for key in table_map.keys):
            continue
        pairs = [(key.sales[0].column, key.scm) for key in table_map.keys]
        synced["sales"].setdefault(table_map.sales_table, []).append(
            {"map": table_map.id, "peer_set": table_map.scm_entity, "keys": pairs}
        )
        synced["scm"].setdefault(table_map.scm_entity, []).append(
            {"map": table_map.id, "peer_set": table_map.sales_table, "keys": [(b, a) for a, b in pairs]}
        )
    return synced


def browse_options(maps: Iterable[TableMap], urls: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The option :data:`~sandbox.browse.BROWSE_OPTION` of each mock (plain JSON, so it travels to a child
    process): the other mock's and the bridge's origins from ``urls`` and the sets :func:`synced_sets` finds."""
    synced = synced_sets(maps)
    return {
        name: {"peer": {"name": peer, "url": urls.get(peer)}, "bridge_url": urls.get("bridge"), "synced": synced[name]}
        for name, peer in PEERS.items()
    }


def link_data_browsers(stack: Stack) -> None:
    """Set each in-process mock's data-browser links from the stack's URLs and the bridge's loaded maps."""
    from sandbox.browse import BROWSE_OPTION

    runtime = stack.apps["bridge"].extensions["bridge"] if "bridge" in stack.apps else None
    options = browse_options(runtime.maps if runtime is not None else [], stack.urls)
    for name in MOCKS:
        if name in stack.apps:
            stack.apps[name].extensions["sandbox"].config.options[BROWSE_OPTION] = options[name]


def shipped_and_loaded_maps(maps_dirs: list[Path] | None) -> list[TableMap]:
    """The maps a bridge started with ``maps_dirs`` loads: the shipped ones, then the user's (validated the same
    way, so a bad map fails here with the bridge's own coded error)."""
    from bridge.mapping import BUILTIN_MAPS, load_maps
    from mock_sales.schema import build_model as build_sales_model
    from mock_scm.schema import build_model as build_scm_model

    return load_maps([BUILTIN_MAPS, *(maps_dirs or [])], build_scm_model(), build_sales_model())


def with_browse_links(config: StackConfig, urls: Mapping[str, str], maps_dirs: list[Path] | None) -> StackConfig:
    """``config`` with each mock's data-browser links, for mocks that start from it in child processes:
    ``urls`` must name the mocks' and the bridge's origins before the children start."""
    from sandbox.browse import BROWSE_OPTION

    options = browse_options(shipped_and_loaded_maps(maps_dirs), urls)
    merged = {name: {**config.options.get(name, {}), BROWSE_OPTION: options[name]} for name in MOCKS}
    return dataclasses.replace(config, options={**config.options, **merged})
