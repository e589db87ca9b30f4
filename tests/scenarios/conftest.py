"""Fixtures of the scenario tests: the in-process stacks the runner builds come from the session's golden stack."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

import leadtocash.runner
import leadtocash.stack
from leadtocash.stack import Stack, StackConfig
from tests.golden import SEED, Golden


@pytest.fixture
def golden_stacks(golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Stack]]:
    """``build_stack`` answers the default stack (in memory, seed 1, the shipped maps started) with a copy of
    the golden stack, the same state without the seeding and initial sync; any other stack (other maps,
    seed or storage) is built for real. Yields the copies handed out."""
    real = leadtocash.stack.build_stack
    handed_out: list[Stack] = []
    numbers = itertools.count(1)

    def build_stack(
        config: StackConfig, *, bridge: bool = True, start_maps: bool = True, maps_dirs: list[Path] | None = None
    ) -> Stack:
        default = (
            config.memory
            and config.seed == SEED
            and not config.database_urls
            and not config.options
            and bridge
            and start_maps
            and not maps_dirs
        )
        if not default:
            return real(config, bridge=bridge, start_maps=start_maps, maps_dirs=maps_dirs)
        stack = golden.stack(tmp_path / f"bridge-{next(numbers)}.sqlite")
        handed_out.append(stack)
        return stack

    # the runner imports it from the module when it opens an in-process context
    monkeypatch.setattr(leadtocash.stack, "build_stack", build_stack)
    if hasattr(leadtocash.runner, "build_stack"):  # in case it is imported there by name one day
        monkeypatch.setattr(leadtocash.runner, "build_stack", build_stack)
    yield handed_out
