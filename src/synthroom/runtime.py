"""Process settings that Synthroom's own processes apply when they start (the ``synthroom``
command, a room job's child process); the library applies none of them, at import or later, so
a program that imports synthroom keeps its environment as it set it.

XLA's newer CPU fusion emitters hold about 250 MiB more while compiling mbi's estimator, for no
measurable speed-up here, so ``--xla_cpu_use_fusion_emitters=false`` is added unless the
environment already sets that flag. XLA reads ``XLA_FLAGS`` once, when JAX starts its CPU
backend, so the flags must be in the environment before the first computation; a library user
may set them too.

:data:`FAST_COMPILE_FLAG` is not applied: without LLVM's optimisation passes a small model's fit
is much faster (most of its JAX time is compiling mbi's many small programs: the simulator's
61-column table at 2,000 rows fits in 26 s instead of 46), but a large model's estimator runs
slower (the customer simulator at 1M rows: 134 s instead of 105; bench/RESULTS.md, "XLA without
its optimisation passes"). The test suite, which fits hundreds of small models, sets it
(tests/conftest.py); so may a user whose tables are small.
"""

from __future__ import annotations

FUSION_FLAG = "--xla_cpu_use_fusion_emitters"
XLA_FLAG = f"{FUSION_FLAG}=false"
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"


def xla_flags(current: str | None, *, defaults: tuple[str, ...] = (XLA_FLAG,)) -> str:
    """``XLA_FLAGS`` with each of ``defaults`` added, unless ``current`` already sets that flag."""
    flags = (current or "").strip()
    for default in defaults:
        if default.split("=")[0] not in flags:
            flags = f"{flags} {default}".strip()
    return flags
