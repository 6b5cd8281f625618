from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import _database_problem
from app.events import importer
from app.events.importer import ImportSummary
from app.policies.default import default_document
from app.policies.service import current_policy
from tests.support.cli import run_cli

EVENTS_CSV = """event_id,customer_id,type,occurred_at,amount,currency,margin,rating,channel,attributes
o-1,c-1,order,2026-01-02T10:00:00Z,129.90,EUR,20,,web,"{""sku"": ""A-1""}"
o-2,c-1,order,2026-02-02T10:00:00Z,-5,,,,web,
f-1,c-2,feedback,2026-02-03T10:00:00+08:00,,,,9,,
o-3,c-2,order,2026-02-04T10:00:00,10,,,,,
o-4,c-3,order,2026-02-05T10:00:00Z,15.5,USD,,,,{bad json
"""

CUSTOMERS_JSONL = """{"customer_id": "c-1", "name": " Acme ", "country": "de", "email": "A@B.example"}

{"customer_id": "c-2", "customer_type": "business", "attributes": {"tier": "gold"}}
{"customer_id": "bad id", "name": "x"}
not json
{"customer_id": "c-3", "country": "Narnia"}
"""


async def test_events_csv_stores_valid_rows_and_names_rejects(
    database_url: str, tmp_path: Path, session: AsyncSession
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS_CSV)
    result = run_cli(database_url, "import", str(path))
    assert result.returncode == 1
    assert result.stdout == "imported 2, duplicates 0, rejected 3\n"
    rejected = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in rejected] == ["line 3", "line 5", "line 6"]
    assert "amount" in rejected[0]
    stored = (await session.execute(text("SELECT event_id FROM events ORDER BY 1"))).scalars()
    assert list(stored) == ["f-1", "o-1"]

    again = run_cli(database_url, "import", str(path))
    assert again.stdout == "imported 0, duplicates 2, rejected 3\n"


async def test_customers_jsonl(database_url: str, tmp_path: Path, session: AsyncSession) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_text(CUSTOMERS_JSONL)
    result = run_cli(database_url, "import", str(path))
    assert result.returncode == 1
    assert result.stdout == "imported 2, duplicates 0, rejected 3\n"
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [
        "line 4",
        "line 5",
        "line 6",
    ]
    row = (
        await session.execute(
            text("SELECT name, country, email FROM customers WHERE external_id = 'c-1'")
        )
    ).one()
    assert tuple(row) == ("Acme", "DE", "a@b.example")
    clean = tmp_path / "clean.ndjson"
    clean.write_text('{"customer_id": "c-1", "name": "Acme"}\n')
    again = run_cli(database_url, "import", str(clean), "--kind", "customers")
    assert (again.returncode, again.stdout) == (0, "imported 0, duplicates 1, rejected 0\n")


@pytest.mark.parametrize(
    ("name", "content"),
    [("missing.csv", None), ("data.xlsx", b"x"), ("latin1.csv", b"event_id\n\xe9\xe9\n")],
)
def test_unreadable_files_exit_2(
    database_url: str, tmp_path: Path, name: str, content: bytes | None
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run_cli(database_url, "import", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error:")


async def test_a_value_the_database_refuses_rejects_only_its_row(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await current_policy(session)
    await session.commit()
    rejected: list[tuple[int, str]] = []
    summary = ImportSummary()
    target = importer._Events(session, summary, lambda line, why: rejected.append((line, why)))
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    for line in range(1, 8):
        # Past NUMERIC(24, 6): only PostgreSQL can tell (validation would stop it first).
        amount = Decimal("1e30") if line == 5 else Decimal(line)
        record = (line, f"e-{line}", f"c-{line % 3}", "order", moment, amount, "USD")
        target.stage((*record, None, None, None, None))
    await target.flush()
    assert (summary.imported, summary.duplicates) == (6, 0)
    assert [line for line, _ in rejected] == [5]
    assert "refused by the database" in rejected[0][1] and "22003" in rejected[0][1]
    stored = (await session.execute(text("SELECT count(*) FROM events"))).scalar_one()
    assert stored == 6


async def test_many_stages_keep_every_valid_row(
    session: AsyncSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "STAGE", 50)
    lines = []
    for n in range(1, 301):
        amount = "-1" if n % 97 == 0 else f"{n}.5"
        event = {
            "event_id": f"e-{n}",
            "customer_id": f"c-{n % 40}",
            "type": "order",
            "occurred_at": "2026-01-02T10:00:00Z",
            "amount": amount,
            "currency": "EUR",
        }
        lines.append(orjson.dumps(event).decode())
    lines.append(lines[0])  # a repeat within the file
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rejected: list[int] = []
    summary = await importer.import_file(
        session, path=path, kind=None, reject=lambda line, _: rejected.append(line)
    )
    assert rejected == [97, 194, 291]
    assert (summary.imported, summary.duplicates, summary.rejected) == (297, 1, 3)
    row = (
        await session.execute(
            text(
                "SELECT count(*), count(DISTINCT customer_id), sum(amount),"
                " bool_and(amount_base = amount * 1.08) FROM events"
            )
        )
    ).one()
    expected = sum(Decimal(f"{n}.5") for n in range(1, 301) if n % 97)
    rate = default_document()["exchange_rates"]["EUR"]
    assert (row[0], row[1], row[2]) == (297, 40, expected)
    assert rate == "1.08" and row[3] is True


async def test_customers_named_twice_keep_both_rows_fields(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_text(
        '{"customer_id": "c-1", "name": "First", "country": "de"}\n'
        '{"customer_id": "c-1", "name": "Second", "email": "x@y.example"}\n'
    )
    summary = await importer.import_file(
        session, path=path, kind="customers", reject=lambda *_: None
    )
    assert (summary.imported, summary.duplicates) == (1, 1)
    row = (
        await session.execute(
            text("SELECT name, country, email FROM customers WHERE external_id = 'c-1'")
        )
    ).one()
    assert tuple(row) == ("Second", "DE", "x@y.example")


def test_a_refused_statement_is_not_called_unreachable() -> None:
    refused = asyncpg.NumericValueOutOfRangeError("numeric field overflow")
    assert _database_problem(refused) == (
        "the database refused the work: numeric field overflow (SQLSTATE 22003)"
    )
    assert _database_problem(OSError("connection refused")).startswith(
        "the database is not reachable"
    )


async def test_jsonl_escapes_bom_and_crlf_are_read_like_the_api(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + b'{"customer_id": "c-1", "name": "Caf\\u00e9 \\"Zur Post\\""}\r\n'
        + b'{"customer_id": "c-2", "name": "a\\u0000b"}\r\n'
        + b'{"customer_id": "c-3", "name": "\\ud800"}\r\n'
        + b'{"customer_id": "c-4", "attributes": {"note": "x\\ty", "n": 18446744073709551615}}\n'
        + b'{"customer_id": "c-5", "created_at": "2025-02-29T10:00:00Z"}\n'
        + b'{"customer_id": "c-6", "attributes": {"k": "v\x7f"}}'
    )
    rejected: list[tuple[int, str]] = []
    summary = await importer.import_file(
        session, path=path, kind=None, reject=lambda line, why: rejected.append((line, why))
    )
    assert (summary.imported, summary.rejected) == (1, 5)
    assert [line for line, _ in rejected] == [2, 3, 4, 5, 6]
    assert "NUL" in rejected[0][1]
    assert "attributes" in rejected[2][1] and "created_at" in rejected[3][1]
    name = await session.execute(text("SELECT name FROM customers WHERE external_id = 'c-1'"))
    assert name.scalar_one() == 'Café "Zur Post"'
