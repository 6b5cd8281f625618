"""The background work of a service process: queue tasks, schedules, incremental
re-classification, notification delivery and backlog metrics.

Runs inside every service process (lifespan) unless `STRATUM_WORKER=false`, and on its
own as `python -m app worker`. Any number may run at once: queue tasks are taken with
`SKIP LOCKED`, scheduled jobs are keyed by their slot, incremental batches take an
advisory lock, deliveries are leased.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import orjson
from pgqueuer.errors import RetryRequested
from pgqueuer.models import Job as QueueTask
from pgqueuer.qm import QueueManager
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.db import is_unavailable
from app.core.observability import log
from app.core.settings import Settings
from app.jobs import backlog, incremental, queue, schedule, tasks
from app.notifications import delivery

MAX_TASK_ATTEMPTS = 5
# The longest pause between rounds of a background step that keeps failing.
MAX_BACKOFF_SECONDS = 30.0


def _backoff(seconds: float, failures: int) -> float:
    """The pause before the next round: the step's interval, doubled per failure in a row."""
    if failures == 0:
        return seconds
    return min(max(seconds, 0.5) * 2.0 ** min(failures, 16), max(seconds, MAX_BACKOFF_SECONDS))


def asyncpg_dsn(url: str) -> str:
    """A plain libpq-style URL for asyncpg (the queue's own connection)."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def transient(exc: BaseException) -> bool:
    """A lost connection or a failover: the task should run again, not fail its job."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    cause = getattr(exc, "__cause__", None)
    candidates = [exc, cause] if cause is not None else [exc]
    return any(
        isinstance(
            e,
            OSError
            | ConnectionError
            | asyncpg.PostgresConnectionError
            | asyncpg.InterfaceError
            | asyncpg.exceptions.SerializationError
            | asyncpg.exceptions.DeadlockDetectedError
            | asyncpg.exceptions.AdminShutdownError,
        )
        for e in candidates
    )


class Worker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        database_url: str,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.dsn = asyncpg_dsn(database_url)
        self.stopping = asyncio.Event()
        self.queue_manager: QueueManager | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        s = self.settings
        self._tasks = [
            asyncio.create_task(self._queue_loop(), name="stratum-queue"),
            asyncio.create_task(
                self._every(s.incremental_interval_seconds, self._incremental),
                name="stratum-incremental",
            ),
            asyncio.create_task(self._delivery_loop(), name="stratum-delivery"),
            asyncio.create_task(
                self._every(s.metrics_interval_seconds, self._metrics), name="stratum-metrics"
            ),
        ]
        if s.schedules:
            self._tasks.append(
                asyncio.create_task(
                    self._every(s.schedule_check_seconds, self._schedule),
                    name="stratum-schedule",
                )
            )

    async def stop(self, *, grace: float = 15.0) -> None:
        """Let every loop finish its current step, then cancel what is still running.

        Cancelling a step mid-statement could hand a busy connection back to the pool,
        so stopping waits first; whatever was cut off is found again by the next worker
        (stale task heartbeats, expired delivery leases, marks not deleted).
        """
        self.stopping.set()
        if self.queue_manager is not None:
            self.queue_manager.shutdown.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def run_forever(self) -> None:
        self.start()
        await self.stopping.wait()
        await self.stop()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def _fresh_connections(self) -> None:
        """Drop the idle pooled connections: one a failure left unusable is not reused."""
        engine = self.sessionmaker.kw.get("bind")
        if isinstance(engine, AsyncEngine):
            with contextlib.suppress(Exception):
                await engine.dispose()

    async def _every(self, seconds: float, step: Callable[[], Awaitable[bool]]) -> None:
        """Run `step` until stopped; again at once while it reports more to do."""
        failures = 0
        while not self.stopping.is_set():
            busy = False
            try:
                busy = await step()
                failures = 0
            except Exception as exc:  # a failing round must not end the loop
                failures += 1
                if is_unavailable(exc) or transient(exc):
                    # An outage is expected and says nothing new each round: one line per
                    # attempt, with a growing pause, rather than a traceback every second.
                    log.warning("database unavailable", step=step.__name__, error=repr(exc))
                else:
                    log.exception("background step failed", step=step.__name__, error=repr(exc))
                await self._fresh_connections()
            if not busy:
                await self._sleep(_backoff(seconds, failures))

    # -- queue ---------------------------------------------------------------------------

    async def _queue_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                connection = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("queue connection failed", error=repr(exc))
                await self._sleep(self.settings.worker_poll_seconds)
                continue
            try:
                manager = QueueManager(queue.queries_on(connection))
                manager.entrypoint(queue.PLAN)(self._plan_task)
                manager.entrypoint(queue.RANGE)(self._range_task)
                self.queue_manager = manager
                beat = timedelta(seconds=self.settings.job_heartbeat_seconds)
                await manager.run(
                    dequeue_timeout=timedelta(seconds=self.settings.worker_poll_seconds),
                    batch_size=1,
                    max_concurrent_tasks=2,
                    heartbeat_timeout=beat,
                )
            except Exception as exc:
                log.warning("queue worker stopped", error=repr(exc))
            finally:
                self.queue_manager = None
                with contextlib.suppress(Exception):
                    await connection.close()
            await self._sleep(self.settings.worker_poll_seconds)

    async def _guarded(
        self, task: QueueTask, job_id: int, work: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await work()
        except Exception as exc:
            if transient(exc) and task.attempts < MAX_TASK_ATTEMPTS:
                raise RetryRequested(
                    delay=timedelta(seconds=self.settings.worker_poll_seconds),
                    reason=type(exc).__name__,
                ) from exc
            await tasks.fail(self.sessionmaker, job_id, exc)

    async def _plan_task(self, task: QueueTask) -> None:
        payload: dict[str, Any] = orjson.loads(task.payload or b"{}")
        job_id = int(payload["job"])
        await self._guarded(
            task,
            job_id,
            lambda: tasks.plan_job(self.sessionmaker, job_id, chunk=self.settings.recompute_chunk),
        )

    async def _range_task(self, task: QueueTask) -> None:
        payload: dict[str, Any] = orjson.loads(task.payload or b"{}")
        job_id, after = int(payload["job"]), int(payload["after"])
        await self._guarded(task, job_id, lambda: tasks.run_range(self.sessionmaker, job_id, after))

    # -- the other loops -----------------------------------------------------------------

    async def _incremental(self) -> bool:
        s = self.settings
        done = await incremental.run_once(
            self.sessionmaker,
            batch=s.incremental_batch,
            settle=s.incremental_settle_seconds,
            max_delay=s.incremental_max_delay_seconds,
            reuse_fit_for=s.incremental_fit_reuse_seconds,
        )
        return done > 0

    async def _schedule(self) -> bool:
        await schedule.tick(self.sessionmaker)
        return False

    async def _delivery_loop(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:

            async def step() -> bool:
                return await delivery.deliver_once(self.sessionmaker, client, self.settings) > 0

            step.__name__ = "delivery"
            await self._every(self.settings.delivery_interval_seconds, step)

    async def _metrics(self) -> bool:
        await backlog.refresh(self.sessionmaker)
        return False
