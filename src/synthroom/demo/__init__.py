"""Seeded simulators that produce the project's own demo data (no downloads, no real people)."""

from .simulator import CUSTOMERS_SCHEMA, simulate_customers

__all__ = ["CUSTOMERS_SCHEMA", "simulate_customers"]
