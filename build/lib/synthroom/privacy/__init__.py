"""Differential-privacy accounting and the noise mechanisms Synthroom uses.

Every mechanism states its sensitivity and charges its cost to one :class:`ZCDPAccountant`.
"""

from .accountant import BudgetExceeded, Charge, ZCDPAccountant, epsilon_from_rho, rho_from_epsilon

__all__ = ["BudgetExceeded", "Charge", "ZCDPAccountant", "epsilon_from_rho", "rho_from_epsilon"]
