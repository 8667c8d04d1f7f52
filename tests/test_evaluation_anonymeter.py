"""anonymeter's risks through the sidecar interpreter (see synthroom/evaluation/sidecar.py).

Skipped when no sidecar exists; create it once with
``.venv/bin/python -c "from synthroom.evaluation import setup_anonymeter_venv; setup_anonymeter_venv()"``
(or ``synthroom setup-anonymeter``).
"""

from __future__ import annotations

import pytest

from synthroom.demo.simulator import CUSTOMERS_SCHEMA, simulate_customers
from synthroom.evaluation import evaluate, find_sidecar
from synthroom.evaluation.sidecar import ATTACK_VERSIONS

ROWS = 1000

interpreter, why_absent = find_sidecar()
pytestmark = pytest.mark.skipif(
    interpreter is None,
    reason=f"anonymeter sidecar absent ({why_absent}); create it with "
    '`.venv/bin/python -c "from synthroom.evaluation import setup_anonymeter_venv; setup_anonymeter_venv()"`',
)


@pytest.fixture(scope="module")
def real():
    df = simulate_customers(3 * ROWS, seed=11)
    return df.iloc[:ROWS], df.iloc[ROWS : 2 * ROWS], df.iloc[2 * ROWS :]


def _risks(report) -> dict[str, float]:
    return {a.attack_version: a.score for a in report.attacks if a.attack_version.startswith("ANONYMETER")}


def test_copied_training_rows_are_linkable_and_gated(real):
    train, holdout, _ = real
    report = evaluate(train, holdout, train.copy(), CUSTOMERS_SCHEMA, gates={"ANONYMETER-LINKABILITY-v1": 0.2})
    risks = _risks(report)
    assert list(risks) == list(ATTACK_VERSIONS), report.notes
    assert risks["ANONYMETER-LINKABILITY-v1"] > 0.8  # each half of a row leads to the same copy
    assert risks["ANONYMETER-SINGLING-OUT-MULTIVARIATE-v1"] > 0.3
    for attack in report.attacks[2:]:
        lo, hi = attack.details["ci"]
        assert 0.0 <= lo <= attack.score <= hi <= 1.0
        assert attack.details["configuration"]["n_attacks"] == 500
    assert not report.passed
    assert report.advice[0] == (
        "ANONYMETER-LINKABILITY-v1 is over its threshold of 0.2: anonymeter's attack "
        "succeeds on training rows more often than on unseen rows."
    )


def test_fresh_real_rows_carry_little_risk(real):
    train, holdout, fresh = real
    risks = _risks(evaluate(train, holdout, fresh, CUSTOMERS_SCHEMA))
    assert list(risks) == list(ATTACK_VERSIONS)
    assert risks["ANONYMETER-LINKABILITY-v1"] < 0.1
    assert risks["ANONYMETER-SINGLING-OUT-UNIVARIATE-v1"] < 0.1
