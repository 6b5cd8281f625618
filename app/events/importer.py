"""Load a CRM export (CSV or JSON Lines) through the same validation as the API, at COPY speed.

The file is checked first (readable, UTF-8, a usable CSV header) so that a file that
cannot be imported at all stores nothing. Then it is streamed: every row is validated
with the API's request models (`EventIn`, `CustomerUpsert`), rejected rows are reported
with their line number and never stored, valid rows go by binary COPY into a staging
table, and every STAGE rows the staging table is merged into the real tables in one
transaction, set-based (currency conversion included), while the next stage is read.
The common, well-formed row is checked by `fast_rows` with the API's own validators
but without building a model; any other row is validated by the model, which gives the
reason when it is rejected. Should PostgreSQL still refuse a
value, the merge is split until the rows it refuses are found: those are rejected by
line with PostgreSQL's reason, every other row is stored. Re-importing a file adds
nothing: event ids and customer ids are idempotency keys.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import asyncpg
import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import raw_connection
from app.core.types import is_external_id
from app.customers import erasure
from app.customers.schemas import CustomerUpsert
from app.events import fast_rows
from app.events import service as events
from app.events.schemas import EventIn
from app.policies.schemas import PolicyDocument
from app.policies.service import current_policy

Kind = Literal["customers", "events"]
Format = Literal["csv", "jsonl"]
BATCH = 1000  # rows between progress reports
# Rows per merge transaction. The events trigger marks each customer of a statement
# dirty once, so larger stages write fewer marks: 50,000 rows cost about a quarter less
# of PostgreSQL's time per event than 20,000, for some 40 MB more memory.
STAGE = 50_000
# Customer rows mark nothing; smaller stages keep more of the merge beside the reading.
CUSTOMER_STAGE = 20_000
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
# A row with its line number and, for JSON Lines, its text (the model validates the text:
# about twice as fast as the parsed dict, with the same rules and results).
Numbered = tuple[int, Row, bytes | None]
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
def _reading(source: Source) -> Iterator[tuple[Iterator[Numbered], Callable[[], int]]]:
    """The file's rows with their line numbers, and how many bytes have been read."""
    with open(source.path, "rb") as raw:
        if source.format == "jsonl":
            yield _jsonl_rows(raw), raw.tell
            return
        with io.TextIOWrapper(raw, "utf-8-sig", newline="") as text:
            yield _csv_rows(text), raw.tell


def _csv_rows(handle: io.TextIOWrapper) -> Iterator[Numbered]:
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
            yield line, f"malformed CSV: {exc}", None
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            yield line, f"{len(cells)} cells but {len(header)} header columns", None
            continue
        yield line, _csv_fields(dict(zip(header, cells, strict=False))), None


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


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """The file's lines (without their ending), read a block at a time."""
    rest = b""
    first = True
    while block := handle.read(_CHUNK):
        if first:
            block, first = block.removeprefix(codecs.BOM_UTF8), False
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _jsonl_rows(handle: IO[bytes]) -> Iterator[Numbered]:
    for line, text in enumerate(_lines(handle), start=1):
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            yield line, "not valid JSON", None
            continue
        if isinstance(value, dict):
            yield line, value, text
        else:
            yield line, "not a JSON object", None


def _clean(text: bytes | None) -> bool:
    """Whether no string in this JSON text can hold a character the API turns away:
    JSON carries NUL, control characters and lone surrogates only as escapes."""
    return text is not None and b"\\" not in text and b"\x7f" not in text


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
    target: _Target = (
        _Events(session, summary, reject)
        if source.kind == "events"
        else _Customers(session, summary, reject)
    )
    with _reading(source) as (rows, position):
        try:
            await target.start()
            for count, (line, row, text) in enumerate(rows, start=1):
                if target.full:
                    # Handed off only once another row comes, so that the last stage
                    # is always the one flush() merges.
                    await target.hand_off()
                problem = row if isinstance(row, str) else target.add(line, row, text)
                if problem is not None:
                    summary.rejected += 1
                    reject(line, problem)
                if count % BATCH == 0:
                    if progress is not None:
                        progress(position(), source.size)
                    # Lets the stage being merged meanwhile take its next step.
                    await asyncio.sleep(0)
            await target.flush()
        except BaseException:
            await target.abandon()
            raise
    if progress is not None:
        progress(source.size, source.size)
    return summary


