"""Each declared rule's violation rate in the real training rows, the real holdout rows and the
synthetic rows (docs/evaluation.md, "Rules").

The real rows' rates are exact counts over real rows, not differentially private, like every
other real-data figure of the report: they are for the data owner. A clean-room member sees none
of them (:func:`.disclosure.member_summary` leaves them out); the synthetic rows' rate is a
property of the synthetic rows alone.
"""

from __future__ import annotations

from ..rules import violation_rates
from ..schema import Schema
from .result import RuleCheck
from .tables import Tables


def check_rules(tables: Tables, schema: Schema) -> list[RuleCheck]:
    """One :class:`RuleCheck` per declared rule, on the normalised tables."""
    if not schema.rules:
        return []
    rates = {
        key: violation_rates(schema.rules, {c: df[c].to_numpy() for c in df.columns}, len(df))
        for key, df in tables.items()
    }
    return [
        RuleCheck(rule.label, rates["train"][i], rates["holdout"][i], rates["synthetic"][i])
        for i, rule in enumerate(schema.rules)
    ]
