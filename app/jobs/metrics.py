"""Queue, job and notification metrics (the default registry, served at /metrics).

Gauges are refreshed by each worker process from the database, so any process that runs
a worker reports the cluster-wide backlog.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge(
    "stratum_queue_tasks", "Queue tasks waiting or running", ["entrypoint", "status"]
)
JOBS_ACTIVE = Gauge("stratum_jobs", "Jobs that are queued or running", ["state"])
JOB_DURATION = Histogram(
    "stratum_job_duration_seconds",
    "Time from a job's start to its end",
    ["kind", "state"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
)
RANGES_DONE = Counter("stratum_job_ranges_total", "Recompute ranges committed")
DIRTY_BACKLOG = Gauge(
    "stratum_incremental_backlog", "Customers marked for re-classification after new events"
)
INCREMENTAL_CUSTOMERS = Counter(
    "stratum_incremental_customers_total", "Customers re-classified after new events"
)
OUTBOX_BACKLOG = Gauge(
    "stratum_outbox_pending", "Notification deliveries not yet delivered or given up"
)
OUTBOX_OLDEST = Gauge(
    "stratum_outbox_oldest_pending_seconds", "Age of the oldest pending notification delivery"
)
DELIVERIES = Counter(
    "stratum_webhook_deliveries_total", "Notification delivery attempts", ["outcome"]
)
DELIVERY_LATENCY = Histogram(
    "stratum_webhook_delivery_duration_seconds",
    "Duration of one notification delivery attempt",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
