"""Start-up migrations: a schema at the newest revision is left alone without Alembic."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from app.core import migrate


def test_head_is_the_newest_migration() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql://unused"))
    assert script.get_heads() == [migrate.HEAD]


def _record(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def upgrade(config: Any, revision: str) -> None:
        calls.append(revision)

    monkeypatch.setattr(command, "upgrade", upgrade)
    return calls


def test_a_schema_at_head_is_not_migrated_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _record(monkeypatch)
    assert migrate._stored_revisions(database_url) == {migrate.HEAD}
    migrate.upgrade(database_url)
    assert calls == []


def test_a_schema_behind_head_is_migrated(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _record(monkeypatch)
    monkeypatch.setattr(
        migrate, "_stored_revisions", lambda url: {"0011_events_without_foreign_key"}
    )
    migrate.upgrade(database_url)
    assert calls == ["head"]


def test_a_database_that_cannot_tell_goes_to_alembic(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record(monkeypatch)
    # Nothing listens on port 1: Alembic is left to report the failure as it does.
    assert migrate._stored_revisions("postgresql://postgres@127.0.0.1:1/none") is None
    migrate.upgrade("postgresql://postgres@127.0.0.1:1/none")
    assert calls == ["head"]
