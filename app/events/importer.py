"""Load a CRM export (CSV or JSON Lines) through the same validation and storage as the API.

The file is streamed: rows are validated one by one, valid ones stored in batches of up
to 1000, each batch in its own transaction; rejected rows are reported with their line
number and never stored. Re-importing a file adds nothing (event ids and customer ids
are idempotency keys).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.problems import Invalid
from app.core.types import is_external_id
from app.customers import repository as customers
from app.customers.schemas import CustomerUpsert
from app.events import service as events
from app.events.schemas import EventIn
from app.policies.service import current_policy

Kind = Literal["customers", "events"]
BATCH = 1000
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class UnreadableFile(Exception):
    """The file cannot be imported at all (exit status 2)."""


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0

    def line(self) -> str:
        return f"imported {self.imported}, duplicates {self.duplicates}, rejected {self.rejected}"


Reject = Callable[[int, str], None]
Progress = Callable[[int], None]


def _csv_value(key: str, value: str) -> Any:
    if key == "attributes":
        return orjson.loads(value)
    if key == "rating" and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _csv_rows(handle: io.TextIOWrapper) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.DictReader(handle)
    if not reader.fieldnames:
        raise UnreadableFile("the CSV file has no header row")
    line = 1
    for record in reader:
        start, line = line + 1, reader.line_num
        if None in record:
            yield start, "more cells than header columns"
            continue
        try:
            yield (
                start,
                {
                    key: _csv_value(key, value)
                    for key, value in record.items()
                    if key and value is not None and value.strip() != ""
                },
            )
        except orjson.JSONDecodeError:
            yield start, "attributes is not valid JSON"


def _jsonl_rows(handle: io.TextIOWrapper) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            yield number, "not valid JSON"
            continue
        yield number, value if isinstance(value, dict) else "not a JSON object"


def open_rows(path: Path) -> tuple[Iterator[tuple[int, dict[str, Any] | str]], io.TextIOWrapper]:
    """(line number, row or rejection reason) for every row of the file, lazily."""
    file_format = SUFFIXES.get(path.suffix.lower())
    if file_format is None:
        raise UnreadableFile(f"unknown file type '{path.suffix}': use .csv, .jsonl or .ndjson")
    try:
        handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise UnreadableFile(f"cannot open {path}: {exc.strerror}") from exc
    rows = _csv_rows(handle) if file_format == "csv" else _jsonl_rows(handle)
    return rows, handle


def detect_kind(first: dict[str, Any]) -> Kind:
    return "events" if "event_id" in first else "customers"


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        field = ".".join(str(p) for p in error.get("loc", ())) or "row"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


async def import_file(
    session: AsyncSession,
    *,
    path: Path,
    kind: Kind | None,
    reject: Reject,
    progress: Progress | None = None,
) -> ImportSummary:
    rows, handle = open_rows(path)
    summary = ImportSummary()
    try:
        importer = _EventImport(session) if kind == "events" else None
        customer_import = _CustomerImport(session) if kind == "customers" else None
        for number, row in rows:
            if isinstance(row, str):
                summary.rejected += 1
                reject(number, row)
                continue
            if importer is None and customer_import is None:
                if detect_kind(row) == "events":
                    importer = _EventImport(session)
                else:
                    customer_import = _CustomerImport(session)
            target = importer or customer_import
            assert target is not None
            problem = await target.add(row, summary)
            if problem is not None:
                summary.rejected += 1
                reject(number, problem)
            if progress is not None:
                progress(number)
        for target in (importer, customer_import):
            if target is not None:
                await target.flush(summary)
    except UnicodeDecodeError as exc:
        raise UnreadableFile("the file is not UTF-8 text") from exc
    except csv.Error as exc:
        raise UnreadableFile(f"malformed CSV: {exc}") from exc
    finally:
        handle.close()
    return summary


class _EventImport:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.buffer: list[EventIn] = []

    async def add(self, row: dict[str, Any], summary: ImportSummary) -> str | None:
        try:
            event = EventIn.model_validate(row)
        except ValidationError as exc:
            return _reason(exc)
        policy = (await current_policy(self.session)).document
        try:
            events.check_currencies([event], policy)
        except Invalid as exc:
            return "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
        self.buffer.append(event)
        if len(self.buffer) >= BATCH:
            await self.flush(summary)
        return None

    async def flush(self, summary: ImportSummary) -> None:
        if not self.buffer:
            return
        result = await events.ingest(self.session, events=self.buffer, source="import")
        summary.imported += result.accepted
        summary.duplicates += result.duplicates
        self.buffer = []


class _CustomerImport:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.pending = 0

    async def add(self, row: dict[str, Any], summary: ImportSummary) -> str | None:
        customer_id = row.pop("customer_id", None)
        if not isinstance(customer_id, str) or not is_external_id(customer_id):
            return "customer_id: missing or not 1-128 characters of A-Z a-z 0-9 . _ : @ -"
        try:
            data = CustomerUpsert.model_validate(row)
        except ValidationError as exc:
            return _reason(exc)
        values = data.model_dump(include=data.model_fields_set)
        created = await customers.upsert(self.session, external_id=customer_id, values=values)
        if created:
            summary.imported += 1
        else:
            summary.duplicates += 1
        self.pending += 1
        if self.pending >= BATCH:
            await self.flush(summary)
        return None

    async def flush(self, summary: ImportSummary) -> None:
        await self.session.commit()
        self.pending = 0
