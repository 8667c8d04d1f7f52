import math

import pytest

from synthroom.privacy import BudgetExceeded, ZCDPAccountant, epsilon_from_rho, rho_from_epsilon


def _cks_delta(rho: float, eps: float) -> float:
    """Canonne-Kamath-Steinke (2020) Prop. 7 bound, minimised over a fine alpha grid."""
    best = 0.0  # log of the bound
    for i in range(1, 200_000):
        a = 1 + i * 1e-3
        log_d = (a - 1) * (a * rho - eps) + a * math.log1p(-1 / a) - math.log(a - 1)
        best = min(best, log_d)
    return math.exp(best)


@pytest.mark.parametrize("rho", [0.001, 0.0144, 0.5])
def test_conversion_matches_the_published_bound(rho):
    eps = epsilon_from_rho(rho, 1e-9)
    assert _cks_delta(rho, eps) == pytest.approx(1e-9, rel=1e-3)


def test_conversion_is_tighter_than_the_classic_one():
    rho, delta = 0.0144, 1e-9
    classic = rho + 2 * math.sqrt(rho * math.log(1 / delta))
    assert epsilon_from_rho(rho, delta) < classic


@pytest.mark.parametrize("eps", [0.0001, 0.1, 1.0, 10.0])
def test_rho_from_epsilon_inverts_the_conversion(eps):
    rho = rho_from_epsilon(eps, 1e-9)
    assert epsilon_from_rho(rho, 1e-9) == pytest.approx(eps, rel=1e-6)
    assert epsilon_from_rho(rho * 1.001, 1e-9) > eps


def test_charges_add_up_and_overspending_is_refused():
    acc = ZCDPAccountant(1.0, 1e-9)
    sigma = 1 / math.sqrt(2 * acc.rho_budget / 2)
    acc.charge_gaussian("half", 1.0, sigma)
    acc.charge_exponential("quarter", 1.0, math.sqrt(8 * acc.rho_budget / 4))
    assert acc.rho_spent == pytest.approx(0.75 * acc.rho_budget, rel=1e-12)
    with pytest.raises(BudgetExceeded, match="too much: needs rho="):
        acc.charge_gaussian("too much", 1.0, sigma)
    acc.charge_gaussian("rest", 2.0, 2.0 / math.sqrt(2 * acc.rho_remaining))
    assert acc.rho_spent == pytest.approx(acc.rho_budget, rel=1e-12)
    assert acc.epsilon_spent() == pytest.approx(1.0, rel=1e-6)


def test_threshold_delta_is_reserved_from_the_total():
    acc = ZCDPAccountant(1.0, 1e-9, delta_threshold=5e-10)
    assert acc.rho_budget == pytest.approx(rho_from_epsilon(1.0, 5e-10))
    acc.charge_gaussian("select", 1.0, 50.0, delta=5e-10)
    with pytest.raises(BudgetExceeded, match="beyond the reserved share"):
        acc.charge_gaussian("select again", 1.0, 50.0, delta=1e-10)
    assert acc.delta_spent() == pytest.approx(1e-9)


def test_the_ledger_names_its_unit_and_where_its_noise_came_from():
    plain = ZCDPAccountant(1.0, 1e-9).summary()
    assert plain["unit"] == "one input row (add/remove)" and plain["unit_cap"] == 1
    assert plain["reproducible"] is False
    seeded = ZCDPAccountant(1.0, 1e-9, unit_cap=7, randomness="seeded: x", reproducible=True).summary()
    assert seeded["unit"] == "one person with up to 7 rows (add/remove)" and seeded["unit_cap"] == 7
    assert seeded["reproducible"] is True and seeded["randomness"] == "seeded: x"
    # The cap does not change the budget: each mechanism charges its per-person sensitivity instead.
    assert ZCDPAccountant(1.0, 1e-9, unit_cap=7).rho_budget == ZCDPAccountant(1.0, 1e-9).rho_budget


@pytest.mark.parametrize("cap", [0, -1, 1.5, True, "3"])
def test_a_unit_cap_must_be_a_whole_number_of_rows(cap):
    with pytest.raises(ValueError, match=f"unit_cap {cap!r} must be a whole number of rows per person, at least 1"):
        ZCDPAccountant(1.0, 1e-9, unit_cap=cap)
