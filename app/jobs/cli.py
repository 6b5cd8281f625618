"""`python -m app worker`: the background work without the HTTP service."""

from __future__ import annotations

import asyncio
import signal

from app.core.settings import Settings


def run_worker(settings: Settings, database_url: str) -> int:
    from app.core.db import create_engine, create_sessionmaker
    from app.core.migrate import upgrade
    from app.jobs.worker import Worker

    upgrade(database_url)

    async def run() -> None:
        engine = create_engine(database_url, settings)
        worker = Worker(create_sessionmaker(engine), settings, database_url=database_url)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stopping.set)
        try:
            await worker.run_forever()
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0
