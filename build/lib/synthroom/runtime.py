"""Process settings that Synthroom's own processes apply when they start (the ``synthroom``
command, a room job's child process); the library applies none of them, at import or later, so
a program that imports synthroom keeps its environment as it set it.

XLA's newer CPU fusion emitters hold about 250 MiB more while compiling mbi's estimator, for no
measurable speed-up here. XLA reads ``XLA_FLAGS`` once, when JAX starts its CPU backend, so the
flag must be in the environment before the first computation; a library user may set it too.
"""

from __future__ import annotations

FUSION_FLAG = "--xla_cpu_use_fusion_emitters"
XLA_FLAG = f"{FUSION_FLAG}=false"


def xla_flags(current: str | None) -> str:
    """``XLA_FLAGS`` with the classic fusion emitters, unless ``current`` already chooses them."""
    current = (current or "").strip()
    return current if FUSION_FLAG in current else f"{current} {XLA_FLAG}".strip()