class _Target(Protocol):
    @property
    def full(self) -> bool:
        """Whether the stage is to be handed off before another row is added."""

    async def start(self) -> None:
        """Read what checking rows needs (the policy)."""

    def add(self, line: int, row: dict[str, Any], text: bytes | None) -> str | None:
        """Stage a valid row; the reason if it is rejected."""

    async def hand_off(self) -> None:
        """Merge the full stage (while the next one is read)."""

    async def flush(self) -> None:
        """Merge what is staged and commit."""

    async def abandon(self) -> None:
        """Stop a merge under way (the import is failing)."""


Record = tuple[Any, ...]  # line first, then the staging table's columns


class _StageSubjects:
    """The erasure subjects of a stage's customers, computed only once an erasure is on
    record: most installations have none, and a keyed hash per customer is a tenth of
    what an imported row costs."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids
        self.known: dict[str, bytes] | None = None

    def by_id(self) -> dict[str, bytes]:
        if self.known is None:
            self.known = erasure.subjects_by_id(self.ids)
        return self.known

    def arrays(self, ids: list[str]) -> tuple[list[str], list[bytes]]:
        """`ids` and their subjects, as two arrays for a statement."""
        known = self.by_id()
        return ids, [known[i] for i in ids]


class _Staged:
    """Rows COPYed into a temporary table and merged STAGE at a time, one transaction each.

    A full stage is merged while the next one is read and checked (PostgreSQL and this
    process work at the same time); the session is used by the merge alone meanwhile.

    A stage PostgreSQL refuses (a value out of its range, text it cannot hold) is undone
    to a savepoint and COPYed and merged again in halves, down to single rows, which are
    then rejected with PostgreSQL's message; the rest is stored.

    Every stage but the last commits without waiting for its WAL to reach disk: the last
    commit's flush covers them all before the summary is printed, and should the server
    fail before that, re-running the import (idempotent) stores them again.
    """

    table: str
    create: str
    columns: tuple[str, ...]
    customer_at = 2  # the customer id's place in a record

    def __init__(self, session: AsyncSession, summary: ImportSummary, reject: Reject) -> None:
        self.session = session
        self.summary = summary
        self.reject = reject
        self.records: list[Record] = []
        self.merging: asyncio.Task[None] | None = None
        self.latest = fast_rows.latest_time()

    @property
    def full(self) -> bool:
        return len(self.records) >= self.stage_rows()

    def stage_rows(self) -> int:
        return STAGE

    async def start(self) -> None:
        pass

    def stage(self, record: Record) -> None:
        self.records.append(record)

    async def hand_off(self, *, last: bool = False) -> None:
        await self._wait()
        records, self.records = self.records, []
        context = self.context()
        self.latest = fast_rows.latest_time()
        self.merging = asyncio.create_task(self._write(records, context, last=last))

    async def _wait(self) -> None:
        merging, self.merging = self.merging, None
        if merging is not None:
            await merging

    async def flush(self) -> None:
        await self.hand_off(last=True)
        await self._wait()

    async def abandon(self) -> None:
        merging, self.merging = self.merging, None
        if merging is not None:
            merging.cancel()
            with contextlib.suppress(BaseException):
                await merging

    async def _without_erased(
        self, records: list[Record], subjects: _StageSubjects
    ) -> list[Record]:
        """The records whose customer was not erased; the others are rejected, as the API
        skips them (an import is often a replay of what was sent before)."""
        conn = await raw_connection(self.session)
        if not await conn.fetchval(_ANY_ERASED):
            return records
        erased = await events.erased_ids(
            self.session, subjects={s: c for c, s in subjects.by_id().items()}
        )
        if not erased:
            return records
        kept = []
        for record in records:
            if record[self.customer_at] in erased:
                self.summary.rejected += 1
                self.reject(record[0], events.ERASED_REASON)
            else:
                kept.append(record)
        return kept

    def context(self) -> Any:
        """What the merge of the stage being handed off needs (and resets for the next)."""
        return None

    async def committed(self) -> None:
        """Called after a stage's commit, with the session still the merge's."""

    async def _write(self, records: list[Record], context: Any, *, last: bool) -> None:
        conn = await raw_connection(self.session)
        # The stage's sorts and hashes (a few MB) stay in memory rather than temp files.
        await conn.execute("SET LOCAL work_mem = '64MB'")
        if not last:
            await conn.execute("SET LOCAL synchronous_commit = off")
        # The merge checks erasures again, in the snapshot that creates customers: one
        # committed since this check must not bring its customer back.
        subjects = _StageSubjects({r[self.customer_at] for r in records})
        records = await self._without_erased(records, subjects)
        await conn.execute(self.create)
        if records:
            await self._store(conn, records, (context, subjects))
        await self.session.commit()
        await self.committed()

    async def _store(self, conn: asyncpg.Connection, records: list[Record], context: Any) -> None:
        await conn.execute("SAVEPOINT import_stage")
        try:
            await conn.execute(f"TRUNCATE {self.table}")
            await conn.copy_records_to_table(self.table, records=records, columns=self.columns)
            imported, duplicates, gone = await self.merge(conn, records, *context)
        except REFUSED as exc:
            await conn.execute("ROLLBACK TO SAVEPOINT import_stage")
            if len(records) == 1:
                self.summary.rejected += 1
                self.reject(records[0][0], f"refused by the database: {_pg_message(exc)}")
                return
            half = len(records) // 2
            await self._store(conn, records[:half], context)
            await self._store(conn, records[half:], context)
            return
        await conn.execute("RELEASE SAVEPOINT import_stage")
        self.summary.imported += imported
        self.summary.duplicates += duplicates
        for line in gone:
            self.summary.rejected += 1
            self.reject(line, events.ERASED_REASON)

    async def merge(
        self,
        conn: asyncpg.Connection,
        records: list[Record],
        context: Any,
        subjects: _StageSubjects,
    ) -> tuple[int, int, list[int]]:
        """(stored, duplicates, lines of erased customers) of the staged rows (`records`);
        `subjects.known` is None when no erasure was on record as the stage was checked."""
        raise NotImplementedError


_ANY_ERASED = "SELECT EXISTS (SELECT 1 FROM erasures)"

# What PostgreSQL says about a value (class 22: out of range, invalid text...) or a check
# constraint: the row's fault, not the run's.
REFUSED = (asyncpg.DataError, asyncpg.CheckViolationError)


def _pg_message(exc: asyncpg.PostgresError) -> str:
    return f"{exc.args[0] if exc.args else exc} (SQLSTATE {exc.sqlstate})"


# Customers are created bare first (as the API does), in byte order so concurrent loads
# do not deadlock, unless erased. The stage's ids come as an array: probing the index for
# each is far cheaper than the hash anti-join over every customer a join with the
# staging table gets.
#
# Two forms answer whether erasures are on record in the statement's own snapshot. With
# none when the stage was checked, the first creates nothing should one have committed
# since and says so; then, as whenever there are erasures, the second skips the erased
# customers by their subjects ($2).
_UNLESS_ANY_ERASED = (
    "WITH guard AS (SELECT EXISTS (SELECT 1 FROM erasures) AS erasures), created AS (\n{insert}"
    "\nRETURNING 1)\nSELECT (SELECT erasures FROM guard) AS erasures,"
    " (SELECT count(*) FROM created) AS created"
)
_UNLESS_ERASED = (
    "WITH created AS (\n{insert}\nRETURNING 1)\nSELECT false AS erasures,"
    " (SELECT count(*) FROM created) AS created"
)
_NEW_CUSTOMERS = """
INSERT INTO customers (external_id)
SELECT n.customer FROM {unnest}
 WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.external_id = n.customer)
   AND {unerased}
 ORDER BY n.customer COLLATE "C"
