"""Seeded simulators that produce the project's own demo data (no downloads, no real people)."""

from .customers import CITY_HIERARCHY, CUSTOMER_TABLE_SCHEMA, simulate_customer_table, write_customer_table
from .simulator import CUSTOMERS_SCHEMA, simulate_customers

__all__ = [
    "CITY_HIERARCHY",
    "CUSTOMERS_SCHEMA",
    "CUSTOMER_TABLE_SCHEMA",
    "simulate_customer_table",
    "simulate_customers",
    "write_customer_table",
]
