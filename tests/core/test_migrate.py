"""Start-up migrations: a schema at the newest revision is left alone without Alembic."""

from __future__ import annotations

from typing import Any

import pytest

from app.core import migrate


def _record(calls: list[Any]) -> Any:
    def upgrade(config: Any, revision: str) -> None:
        calls.append(revision)

    return upgrade


def test_a_schema_at_head_is_not_migrated_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(migrate.command, "upgrade", _record(calls))
    migrate.upgrade(database_url)
    assert calls == []


def test_a_schema_behind_head_is_migrated(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(migrate.command, "upgrade", _record(calls))
    heads = migrate._stored_revisions(database_url)
    assert heads is not None and len(heads) == 1
    monkeypatch.setattr(
        migrate, "_stored_revisions", lambda url: {"0011_events_without_foreign_key"}
    )
    migrate.upgrade(database_url)
    assert calls == ["head"]


def test_a_database_that_cannot_tell_goes_to_alembic(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(migrate.command, "upgrade", _record(calls))
    # Nothing listens on port 1: Alembic is left to report the failure as it does.
    assert migrate._stored_revisions("postgresql://postgres@127.0.0.1:1/none") is None
    migrate.upgrade("postgresql://postgres@127.0.0.1:1/none")
    assert calls == ["head"]