ON CONFLICT (external_id) DO NOTHING"""
_EVENT_CUSTOMERS = _UNLESS_ANY_ERASED.format(
    insert=_NEW_CUSTOMERS.format(
        unnest="unnest($1::text[]) AS n(customer)", unerased="NOT (SELECT erasures FROM guard)"
    )
)
_EVENT_CUSTOMERS_UNERASED = _UNLESS_ERASED.format(
    insert=_NEW_CUSTOMERS.format(
        unnest="unnest($1::text[], $2::bytea[]) AS n(customer, subject)",
        unerased="NOT EXISTS (SELECT 1 FROM erasures e WHERE e.subject = n.subject)",
    )
)

# amount × rate in NUMERIC, exact until the column rounds it to 6 places: what the API
# stores for the same event. Ids stored before are duplicates. In customer order, as the
# (customer_id, occurred_at) index reads: each customer's pages are visited once per
# stage instead of once per event. Each customer row is locked as a foreign key would
# lock it (events have none, migration 0011); a customer erased by a transaction that
# committed meanwhile drops out of the join, and the count of joined rows tells.
_EVENT_INSERT = """
WITH joined AS (
    SELECT s.event_id, c.id AS customer_id, s.type, s.occurred_at, s.amount, s.currency,
           s.amount * r.rate AS amount_base, s.margin, s.margin * r.rate AS margin_base,
           s.rating, s.channel, s.attributes
      FROM {staged} s
      JOIN customers c ON c.external_id = s.customer
      LEFT JOIN unnest($1::text[], $2::numeric[]) AS r(currency, rate) ON r.currency = s.currency
       FOR KEY SHARE OF c
), stored AS (
    INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency,
                        amount_base, margin, margin_base, rating, channel, attributes)
    SELECT * FROM joined ORDER BY customer_id, occurred_at, event_id COLLATE "C"
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) AS stored, (SELECT count(*) FROM joined) AS joined
"""
_EVENT_MERGE = _EVENT_INSERT.format(staged="import_events")
# Repeats of an event_id within a stage keep the first (a sort only such a stage needs).
_EVENT_MERGE_FIRSTS = _EVENT_INSERT.format(
    staged="(SELECT DISTINCT ON (event_id) * FROM import_events ORDER BY event_id, line)"
)
# The staged rows whose customer is gone: erased while the stage waited for it, or
# since the stage was checked.
_GONE = """
SELECT line FROM import_events s
 WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.external_id = s.customer)
 ORDER BY line
