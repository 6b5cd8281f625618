"""Load a CRM export (CSV or JSON Lines) through the same validation and storage as the API.

The file is checked first (readable, UTF-8, a usable CSV header) so that a file that
cannot be imported at all stores nothing. Then it is streamed: rows are validated one by
one, valid ones stored in batches of up to 1000 (each batch its own transaction, through
the events service the API uses), rejected ones reported with their line number and never
stored. Re-importing a file adds nothing: event ids and customer ids are idempotency keys.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.types import is_external_id
from app.customers import repository as customers
from app.customers.schemas import CustomerUpsert
from app.events import service as events
from app.events.schemas import EventIn
from app.policies.service import current_policy

Kind = Literal["customers", "events"]
Format = Literal["csv", "jsonl"]
BATCH = 1000
FORMATS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
COLUMNS: dict[Kind, frozenset[str]] = {
    "events": frozenset(EventIn.model_fields),
    "customers": frozenset({"customer_id", *CustomerUpsert.model_fields}),
}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "events": ("event_id", "customer_id", "type", "occurred_at"),
    "customers": ("customer_id",),
}
_CHUNK = 1 << 20

Row = dict[str, Any] | str  # the row's fields, or why it is rejected
Reject = Callable[[int, str], None]
Progress = Callable[[int, int], None]  # bytes read so far, file size


class UnreadableFile(Exception):
    """The file cannot be imported at all (exit status 2); nothing was stored."""


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0

    def line(self) -> str:
        return f"imported {self.imported}, duplicates {self.duplicates}, rejected {self.rejected}"


@dataclass(frozen=True)
class Source:
    path: Path
    format: Format
    kind: Kind | None  # None: a JSON Lines file without a single object in it
    size: int


def inspect(path: Path, kind: Kind | None) -> Source:
    """What the file holds, or UnreadableFile before anything is stored."""
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise UnreadableFile(f"unknown file type '{path.suffix}': use .csv, .jsonl or .ndjson")
    try:
        size = path.stat().st_size
        _check_utf8(path)
        with _open_text(path) as handle:
            if file_format == "csv":
                kind = _check_header(_header(handle), kind)
            elif kind is None:
                kind = _first_object_kind(handle)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
    return Source(path=path, format=file_format, kind=kind, size=size)


def _open_text(path: Path) -> io.TextIOWrapper:
    # utf-8-sig: spreadsheet programs start their CSV exports with a byte order mark.
    return open(path, encoding="utf-8-sig", newline="")


def _check_utf8(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        offset = 0
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise UnreadableFile(
                    f"the file is not UTF-8 text (byte {offset + exc.start + 1})"
                ) from exc
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise UnreadableFile("the file is not UTF-8 text (it ends mid-character)") from exc


def _header(handle: io.TextIOWrapper) -> list[str]:
    try:
        header = next(csv.reader(handle), None)
    except csv.Error as exc:
        raise UnreadableFile(f"the CSV header cannot be read: {exc}") from exc
    if not header or not any(cell.strip() for cell in header):
        raise UnreadableFile("the CSV file has no header row")
    return [cell.strip() for cell in header]


def _check_header(header: list[str], kind: Kind | None) -> Kind:
    kind = kind or ("events" if "event_id" in header else "customers")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise UnreadableFile(f"the CSV header repeats {', '.join(repeated)}")
    missing = [c for c in REQUIRED[kind] if c not in header]
    if missing:
        raise UnreadableFile(f"the CSV header lacks {', '.join(missing)}, needed for {kind}")
    unknown = [c for c in header if c not in COLUMNS[kind]]
    if unknown:
        raise UnreadableFile(
            f"unknown CSV column(s) for {kind}: {', '.join(unknown)} "
            f"(expected: {', '.join(sorted(COLUMNS[kind]))})"
        )
    return kind


def _first_object_kind(handle: io.TextIOWrapper) -> Kind | None:
    for text in handle:
        try:
            value = orjson.loads(text) if text.strip() else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return "events" if "event_id" in value else "customers"
    return None


@contextmanager
def _reading(source: Source) -> Iterator[tuple[Iterator[tuple[int, Row]], Callable[[], int]]]:
    """The file's rows with their line numbers, and how many bytes have been read."""
    with open(source.path, "rb") as raw, io.TextIOWrapper(raw, "utf-8-sig", newline="") as text:
        rows = _csv_rows(text) if source.format == "csv" else _jsonl_rows(text)
        yield rows, raw.tell


