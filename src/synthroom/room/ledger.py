"""The privacy-budget ledger: each configured table's total epsilon and delta, what jobs have spent.

A reservation is one conditional UPDATE per table (``spent + eps <= budget`` and ``spent + delta
<= budget``) inside the job's creating transaction, so two jobs started at once cannot both pass
the check: the database applies the updates one after the other and the second finds the budget
gone. If any table refuses, the transaction rolls back and no table is charged. A release (a job
that failed before its template read any row, see :func:`synthroom.room.jobs.refunded`) subtracts
exactly what was reserved, epsilon and delta, for every table, in one transaction with the job's
state change.

Delta adds up per job like epsilon (basic composition of (epsilon, delta) guarantees across jobs),
so each table's rule bounds it too (``delta_budget``, default :data:`DEFAULT_DELTA_BUDGET`).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .errors import BudgetExhausted
from .models import ConfiguredTable, LedgerEntry

_TOLERANCE = 1e-9  # float sums of epsilons
_DELTA_SLACK = 1 + 1e-9  # float sums of deltas (relative: deltas are tiny)
DEFAULT_DELTA_BUDGET = 1e-6  # a thousand jobs at the templates' default delta of 1e-9


def reserve(session: Session, job_id: int, tables: list[ConfiguredTable], epsilon: float, delta: float) -> None:
    """Charge ``epsilon`` and ``delta`` to every table for ``job_id``, or raise :class:`BudgetExhausted`."""
    for table in tables:
        result = session.execute(
            update(ConfiguredTable)
            .where(
                ConfiguredTable.id == table.id,
                ConfiguredTable.epsilon_spent + epsilon <= ConfiguredTable.epsilon_budget + _TOLERANCE,
                ConfiguredTable.delta_spent + delta <= ConfiguredTable.delta_budget * _DELTA_SLACK,
            )
            .values(
                epsilon_spent=ConfiguredTable.epsilon_spent + epsilon, delta_spent=ConfiguredTable.delta_spent + delta
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:  # an UPDATE's CursorResult
            raise BudgetExhausted(_refusal(session, table, epsilon, delta))
        session.add(LedgerEntry(table_id=table.id, job_id=job_id, kind="reserve", epsilon=epsilon, delta=delta))
    session.flush()


def _refusal(session: Session, table: ConfiguredTable, epsilon: float, delta: float) -> str:
    """Names the budget that ran out (epsilon first), what is left and what the job needs."""
    eps_budget, eps_spent, delta_budget, delta_spent = session.execute(
        select(
            ConfiguredTable.epsilon_budget,
            ConfiguredTable.epsilon_spent,
            ConfiguredTable.delta_budget,
            ConfiguredTable.delta_spent,
        ).where(ConfiguredTable.id == table.id)
    ).one()
    if eps_spent + epsilon > eps_budget + _TOLERANCE:
        return (
            f"table {table.name!r} has epsilon {max(eps_budget - eps_spent, 0.0):.4g} left of {eps_budget:g}; "
            f"this job needs {epsilon:g}"
        )
    return (
        f"table {table.name!r} has delta {max(delta_budget - delta_spent, 0.0):.4g} left of {delta_budget:g}; "
        f"this job needs {delta:g}"
    )


def release(session: Session, job_id: int) -> float:
    """Give back every reservation of ``job_id`` that was not released yet (epsilon and delta);
    returns the epsilon."""
    entries = list(session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)))
    net: dict[int, list[float]] = {}
    for e in entries:
        sign = 1.0 if e.kind == "reserve" else -1.0
        eps, delta = net.setdefault(e.table_id, [0.0, 0.0])
        net[e.table_id] = [eps + sign * e.epsilon, delta + sign * (e.delta or 0.0)]
    total = 0.0
    for table_id, (eps, delta) in net.items():
        if eps <= _TOLERANCE and delta <= 0.0:
            continue
        session.execute(
            update(ConfiguredTable)
            .where(ConfiguredTable.id == table_id)
            .values(epsilon_spent=ConfiguredTable.epsilon_spent - eps, delta_spent=ConfiguredTable.delta_spent - delta)
            .execution_options(synchronize_session=False)
        )
        session.add(LedgerEntry(table_id=table_id, job_id=job_id, kind="release", epsilon=eps, delta=delta))
        total += eps
    session.flush()
    return total


def remaining(table: ConfiguredTable) -> float:
    return max(table.epsilon_budget - table.epsilon_spent, 0.0)


def delta_remaining(table: ConfiguredTable) -> float:
    return max(table.delta_budget - table.delta_spent, 0.0)