"""


def _count(status: str) -> int:
    """The row count of a command status such as 'INSERT 0 20000'."""
    return int(status.rpartition(" ")[2])


class _Events(_Staged):
    table = "import_events"
    create = """
        CREATE TEMP TABLE IF NOT EXISTS import_events (
            line bigint, event_id text, customer text, type text, occurred_at timestamptz,
            amount numeric, currency text, margin numeric, rating smallint, channel text,
            attributes jsonb
        ) ON COMMIT DELETE ROWS
    """
    columns = (
        "line",
        "event_id",
        "customer",
        "type",
        "occurred_at",
        "amount",
        "currency",
        "margin",
        "rating",
        "channel",
        "attributes",
    )

    def __init__(self, session: AsyncSession, summary: ImportSummary, reject: Reject) -> None:
        super().__init__(session, summary, reject)
        self.policy: PolicyDocument | None = None
        self.next_policy: PolicyDocument | None = None

    async def start(self) -> None:
        self.policy = (await current_policy(self.session)).document

    def add(self, line: int, row: dict[str, Any], text: bytes | None) -> str | None:
        assert self.policy is not None
        plain = fast_rows.event_record(row, self.policy, self.latest, clean=_clean(text))
        if plain is not None:
            self.records.append((line, *plain))
            return None
        # Anything but the plain case: the API's model decides, and gives its reason.
        context = {"policy": self.policy}
        try:
            if text is not None:
                e = EventIn.model_validate_json(text, context=context)
            else:
                e = EventIn.model_validate(row, context=context)
        except ValidationError as exc:
            return _reason(exc)
        currency = None if e.amount is None else e.currency or self.policy.base_currency
        self.records.append(
            (
                line,
                e.event_id,
                e.customer_id,
                e.type,
                e.occurred_at,
                e.amount,
                currency,
                e.margin,
                e.rating,
                e.channel,
                None if e.attributes is None else orjson.dumps(e.attributes).decode(),
            )
        )
        return None

    def context(self) -> Any:
        # The stage is merged with the rates it was checked against; a policy changed
        # meanwhile is seen by the stage after the next.
        policy = self.policy
        if self.next_policy is not None:
            self.policy, self.next_policy = self.next_policy, None
        return policy

    async def committed(self) -> None:
        self.next_policy = (await current_policy(self.session)).document

    async def merge(
        self,
        conn: asyncpg.Connection,
        records: list[Record],
        context: Any,
        subjects: _StageSubjects,
    ) -> tuple[int, int, list[int]]:
        policy: PolicyDocument = context or (await current_policy(self.session)).document
        currencies = [policy.base_currency, *policy.exchange_rates]
        rates = [policy.rate(c) for c in currencies]
        ids = list({r[self.customer_at] for r in records})
        if subjects.known is not None or (await conn.fetchrow(_EVENT_CUSTOMERS, ids))["erasures"]:
            await conn.execute(_EVENT_CUSTOMERS_UNERASED, *subjects.arrays(ids))
        distinct = len({r[1] for r in records})
        merge = _EVENT_MERGE_FIRSTS if distinct < len(records) else _EVENT_MERGE
        result = await conn.fetchrow(merge, currencies, rates)
        assert result is not None
        stored, joined = int(result["stored"]), int(result["joined"])
        # Rare: an erasure committed since the stage was checked.
        gone = [] if joined == distinct else [int(r["line"]) for r in await conn.fetch(_GONE)]
        return stored, len(records) - stored - len(gone), gone


_CUSTOMER_FIELDS = fast_rows.CUSTOMER_FIELDS
# Each row sets only the fields it gives (as PUT /v1/customers does). A customer named
# twice in one stage is applied in rounds: the n-th mention of every id in round n.
_CUSTOMER_UPDATE = (
    "UPDATE customers c SET "  # noqa: S608
    + ", ".join(f"{f} = CASE WHEN s.set_{f} THEN s.{f} ELSE c.{f} END" for f in _CUSTOMER_FIELDS)
    + """, updated_at = now()
  FROM import_customers s
 WHERE s.external_id = c.external_id AND s.round = $1"""
)
_CUSTOMER_NEW = (
    "INSERT INTO customers (external_id, "  # noqa: S608
    + ", ".join(_CUSTOMER_FIELDS)
    + ") SELECT s.external_id, "
    + ", ".join(
        "coalesce(s.attributes, '{}')" if f == "attributes" else f"s.{f}" for f in _CUSTOMER_FIELDS
    )
    + """
  FROM import_customers s
 WHERE s.round = $1
   AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.external_id = s.external_id)
   AND {unerased}
 ORDER BY s.external_id COLLATE "C"