def _csv_rows(handle: io.TextIOWrapper) -> Iterator[tuple[int, Row]]:
    reader = csv.reader(handle)
    header = [cell.strip() for cell in next(reader)]
    while True:
        # A record may span lines (quoted newlines): it starts after the previous one.
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, f"malformed CSV: {exc}"
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            yield line, f"{len(cells)} cells but {len(header)} header columns"
            continue
        yield line, _csv_fields(dict(zip(header, cells, strict=False)))


def _csv_fields(record: dict[str, str]) -> Row:
    """Cells as API fields: an empty cell is an absent field, `attributes` is JSON text."""
    fields: dict[str, Any] = {k: v for k, v in record.items() if v.strip()}
    if "attributes" in fields:
        try:
            fields["attributes"] = orjson.loads(fields["attributes"])
        except orjson.JSONDecodeError:
            return "attributes: is not valid JSON"
    rating = fields.get("rating")
    if isinstance(rating, str) and rating.strip().lstrip("-").isdigit():
        fields["rating"] = int(rating)
    return fields


def _jsonl_rows(handle: io.TextIOWrapper) -> Iterator[tuple[int, Row]]:
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            yield line, "not valid JSON"
            continue
        yield line, value if isinstance(value, dict) else "not a JSON object"


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in events.validation_errors(exc)[:5])


async def import_file(
    session: AsyncSession,
    *,
    path: Path,
    kind: Kind | None,
    reject: Reject,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import every valid row of the file; `reject(line, reason)` hears of the others."""
    source = inspect(path, kind)
    summary = ImportSummary()
    target: _Target = _Events(session) if source.kind == "events" else _Customers(session)
    with _reading(source) as (rows, position):
        for count, (line, row) in enumerate(rows, start=1):
            problem = row if isinstance(row, str) else await target.add(row, summary)
            if problem is not None:
                summary.rejected += 1
                reject(line, problem)
            if progress is not None and count % BATCH == 0:
                progress(position(), source.size)
        await target.flush(summary)
    if progress is not None:
        progress(source.size, source.size)
    return summary


class _Target(Protocol):
    async def add(self, row: dict[str, Any], summary: ImportSummary) -> str | None:
        """Queue a valid row (storing a full batch); the reason if it is rejected."""

    async def flush(self, summary: ImportSummary) -> None:
        """Store what is queued."""


class _Events:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.buffer: list[EventIn] = []
        self.context: dict[str, Any] | None = None

    async def add(self, row: dict[str, Any], summary: ImportSummary) -> str | None:
        if self.context is None:
            self.context = {"policy": (await current_policy(self.session)).document}
        try:
            self.buffer.append(EventIn.model_validate(row, context=self.context))
        except ValidationError as exc:
            return _reason(exc)
        if len(self.buffer) >= BATCH:
            await self.flush(summary)
        return None

    async def flush(self, summary: ImportSummary) -> None:
        if self.buffer:
            result = await events.ingest(self.session, events=self.buffer, source="import")
            summary.imported += result.accepted
            summary.duplicates += result.duplicates
            self.buffer = []
        self.context = None  # a policy changed meanwhile is seen by the next batch


class _Customers:
    """Customers one statement each (the API's upsert), committed every BATCH rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.pending = 0

    async def add(self, row: dict[str, Any], summary: ImportSummary) -> str | None:
        customer_id = row.pop("customer_id", None)
        if not isinstance(customer_id, str) or not is_external_id(customer_id):
            return "customer_id: missing, or not 1-128 characters of A-Z a-z 0-9 . _ : @ -"
        try:
            data = CustomerUpsert.model_validate(row)
        except ValidationError as exc:
            return _reason(exc)
        values = events.customer_values(data)
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
