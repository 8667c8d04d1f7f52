"""The evaluation report: ``PATH.html`` (self-contained, for people) and ``PATH.json`` (for
machines, the reference product's field names where they exist)."""

from .html import render_html
from .console import explain_refusal, gate_failures, summary_table
from .writer import check_report_path, report_json, write_report

__all__ = [
    "check_report_path",
    "explain_refusal",
    "gate_failures",
    "render_html",
    "report_json",
    "summary_table",
    "write_report",
]
