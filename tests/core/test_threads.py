"""The engine's BLAS runs on one thread, whatever the machine's core count."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_the_service_leaves_blas_one_thread() -> None:
    probe = (
        "import app, numpy, threadpoolctl; "
        "print(sorted({i['num_threads'] for i in threadpoolctl.threadpool_info()"
        " if i['user_api'] == 'blas'}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert found == "[1]"


def test_an_operators_setting_wins() -> None:
    probe = "import os, app; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert found == "2"
