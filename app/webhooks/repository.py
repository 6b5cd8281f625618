"""SQL for webhook deliveries."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import raw_connection

_RECORD = """
INSERT INTO webhook_deliveries (webhook_id, event_id) VALUES ($1, $2)
ON CONFLICT (webhook_id) DO NOTHING
RETURNING 1
"""


async def record(session: AsyncSession, *, webhook_id: str, event_id: str) -> bool:
    """Remember a delivery in the session's transaction; False if it was seen before.

    A concurrent delivery of the same id makes this wait for that one's transaction:
    once it commits this is a re-delivery, if it rolls back this one goes ahead.
    """
    conn = await raw_connection(session)
    return await conn.fetchval(_RECORD, webhook_id, event_id) is not None
