"""bench/ scripts as modules, for the tests that check a benchmark's own pieces (its bounds, its
games, its argument checks); bench/ is not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(script: str, *, as_name: str | None = None) -> ModuleType:
    """``bench/<script>.py``, registered in ``sys.modules`` as ``as_name`` (default: ``script``) so
    that its dataclasses and worker processes find it; bench/ goes on ``sys.path`` for its own
    imports of its neighbours."""
    name = as_name or script
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{script}.py")
    assert spec is not None and spec.loader is not None, script
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
