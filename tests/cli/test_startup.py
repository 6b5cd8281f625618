"""The command line reaches the database without loading the web framework, nor Alembic
while the schema is current: start-up is most of a short import's or recompute's time."""

from __future__ import annotations

import subprocess
import sys


def test_the_commands_load_neither_the_web_framework_nor_alembic() -> None:
    probe = (
        "import sys, app.cli, app.core.migrate, app.events.importer, "
        "app.classification.recompute, app.jobs.cli; "
        "print(sorted(m for m in ('fastapi', 'starlette', 'alembic') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
