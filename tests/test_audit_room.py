"""The room audit (``bench/audit.py --room``): its neighbouring tables, its fault switch and its
arithmetic. One cheap play each shows a broken variant changes what the attacker sees."""

from __future__ import annotations

import pytest
from benchkit import load_bench

audit_room = load_bench("audit_room")


def test_neighbouring_tables_differ_by_one_person_up_to_the_cap_in_one_partys_table():
    game = audit_room.build_room_game()
    d, d2 = game.orders_of(False), game.orders_of(True)
    assert len(d2) - len(d) == audit_room.CAP
    assert set(d2.user_id) - set(d.user_id) == {game.canary}
    assert game.canary in set(game.people.user_id)  # the attacker (the publisher) knows the canary
    assert game.joined_rows(True) - game.joined_rows(False) == audit_room.CAP
    assert game.joined_rows(False) >= 2500  # big enough that the DP holdout-size check lets the evaluation run


def test_the_fault_switch_restores_the_room_and_is_off_by_default():
    from synthroom.room import jobs

    game = audit_room.build_room_game()
    original = (jobs.refunded, jobs.run_template)
    with audit_room.injected("refund_on_failure", game):
        assert jobs.refunded("template_error", True) and jobs.run_template is not original[1]
    assert (jobs.refunded, jobs.run_template) == original
    assert not jobs.refunded("template_error", True)
    with audit_room.injected("as shipped", game):
        assert (jobs.refunded, jobs.run_template) == original


@pytest.mark.parametrize("variant, refunded", [("as shipped", False), ("refund_on_failure", True)])
def test_a_failure_on_the_canary_is_refunded_only_in_the_broken_room(variant, refunded, monkeypatch):
    """With the canary failing the run (what error() on it did), the shipped room charges and the
    broken one refunds: the refund statistic sees the difference."""
    from synthroom.errors import InputError
    from synthroom.room import jobs

    real = jobs.run_template

    def fails_on_the_canary(checked, sources, cap, seed):
        execution = real(checked, sources, cap=cap, seed=seed)
        if (execution.frame["channel"] == audit_room.CANARY_CHANNEL).any():
            raise InputError("canary")
        return execution

    if variant == "as shipped":
        monkeypatch.setattr(jobs, "run_template", fails_on_the_canary)
    out = audit_room.play((variant, True, None))
    assert (out["state"], out["category"], out["refunded"]) == ("failed", "template_error", refunded)
    assert out["summary_seen"] is False and out["audit"][-1] == "job.failed"
    th = audit_room.Thresholds(rows=1000.0, time=5.0, seed_rows={False: 1, True: 2})
    assert audit_room.statistics(out, th) == {
        "state": True,
        "refund": refunded,
        "rows": False,
        "time": False,
        "seed": False,
    }


def test_statistics_and_verdicts():
    th = audit_room.Thresholds(rows=1186.0, time=10.0, seed_rows={False: 1180, True: 1182})
    seen = {"state": "finished", "refunded": False, "rows_synthetic": 1182, "compute_seconds": 11}
    assert audit_room.statistics(seen, th) == {
        "state": False,
        "refund": False,
        "rows": False,
        "time": True,
        "seed": True,
    }
    same = audit_room.Thresholds(rows=1186.0, time=10.0, seed_rows={False: 1182, True: 1182})
    assert not audit_room.statistics(seen, same)["seed"]  # no seed statistic when the seed-0 runs agree
    broken = audit_room.RoomConfig("known_seed", 20)
    broken.hits["seed"] = [0, 20]
    assert broken.empirical()[0] == "seed" and broken.empirical()[1] > 1.0 and broken.passed()
    shipped = audit_room.RoomConfig("as shipped", 20)
    shipped.hits["rows"] = [9, 11]
    assert shipped.passed() and shipped.empirical()[1] < 0.5
    shipped.leaks.append("summary")
    assert not shipped.passed()
    few = audit_room.RoomConfig("probe", 10)  # 10 runs can show at most 0.36, yet 10 of 10 is a leak
    few.hits["state"] = [0, 10]
    assert few.empirical()[1] < 1.0 and few.separating() == ["state"] and not few.passed()
    line, ok = audit_room.summary([broken, audit_room.RoomConfig("as shipped", 20)])
    assert ok and line.startswith("room audit: 1 shipped configurations, 1 of 1 broken variants caught")
