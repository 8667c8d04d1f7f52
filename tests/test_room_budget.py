"""Jobs started at the same moment on one table cannot overspend its budget or its gated runs."""

import threading

import pytest
from roomkit import two_party
from sqlalchemy import func, select

from synthroom.room import BudgetExhausted, Conflict, start_job
from synthroom.room.models import ConfiguredTable, LedgerEntry


def _start_together(tp, threads: int, refusal: type[Exception]) -> list[str]:
    """Start the template from ``threads`` threads at once; "started" or each refusal's message."""
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []

    def start():
        barrier.wait()
        try:
            start_job(tp.room, tp.advertiser, tp.template["id"])
            outcomes.append("started")
        except refusal as exc:
            outcomes.append(str(exc))

    workers = [threading.Thread(target=start) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    return outcomes


@pytest.mark.parametrize("threads, budget, allowed", [(2, 1.5, 1), (6, 2.5, 2)])
def test_concurrent_starts_never_overspend(tmp_path, threads, budget, allowed):
    tp = two_party(tmp_path, users=200, budget=budget)
    outcomes = _start_together(tp, threads, BudgetExhausted)
    assert outcomes.count("started") == allowed, outcomes
    assert all("left of" in o for o in outcomes if o != "started")
    for table_id, owner in ((tp.audience, tp.publisher), (tp.conversions, tp.advertiser)):
        view = tp.room.get_table(owner, table_id)
        assert view["epsilon_spent"] == pytest.approx(allowed * 1.0)
        assert view["epsilon_spent"] <= view["epsilon_budget"]
        assert view["delta_spent"] == pytest.approx(allowed * 1e-9, rel=1e-9)  # delta in the same ledger
    with tp.room.transaction() as s:  # the ledger agrees with the running totals
        assert s.scalar(select(func.sum(LedgerEntry.epsilon))) == pytest.approx(2 * allowed)
        assert s.scalar(select(func.sum(LedgerEntry.delta))) == pytest.approx(2 * allowed * 1e-9, rel=1e-9)


def test_concurrent_starts_never_exceed_the_gated_run_limit(tmp_path):
    tp = two_party(tmp_path, users=200, budget=10)
    with tp.room.transaction() as s:
        s.get(ConfiguredTable, tp.conversions).max_gated_runs = 2
    outcomes = _start_together(tp, 5, Conflict)
    assert outcomes.count("started") == 2, outcomes
    assert all("has used its 2 gated runs" in o for o in outcomes if o != "started")
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(2.0)
