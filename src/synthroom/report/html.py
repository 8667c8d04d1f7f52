"""The report as one self-contained HTML page: inline CSS and inline SVG, no script, no link.

Sections, in reading order: the summary card (verdict, scores against thresholds, budget spent,
rows, notes, what to try), per-column distributions, association matrices, membership
inference (DCR histograms), utility, copies, and the privacy ledger. Every piece of text that
can come from the data (column names, category values, notes) goes through :func:`svg.text`.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import AbstractSet, Any, Iterable, Sequence

from ..evaluation.result import Attack, ColumnFidelity, EvaluationReport, GateResult
from . import svg
from .console import explain_refusal
from .style import CSS
from .svg import text

MAX_BARS = 40  # categories shown per column chart; the rest are pooled into one bar


def fmt(value: Any, digits: int = 3) -> str:
    """A number for people: ``n/a`` for missing or non-finite, thousands separators for counts."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.2g}" if 0 < abs(value) < 0.01 else f"{value:.{digits}f}"
    return str(value)


def pct(value: Any) -> str:
    """A share as a percentage with two decimals."""
    return f"{value:.2%}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _badge(passed: bool | None) -> str:
    if passed is None:
        return '<span class="badge none">no gate</span>'
    return '<span class="badge pass">PASS</span>' if passed else '<span class="badge fail">FAIL</span>'


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: AbstractSet[int] = frozenset(), row_class=None
) -> str:
    """A table; cells are escaped unless wrapped in :class:`Raw`."""
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{text(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cls = row_class(row) if row_class else ""
        cells = "".join(
            f'<td class="{"num" if i in numeric else ""}">{c if isinstance(c, Raw) else text(c)}</td>'
            for i, c in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Raw(str):
    """Markup built here (already escaped): inserted into a table cell as is."""


def _tile(label: str, value: str, sub: str = "", state: str = "") -> str:
    return (
        f'<div class="tile {state}"><div class="label">{text(label)}</div><div class="value">{value}</div>'
        f'<div class="sub">{sub}</div></div>'
    )


# -- summary -----------------------------------------------------------------------------------
def _verdict(report: EvaluationReport) -> tuple[str, str, str]:
    """(css state, big word, one-line explanation)."""
    synthesized = report.privacy is not None
    failed = [g for g in report.gates if not g.passed]
    if not report.gates:
        return "neutral", "NO GATE SET", "No release gate was given: the scores below are for information."
    if failed:
        word = "REFUSED" if synthesized else "FAILED"
        why = " ".join(explain_refusal(report)[0])
        lead = "The synthetic data was not released. " if synthesized else "A release gate failed. "
        return "fail", word, lead + why
    word = "RELEASED" if synthesized else "PASSED"
    return "pass", word, f"Every release gate passed ({len(report.gates)} checked)."


def _gate_for(report: EvaluationReport, name: str) -> GateResult | None:
    return next((g for g in report.gates if g.name == name), None)


def _summary(report: EvaluationReport) -> str:
    """The report's first card: the verdict, a tile per headline figure, the gates' table, what
    to try after a refusal and the run's notes."""
    state, word, why = _verdict(report)
    tiles = _fidelity_tiles(report) + _gate_tiles(report) + [_privacy_tile(report)]
    rows = report.rows
    tiles.append(
        _tile(
            "Rows evaluated",
            fmt(rows.get("synthetic")),
            text(f"synthetic; {rows.get('train', 0):,} training, {rows.get('holdout', 0):,} holdout"),
        )
    )
    notes = "".join(f"<li>{text(n)}</li>" for n in report.notes)
    advice = ""
    to_try = explain_refusal(report)[1] if report.gates and not report.passed else []
    if to_try:
        advice = (
            '<div class="advice"><h3>What to try</h3><ul>'
            + "".join(f"<li>{text(a)}</li>" for a in to_try)
            + "</ul></div>"
        )
    gates = ""
    if report.gates:
        gates = "<h3 style='margin-top:16px'>Release gates</h3>" + _table(
            ["gate", "score", "threshold", "result"],
            [(g.name, fmt(g.value), fmt(g.threshold), Raw(_badge(g.passed))) for g in report.gates],
            numeric={1, 2},
            row_class=lambda r: "" if "PASS" in r[3] else "fail",
        )
    return (
        f'<section class="card summary {state}"><div class="verdict"><span class="big">{word}</span>'
        f'<span>{text(why)}</span></div><div class="tiles">{"".join(tiles)}</div>{gates}{advice}'
        f"{f'<ul class=notes>{notes}</ul>' if notes else ''}</section>"
    )


def _fidelity_tiles(report: EvaluationReport) -> list[str]:
    """The fidelity score, 2-way TVD and association difference tiles (none without fidelity)."""
    fid = report.fidelity
    if fid is None:
        return []
    return [
        _tile(
            "Fidelity score",
            fmt(fid.score),
            f"ceiling {fmt(fid.score_ceiling)} (holdout vs training); 1 = identical",
        ),
        _tile("2-way TVD", fmt(fid.tvd_2way), f"ceiling {fmt(fid.tvd_2way_ceiling)}; 0 = identical pairs"),
        _tile("Association diff", fmt(fid.association_diff_mean), f"ceiling {fmt(fid.association_diff_ceiling)}"),
    ]


def _gate_tiles(report: EvaluationReport) -> list[str]:
    """A tile per attack (with its gate's threshold and verdict when gated), then one per gate on
    a figure that is not an attack (e.g. copy rates)."""
    tiles = []
    for attack in report.attacks:
        gate = _gate_for(report, attack.attack_version)
        sub = f"threshold {fmt(gate.threshold)} {_badge(gate.passed)}" if gate else _badge(None)
        tiles.append(
            _tile(
                attack.attack_version,
                fmt(attack.score),
                sub,
                "" if gate is None else ("pass" if gate.passed else "fail"),
            )
        )
    for gate in report.gates:
        if not any(a.attack_version == gate.name for a in report.attacks):
            tiles.append(
                _tile(
                    gate.name,
                    fmt(gate.value),
                    f"threshold {fmt(gate.threshold)} {_badge(gate.passed)}",
                    "pass" if gate.passed else "fail",
                )
            )
    return tiles


def _privacy_tile(report: EvaluationReport) -> str:
    """The epsilon spent, of the budget (n/a when the run synthesized nothing)."""
    priv = report.privacy
    if not priv:
        return _tile("Epsilon spent", "n/a", "no privacy ledger: the table was not synthesized in this run")
    return _tile(
        "Epsilon spent",
        fmt(priv.get("epsilon_spent"), 4),
        f"of {fmt(priv.get('epsilon'), 4)}; delta {_delta(priv)}",
    )


# -- fidelity ----------------------------------------------------------------------------------
def _display_bins(col: ColumnFidelity) -> tuple[list[str], dict[str, list[float]], str]:
    """At most ``MAX_BARS`` bars: a categorical column's rarest bins are pooled into one."""
    series = {"real": list(col.real), "synthetic": list(col.synthetic), "holdout": list(col.holdout)}
    if col.kind != "categorical" or len(col.bins) <= MAX_BARS:
        return list(col.bins), series, ""
    order = sorted(range(len(col.bins)), key=lambda i: -col.real[i])
    keep, rest = sorted(order[: MAX_BARS - 1]), order[MAX_BARS - 1 :]
    labels = [col.bins[i] for i in keep] + [f"({len(rest)} rarer values)"]
    pooled = {k: [v[i] for i in keep] + [sum(v[i] for i in rest)] for k, v in series.items()}
    return labels, pooled, f"{len(rest)} rarest of {len(col.bins)} bins pooled into one bar"


def _key(*names: str, tick: str | None = None) -> str:
    labels = {
        "real": "real (training rows)",
        "synthetic": "synthetic",
        "holdout": "holdout rows",
        "train": "training rows",
    }
    items = [f'<span><span class="swatch" style="background:{svg.COLORS[n]}"></span>{labels[n]}</span>' for n in names]
    if tick:
        items.append(
            f'<span><span class="swatch tick" style="background:{svg.COLORS[tick]}"></span>'
            f"{labels[tick]} (what fresh real rows look like)</span>"
        )
    return f'<div class="key">{"".join(items)}</div>'


def _fidelity(report: EvaluationReport) -> str:
    fid = report.fidelity
    if fid is None:
        return "<h2>Column distributions</h2><p class='muted'>Not evaluated (see the notes).</p>"
    rows = [(c.name, c.kind, fmt(c.kl), fmt(c.kl_ceiling), fmt(c.score)) for c in fid.columns]
    table = _table(
        ["column", "kind", "KL (synthetic)", "KL ceiling (holdout)", "score exp(-KL)"], rows, numeric={2, 3, 4}
    )
    charts = []
    for col in fid.columns:
        labels, series, note = _display_bins(col)
        chart = svg.bar_chart(labels, series, marker="holdout", title=f"{col.name}: real vs synthetic")
        charts.append(
            f'<div class="card chart"><h3><span>{text(col.name)} <span class="muted">({text(col.kind)})</span>'
            f'</span><span class="kl">KL {fmt(col.kl)} · ceiling {fmt(col.kl_ceiling)}</span></h3>'
            f"{chart}{f'<div class=muted>{text(note)}</div>' if note else ''}</div>"
        )
    return (
        "<h2>Column distributions</h2><p class='lead'>Share of rows per bin (bins fixed by the real training "
        "rows). KL is the Kullback–Leibler divergence of the synthetic column from the real one; the ceiling is "
        "the same for the real holdout rows, i.e. what fresh real data would score.</p>"
        + table
        + _key("real", "synthetic", tick="holdout")
        + f'<div class="grid2">{"".join(charts)}</div>'
    )


def _rules(report: EvaluationReport) -> str:
    if not report.rules:
        return ""
    rows = [(r.rule, pct(r.train), pct(r.holdout), pct(r.synthetic)) for r in report.rules]
    return (
        "<h2>Declared rules</h2><p class='lead'>Share of rows that break each rule of the schema. The synthesizer "
        "enforces them on every sampled row (post-processing: no privacy cost); the real rows' shares are exact "
        "counts, not differentially private.</p>"
        + _table(["rule", "real (training)", "real (holdout)", "synthetic"], rows, numeric={1, 2, 3})
    )


def _associations(report: EvaluationReport) -> str:
    fid = report.fidelity
    if fid is None or not fid.association_names:
        return ""
    names = fid.association_names
    real, synth = fid.association_real, fid.association_synthetic
    diff = [[_sub(s, r) for r, s in zip(rr, ss)] for rr, ss in zip(real, synth)]
    off = [abs(v) for i, row in enumerate(diff) for j, v in enumerate(row) if i != j and math.isfinite(v)]
    scale = max(0.1, math.ceil(max(off, default=0.0) * 10) / 10)

    def div(v: float) -> str:
        return svg.diverging(v, scale)

    def panel(title: str, matrix, color, legend: str) -> str:
        return f'<div class="card"><h3>{text(title)}</h3>{svg.heatmap(names, matrix, color, title=title)}{legend}</div>'

    seq_legend = svg.legend(svg.sequential, 0.0, 1.0, label="association strength")
    div_legend = svg.legend(div, -scale, scale, label="synthetic − real")
    return (
        "<h2>Associations</h2><p class='lead'>Pairwise association of the columns: Cramér's V between two "
        "categorical columns, the correlation ratio between a categorical and a numeric one, |Spearman rank "
        f"correlation| between two numeric ones. Mean |difference| off the diagonal: {fmt(fid.association_diff_mean)} "
        f"(ceiling {fmt(fid.association_diff_ceiling)}, holdout vs training). 2-way TVD: {fmt(fid.tvd_2way)} "
        f"(ceiling {fmt(fid.tvd_2way_ceiling)}).</p><div class='grid3'>"
        + panel("Real (training rows)", real, svg.sequential, seq_legend)
        + panel("Synthetic", synth, svg.sequential, seq_legend)
        + panel("Difference (synthetic − real)", diff, div, div_legend)
        + "</div>"
    )


def _sub(a: Any, b: Any) -> float:
    try:
        return float(a) - float(b)
    except (TypeError, ValueError):
        return float("nan")


# -- privacy attacks ---------------------------------------------------------------------------
def dcr_histogram(attack: Attack) -> dict[str, list[float]] | None:
    """The DCR attack's histograms, ``details["histogram"] = {"bin_edges", "members",
    "non_members"}`` (counts of training and holdout rows per distance bin), or None."""
    hist = attack.details.get("histogram") if isinstance(attack.details, dict) else None
    if not isinstance(hist, dict) or not {"bin_edges", "members", "non_members"} <= hist.keys():
        return None
    edges, members, non_members = hist["bin_edges"], hist["members"], hist["non_members"]
    if len(edges) != len(members) + 1 or len(members) != len(non_members) or not members:
        return None
    return {"edges": edges, "train": members, "holdout": non_members}


def _scalar_details(details: dict[str, Any]) -> str:
    items = [
        f"{text(k)}: {text(fmt(v))}"
        for k, v in details.items()
        if isinstance(v, (int, float, str, bool)) and not isinstance(v, dict)
    ]
    return "; ".join(items)


def _attacks(report: EvaluationReport) -> str:
    if not report.attacks:
        return ""
    rows = []
    for a in report.attacks:
        gate = _gate_for(report, a.attack_version)
        rows.append(
            (
                a.attack_version,
                fmt(a.score),
                fmt(gate.threshold) if gate else "–",
                Raw(_badge(gate.passed if gate else None)),
                a.description,
                _scalar_details(a.details),
            )
        )
    parts = [
        "<h2>Privacy attacks</h2><p class='lead'>Membership-inference scores are the attacker's AUC at telling "
        "training rows from holdout rows: 0.5 is guessing, 1 exposes every member. Anonymeter figures are risks "
        "in [0, 1], 0 being none. Releasing the training rows themselves scores about 1; releasing fresh real "
        "rows (the holdout) about 0.5.</p>",
        _table(
            ["attack", "score", "threshold", "result", "what it measures", "details"],
            rows,
            numeric={1, 2},
            row_class=lambda r: "fail" if "FAIL" in r[3] else "",
        ),
    ]
    for a in report.attacks:
        hist = dcr_histogram(a)
        if hist is None:
            continue
        chart = svg.histogram(
            hist["edges"],
            {"train": hist["train"], "holdout": hist["holdout"]},
            title=f"{a.attack_version}: distance to the closest synthetic row",
            x_label="distance to the closest synthetic record (DCR)",
        )
        parts.append(
            f'<div class="card" style="margin-top:12px"><h3>{text(a.attack_version)}: distance to the closest '
            f'synthetic record</h3><p class="muted">If the synthetic rows copy their training rows, training '
            f"rows sit closer to them than holdout rows do: the red curve shifts left of the black one.</p>"
            f"{_key('train', 'holdout')}{chart}</div>"
        )
    return "".join(parts)


def _utility(report: EvaluationReport) -> str:
    u = report.utility
    if u is None:
        return "<h2>Utility</h2><p class='muted'>Not measured.</p>"
    metrics = list(dict.fromkeys([*u.trtr, *u.tstr]))
    rows = [(m, fmt(u.tstr.get(m)), fmt(u.trtr.get(m))) for m in metrics]
    return (
        f"<h2>Utility</h2><p class='lead'>{text(u.task.capitalize())} of <code>{text(u.target)}</code> with "
        f"<code>{text(u.model)}</code>, scored on the real holdout rows: trained on synthetic rows (TSTR) beside "
        f"trained on the real training rows (TRTR, the ceiling).</p>"
        + _table(["metric", "TSTR (synthetic)", "TRTR (real)"], rows, numeric={1, 2})
    )


_COPY_KINDS = {"exact": "exact copies", "near": "near copies"}
_COPY_AGAINST = ("train", "holdout", "ceiling")


def _copies(report: EvaluationReport) -> str:
    copies = dict(report.copies)
    if not copies:
        return ""
    rows = []
    for kind, label in _COPY_KINDS.items():
        values = [copies.pop(f"{kind}_copy_rate_{against}", None) for against in _COPY_AGAINST]
        if any(v is not None for v in values):
            rows.append((label, *(pct(v) for v in values)))
    threshold = copies.pop("near_copy_threshold", None)
    rows += [(k.replace("_", " "), fmt(v, 4), "", "") for k, v in copies.items()]  # figures added later
    near = (
        f" A near copy lies within {fmt(threshold, 3)} of a real row (the 1st percentile of holdout rows' "
        "distances to their closest training row)."
        if threshold is not None
        else ""
    )
    return (
        "<h2>Copies</h2><p class='lead'>Share of synthetic rows identical (exact) or nearly identical (near) to a "
        "real row. Against training rows it should not exceed the rate against holdout rows; the ceiling is what "
        f"fresh real rows show (holdout rows against training rows).{text(near)}</p>"
        + _table(
            ["", "synthetic vs training", "synthetic vs holdout", "ceiling (holdout vs training)"],
            rows,
            numeric={1, 2, 3},
        )
    )


def _delta(priv: dict[str, Any]) -> str:
    value = priv.get("delta_spent")
    return f"{value:.3g}" if isinstance(value, (int, float)) else "n/a"


def _ledger(report: EvaluationReport) -> str:
    priv = report.privacy
    if not priv:
        return (
            "<h2>Privacy accounting</h2><p class='muted'>No privacy ledger: this synthetic table was not produced "
            "by this run.</p>"
        )
    charges = priv.get("charges", [])
    rows = [
        (
            c.get("step"),
            c.get("mechanism"),
            fmt(c.get("sensitivity"), 3),
            fmt(c.get("noise"), 4),
            fmt(c.get("rho"), 4),
            fmt(c.get("delta"), 3),
        )
        for c in charges
    ]
    rows.append(
        (
            "total",
            f"{len(charges)} charges",
            "",
            "",
            f"{fmt(priv.get('rho_spent'), 4)} of {fmt(priv.get('rho_budget'), 4)}",
            f"{fmt(priv.get('delta_spent'), 3)} of {fmt(priv.get('delta'), 3)}",
        )
    )
    table = _table(
        ["step", "mechanism", "sensitivity", "sigma / epsilon", "rho (zCDP)", "delta"],
        rows,
        numeric={2, 3, 4, 5},
        row_class=lambda r: "total" if r[0] == "total" else "",
    )
    opened = " open" if len(charges) <= 20 else ""
    return (
        f"<h2>Privacy accounting</h2><p class='lead'>Unit of privacy: {text(priv.get('unit', 'one row'))}. "
        f"Spent: epsilon {fmt(priv.get('epsilon_spent'), 4)} of {fmt(priv.get('epsilon'), 4)} at delta "
        f"{_delta(priv)}; every charge is a mechanism run (Gaussian noise "
        f"sigma, or the exponential mechanism's epsilon), and zCDP costs add up. Only the synthetic data and the "
        f"model are covered: the real-data figures in this report are not differentially private.</p>"
        f"<details{opened}><summary>{len(charges)} charges</summary>{table}</details>"
    )


def render_html(report: EvaluationReport, title: str = "Synthroom evaluation report") -> str:
    """The whole page as one string."""
    from .. import __version__

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{text(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{text(title)}</h1><p class='lead'>Generated {when} by synthroom {text(__version__)}. "
        "Self-contained: opens offline. It shows real-data figures: share it only with people who may see them.</p>"
        + _summary(report)
        + _fidelity(report)
        + _rules(report)
        + _associations(report)
        + _attacks(report)
        + _utility(report)
        + _copies(report)
        + _ledger(report)
        + f"<footer>{text('Timings: ' + timings) if timings else ''}</footer></main></body></html>"
    )
