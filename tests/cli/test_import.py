from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