ON CONFLICT (external_id) DO NOTHING"""
)
# A customer erased since the stage was checked finds no row to update, and the insert
# must not bring them back: as for events' customers, two forms.
_CUSTOMER_INSERT = _UNLESS_ANY_ERASED.format(
    insert=_CUSTOMER_NEW.replace("{unerased}", "NOT (SELECT erasures FROM guard)")
)
_CUSTOMER_INSERT_UNERASED = _UNLESS_ERASED.format(
    insert=_CUSTOMER_NEW.replace(
        "{unerased}",
        """s.external_id NOT IN (
       SELECT x.external_id FROM unnest($2::text[], $3::bytea[]) AS x(external_id, subject)
         JOIN erasures e ON e.subject = x.subject)""",
    )
)
_CUSTOMER_GONE = """
SELECT line FROM import_customers s
 WHERE s.round = $1
   AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.external_id = s.external_id)
 ORDER BY line
"""


class _Customers(_Staged):
    table = "import_customers"
    create = (
        "CREATE TEMP TABLE IF NOT EXISTS import_customers ("
        "line bigint, round int, external_id text, name text, email text, phone text, "
        "country text, customer_type text, role text, industry text, company_size text, "
        "created_at timestamptz, attributes jsonb, "
        + ", ".join(f"set_{f} boolean" for f in _CUSTOMER_FIELDS)
        + ") ON COMMIT DELETE ROWS"
    )
    columns = (
        "line",
        "round",
        "external_id",
        *_CUSTOMER_FIELDS,
        *(f"set_{f}" for f in _CUSTOMER_FIELDS),
    )

    def __init__(self, session: AsyncSession, summary: ImportSummary, reject: Reject) -> None:
        super().__init__(session, summary, reject)
        self.seen: dict[str, int] = {}

    def add(self, line: int, row: dict[str, Any], text: bytes | None) -> str | None:
        customer_id = row.pop("customer_id", None)
        if not isinstance(customer_id, str) or not is_external_id(customer_id):
            return "customer_id: missing, or not 1-128 characters of A-Z a-z 0-9 . _ : @ -"
        plain = fast_rows.customer_record(row, self.latest, clean=_clean(text))
        if plain is None:
            # Anything but the plain case: the API's model decides, and gives its reason.
            try:
                data = CustomerUpsert.model_validate(row)
            except ValidationError as exc:
                return _reason(exc)
            plain = _customer_columns(events.customer_values(data))
        values, given = plain
        mention = self.seen[customer_id] = self.seen.get(customer_id, 0) + 1
        self.records.append((line, mention, customer_id, *values, *given))
        return None

    def stage_rows(self) -> int:
        return CUSTOMER_STAGE

    def context(self) -> Any:
        self.seen = {}  # rounds are counted within a stage
        return None

    async def merge(
        self,
        conn: asyncpg.Connection,
        records: list[Record],
        context: Any,
        subjects: _StageSubjects,
    ) -> tuple[int, int, list[int]]:
        ids = list({r[self.customer_at] for r in records})
        rounds = Counter(r[1] for r in records)
        imported = duplicates = 0
        gone: list[int] = []
        for n in range(1, max(rounds) + 1):
            updated = _count(await conn.execute(_CUSTOMER_UPDATE, n))
            row = None if subjects.known is not None else await conn.fetchrow(_CUSTOMER_INSERT, n)
            if row is None or row["erasures"]:
                row = await conn.fetchrow(_CUSTOMER_INSERT_UNERASED, n, *subjects.arrays(ids))
            inserted = int(row["created"])
            duplicates, imported = duplicates + updated, imported + inserted
            if updated + inserted < rounds[n]:  # rare: erased since the stage was checked
                gone += [int(r["line"]) for r in await conn.fetch(_CUSTOMER_GONE, n)]
        return imported, duplicates, gone


def _customer_columns(values: dict[str, Any]) -> fast_rows.CustomerRecord:
    """The model's values (`customer_values`) as `fast_rows.customer_record` answers them."""
    attributes = values.get("attributes")
    return (
        [
            orjson.dumps(attributes).decode()
            if f == "attributes" and attributes is not None
            else values.get(f)
            for f in _CUSTOMER_FIELDS
        ],
        [f in values for f in _CUSTOMER_FIELDS],
    )
