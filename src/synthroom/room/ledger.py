"""The privacy-budget ledger: each configured table's total epsilon, what jobs have spent.

A reservation is one conditional UPDATE per table (``spent + eps <= budget``) inside the job's
creating transaction, so two jobs started at once cannot both pass the check: the database
applies the updates one after the other and the second finds the budget gone. If any table
refuses, the transaction rolls back and no table is charged. A release (a job that failed
before any DP computation, or was interrupted) subtracts exactly what was reserved, for every
table, in one transaction with the job's state change.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .errors import BudgetExhausted
from .models import ConfiguredTable, LedgerEntry

_TOLERANCE = 1e-9  # float sums of epsilons


def reserve(session: Session, job_id: int, tables: list[ConfiguredTable], epsilon: float) -> None:
    """Charge ``epsilon`` to every table for ``job_id``, or raise :class:`BudgetExhausted`."""
    for table in tables:
        result = session.execute(
            update(ConfiguredTable)
            .where(ConfiguredTable.id == table.id,
                   ConfiguredTable.epsilon_spent + epsilon <= ConfiguredTable.epsilon_budget + _TOLERANCE)
            .values(epsilon_spent=ConfiguredTable.epsilon_spent + epsilon)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            budget, spent = session.execute(
                select(ConfiguredTable.epsilon_budget, ConfiguredTable.epsilon_spent).where(ConfiguredTable.id == table.id)
            ).one()
            raise BudgetExhausted(
                f"table {table.name!r} has epsilon {max(budget - spent, 0.0):.4g} left of {budget:g}; "
                f"this job needs {epsilon:g}"
            )
        session.add(LedgerEntry(table_id=table.id, job_id=job_id, kind="reserve", epsilon=epsilon))
    session.flush()


def release(session: Session, job_id: int) -> float:
    """Give back every reservation of ``job_id`` that was not released yet; returns the epsilon."""
    entries = list(session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)))
    net: dict[int, float] = {}
    for e in entries:
        net[e.table_id] = net.get(e.table_id, 0.0) + (e.epsilon if e.kind == "reserve" else -e.epsilon)
    total = 0.0
    for table_id, eps in net.items():
        if eps <= _TOLERANCE:
            continue
        session.execute(
            update(ConfiguredTable).where(ConfiguredTable.id == table_id)
            .values(epsilon_spent=ConfiguredTable.epsilon_spent - eps)
            .execution_options(synchronize_session=False)
        )
        session.add(LedgerEntry(table_id=table_id, job_id=job_id, kind="release", epsilon=eps))
        total += eps
    session.flush()
    return total


def remaining(table: ConfiguredTable) -> float:
    return max(table.epsilon_budget - table.epsilon_spent, 0.0)
