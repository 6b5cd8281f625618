"""Long work as jobs on a PostgreSQL queue, schedules and incremental re-classification."""
