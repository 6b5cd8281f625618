"""The gate between an erasure and the statements that store classifications.

An erasure has to wait for a transaction that is storing a classification of the customer
(its insert is invisible to the erasure's delete until it commits), and a store that
starts after the erasure must no longer see the customer. Locking every stored
customer's row, as a foreign key check would, does that at the price of a tuple write
and its WAL record per customer: on a full re-classification, a third of the merge.
Instead a transaction that stores classifications holds one advisory lock, shared, and an
erasure takes it exclusively before it deletes anything: it waits for the stores under
way, and the stores that start after it wait for its commit, then no longer see the
customer in their join with `customers`.

A storing transaction enters the gate before it takes any row lock an erasure also
wants (the re-classifier's marks), so neither can wait for the other in a circle.
Ingestion of events does not pass the gate: it locks the few customers of a batch.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

GATE = 4_170_007


async def enter(conn: asyncpg.Connection[Any]) -> None:
    """Hold the gate (shared) for the rest of this transaction, to store classifications."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", GATE)


async def close(session: AsyncSession) -> None:
    """Hold the gate alone for the rest of this transaction, to erase."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:gate)"), {"gate": GATE})
