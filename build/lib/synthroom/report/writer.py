"""Write a report as ``PATH.html`` and ``PATH.json`` side by side, each atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..evaluation.result import EvaluationReport
from .html import render_html


def check_report_path(path: str | Path) -> Path:
    """Fail early (before any work) on a report path we would not write."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"report file {str(path)!r} must end in .html (the JSON is written beside it)")
    if not path.parent.exists():
        raise InputError(f"report folder {str(path.parent)!r} does not exist")
    return path


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars/arrays to Python, NaN and infinities to null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_json(report: EvaluationReport) -> str:
    """The machine-readable report (``EvaluationReport.to_dict``), strict JSON."""
    return json.dumps(_plain(report.to_dict()), indent=2, allow_nan=False, ensure_ascii=False)


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_report(report: EvaluationReport, html_path: str | Path) -> tuple[Path, Path]:
    """Write ``html_path`` (self-contained page) and the JSON beside it; returns both paths."""
    html_path = check_report_path(html_path)
    json_path = html_path.with_suffix(".json")
    html, data = render_html(report), report_json(report)  # render both before writing either
    _write_atomic(json_path, data)
    _write_atomic(html_path, html)
    return html_path, json_path
