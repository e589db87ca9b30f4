"""`sandbox up` on SQLite files killed with ``kill -9`` while clients write: the next `sandbox up` on the same data
folder has every write the first one answered, on both sides (the PostgreSQL case is in test_postgres_watchdog.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.leadtocash.kill_under_load import assert_every_answered_write_kept, kill_while_writing

pytestmark = pytest.mark.live


def test_up_on_sqlite_killed_hard_while_writing_keeps_every_answered_write(tmp_path: Path) -> None:
    writes, kept = kill_while_writing(tmp_path)
    assert_every_answered_write_kept(writes, kept)
