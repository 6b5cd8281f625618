"""The engine stays free of the database and HTTP: only stdlib, NumPy and SciPy."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "app" / "classification" / "engine"
ALLOWED = {"numpy", "scipy", "app"}


def test_engine_imports_only_stdlib_numpy_scipy() -> None:
    files = sorted(ENGINE.glob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ALLOWED, f"{path.name}: {name}"
                if top == "app":
                    assert name.startswith("app.classification.engine"), f"{path.name}: {name}"
