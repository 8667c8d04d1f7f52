"""What an evaluation produces: plain dataclasses, shared by the JSON writer, the HTML report,
the release gate and the clean room.

Every figure is stored beside its *ceiling*: the same figure for the real holdout rows against
the real training rows, i.e. what a perfect synthesizer (fresh real rows) would score.
``to_dict`` spells the reference product's fields where they exist (``fidelityScore``,
``membershipInferenceAttackScores`` as ``[{"attackVersion", "score"}]``, our DCR attack first).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class ColumnFidelity:
    """One column: KL(real train || synthetic) on stated bins, and its distributions for plots."""

    name: str
    kind: str  # categorical | numerical | datetime
    kl: float  # synthetic vs real training rows
    kl_ceiling: float  # real holdout vs real training rows
    score: float  # exp(-kl), in (0, 1]
    bins: list[str]  # bin labels (category values, or numeric ranges)
    real: list[float]  # share of training rows per bin
    synthetic: list[float]
    holdout: list[float]


@dataclass
class Fidelity:
    """Overall fidelity: the mean of the per-column scores, 2-way TVD, association differences."""

    score: float  # mean over columns of exp(-KL)
    score_ceiling: float
    columns: list[ColumnFidelity]
    tvd_2way: float  # mean total-variation distance over all column pairs (binned)
    tvd_2way_ceiling: float
    association_names: list[str]  # column order of the matrices below
    association_real: list[list[float]]  # pairwise association (Cramér's V / correlation ratio / |Pearson|)
    association_synthetic: list[list[float]]
    association_diff_mean: float  # mean |real - synthetic| over off-diagonal pairs
    association_diff_ceiling: float  # same for holdout vs train
    association_holdout: list[list[float]] = field(default_factory=list)  # the ceiling's matrix


@dataclass
class Utility:
    """Train on synthetic, test on real holdout (TSTR) beside train on real (TRTR)."""

    task: Literal["classification", "regression"]
    target: str
    model: str  # e.g. "HistGradientBoostingClassifier(max_iter=200)"
    tstr: dict[str, float]  # classification: auc, accuracy, f1; regression: r2, mae
    trtr: dict[str, float]


@dataclass
class Attack:
    """One membership-inference (or other) attack's result.

    ``score``: for membership attacks the attacker's AUC at telling training rows from holdout
    rows (0.5 = guessing, 1 = every member exposed); for anonymeter risks, the risk in [0, 1].
    """

    attack_version: str  # e.g. "DCR-v1", "DENSITY-RATIO-v1", "ANONYMETER-SINGLING-OUT-v1"
    score: float
    description: str
    details: dict[str, Any] = field(default_factory=dict)  # histograms, CIs, sample sizes


@dataclass
class GateResult:
    """One release gate: ``value`` must be at most ``threshold``."""

    name: str  # the attack_version (or metric) it reads
    threshold: float
    value: float
    passed: bool


@dataclass
class RuleCheck:
    """One declared rule: the share of rows that break it (real training and holdout rows: not
    DP, for the data owner; synthetic rows: 0 when the synthesizer enforced the rules)."""

    rule: str  # the rule's name, or its text
    train: float
    holdout: float
    synthetic: float


@dataclass
class EvaluationReport:
    """Everything one evaluation measured, and whether release is allowed."""

    rows: dict[str, int]  # train / holdout / synthetic rows used (after subsampling)
    notes: list[str]  # e.g. "training rows subsampled to 50,000 (seed 0)"
    fidelity: Fidelity | None  # None when the evaluation was skipped (too few rows; see the notes)
    utility: Utility | None
    attacks: list[Attack]  # DCR first
    copies: dict[str, float]  # exact/near copy rates against train vs holdout
    gates: list[GateResult]
    advice: list[str]  # what to try when a gate fails
    privacy: dict[str, Any] | None = None  # the accountant's ledger, when we synthesized
    timings: dict[str, float] = field(default_factory=dict)
    rules: list[RuleCheck] = field(default_factory=list)  # the schema's declared rules, checked

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; reference-product field names first."""
        return {
            "fidelityScore": self.fidelity.score if self.fidelity is not None else None,
            "membershipInferenceAttackScores": [
                {"attackVersion": a.attack_version, "score": a.score} for a in self.attacks
            ],
            "released": self.passed,
            "gates": [asdict(g) for g in self.gates],
            "advice": self.advice,
            "rows": self.rows,
            "notes": self.notes,
            "fidelity": asdict(self.fidelity) if self.fidelity is not None else None,
            "utility": asdict(self.utility) if self.utility is not None else None,
            "attacks": [asdict(a) for a in self.attacks],
            "copies": self.copies,
            "privacy": self.privacy,
            "timings": self.timings,
            "rules": [asdict(r) for r in self.rules],
        }
