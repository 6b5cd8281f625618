"""SQL for webhook deliveries."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import raw_connection


async def seen(session: AsyncSession, *, webhook_id: str) -> bool:
    conn = await raw_connection(session)
    found = await conn.fetchval(
        "SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1", webhook_id
    )
    return found is not None


async def record(session: AsyncSession, *, webhook_id: str, event_id: str) -> bool:
    """Remember a delivery; False when a concurrent delivery of the same id got there first."""
    conn = await raw_connection(session)
    stored = await conn.fetchval(
        "INSERT INTO webhook_deliveries (webhook_id, event_id) VALUES ($1, $2) "
        "ON CONFLICT (webhook_id) DO NOTHING RETURNING 1",
        webhook_id,
        event_id,
    )
    return stored is not None
