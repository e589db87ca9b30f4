"""One bridged stack per fuzz module (restored from the golden databases): hypothesis runs many examples
against it, so examples share its state, and a test clears what would bleed into the next (faults)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadtocash.stack import Stack
from tests.golden import Golden


@pytest.fixture(scope="module")
def stack(golden: Golden, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    restored = golden.stack(tmp_path_factory.mktemp("fuzz") / "bridge.sqlite")
    yield restored
    restored.close()
