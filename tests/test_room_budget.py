"""Jobs started at the same moment on one table cannot overspend its budget."""

import threading

import pytest
from roomkit import two_party
from sqlalchemy import func, select

from synthroom.room import BudgetExhausted, start_job
from synthroom.room.models import LedgerEntry


@pytest.mark.parametrize("threads, budget, allowed", [(2, 1.5, 1), (6, 2.5, 2)])
def test_concurrent_starts_never_overspend(tmp_path, threads, budget, allowed):
    tp = two_party(tmp_path, users=200, budget=budget)
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []

    def start(i):
        barrier.wait()
        try:
            start_job(tp.room, tp.advertiser, tp.template["id"], seed=i)
            outcomes.append("started")
        except BudgetExhausted as exc:
            outcomes.append(str(exc))

    workers = [threading.Thread(target=start, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert outcomes.count("started") == allowed, outcomes
    assert all("left of" in o for o in outcomes if o != "started")
    for table_id, owner in ((tp.audience, tp.publisher), (tp.conversions, tp.advertiser)):
        view = tp.room.get_table(owner, table_id)
        assert view["epsilon_spent"] == pytest.approx(allowed * 1.0)
        assert view["epsilon_spent"] <= view["epsilon_budget"]
    with tp.room.transaction() as s:  # the ledger agrees with the running totals
        assert s.scalar(select(func.sum(LedgerEntry.epsilon))) == pytest.approx(2 * allowed)
