"""The per-transaction memo of sandbox/db.py (the rest of Database is exercised by every other test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.db import Database


@pytest.fixture
def db() -> Iterator[Database]:
    database = Database("sqlite://", [])
    yield database
    database.dispose()


def test_memo_lives_for_one_transaction(db: Database) -> None:
    """What a transaction memoizes is gone in the next one, committed or rolled back."""
    with db.transaction():
        db.memo["x"] = 1
        with db.transaction():
            assert db.memo["x"] == 1  # nested levels share it
    with pytest.raises(RuntimeError), db.transaction():
        assert "x" not in db.memo
        db.memo["y"] = 2
        raise RuntimeError("roll back")
    with db.transaction():
        assert db.memo == {}


def test_memo_is_emptied_when_a_savepoint_rolls_back_and_kept_when_it_releases(db: Database) -> None:
    """A savepoint that fails may have memoized rows it wrote itself; one that succeeds keeps its values."""
    with db.transaction():
        db.memo["before"] = 1
        with db.savepoint():
            db.memo["kept"] = 2
        assert db.memo == {"before": 1, "kept": 2}
        with pytest.raises(RuntimeError), db.savepoint():
            db.memo["doomed"] = 3
            raise RuntimeError("part failed")
        assert db.memo == {}
        db.memo["again"] = 4
        db.forget_memo()
        assert db.memo == {}
