"""The report in a terminal: one compact rich table, and one line per failed gate."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..evaluation.disclosure import gate_line
from ..evaluation.result import EvaluationReport

DIGITS = 3  # the operator's console and report show scores to 3 decimals (members: see disclosure.py)


def gate_failures(report: EvaluationReport) -> list[str]:
    """One line per failed gate: which score was over which threshold."""
    return [gate_line(g, DIGITS) for g in report.gates if not g.passed]


def explain_refusal(report: EvaluationReport) -> tuple[list[str], list[str]]:
    """(why, what to try): one line per failed gate, with the advice's explanation of it (the
    advice line that starts with "<gate> is over its threshold"), and the remaining advice."""
    advice = list(report.advice)
    why = []
    for gate in (g for g in report.gates if not g.passed):
        line = gate_line(gate, DIGITS)
        match = next((a for a in advice if a.startswith(f"{gate.name} is over its threshold")), None)
        if match is not None:
            advice.remove(match)
            line += match[match.index(":") :] if ":" in match else ""
        why.append(line)
    return why, advice


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def summary_table(report: EvaluationReport) -> Table:
    """Scores beside their ceilings or thresholds, with PASS/FAIL for the gated ones."""
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("measure")
    table.add_column("score", justify="right")
    table.add_column("ceiling / threshold", justify="right")
    table.add_column("")
    fid = report.fidelity
    if fid is None:
        table.add_row("evaluation", "skipped", "too few rows (see the notes)", "")
    else:
        table.add_row("fidelity score", _num(fid.score), f"ceiling {_num(fid.score_ceiling)}", "")
        table.add_row("2-way TVD", _num(fid.tvd_2way), f"ceiling {_num(fid.tvd_2way_ceiling)}", "")
        table.add_row(
            "association diff", _num(fid.association_diff_mean), f"ceiling {_num(fid.association_diff_ceiling)}", ""
        )
    gates = {g.name: g for g in report.gates}
    for attack in report.attacks:
        gate = gates.pop(attack.attack_version, None)
        table.add_row(Text(attack.attack_version), _num(attack.score), *_gate_cells(gate))
    for gate in gates.values():  # gates on figures other than attacks
        table.add_row(Text(gate.name), _num(gate.value), *_gate_cells(gate))
    if report.utility is not None:
        u = report.utility
        metric = "auc" if "auc" in u.tstr else next(iter(u.tstr), None)
        if metric is not None:
            table.add_row(f"utility ({metric}, TSTR)", _num(u.tstr.get(metric)), f"TRTR {_num(u.trtr.get(metric))}", "")
    if report.privacy:
        p = report.privacy
        table.add_row("epsilon spent", _num(p.get("epsilon_spent"), 4), f"of {_num(p.get('epsilon'), 4)}", "")
    rows = report.rows
    table.add_row(
        "rows",
        f"{rows.get('synthetic', 0):,}",
        f"train {rows.get('train', 0):,} / holdout {rows.get('holdout', 0):,}",
        "",
    )
    return table


def _gate_cells(gate) -> tuple[str, Text]:
    if gate is None:
        return "", Text("")
    badge = Text("PASS", style="bold green") if gate.passed else Text("FAIL", style="bold red")
    return f"max {gate.threshold:.3f}", badge
