"""Synthroom: differentially private synthetic data from joined, sensitive tables.

The library's front door is :class:`Synthesizer`::

    from synthroom import Synthesizer
    synth = Synthesizer(schema, epsilon=1.0, seed=0).fit("customers.parquet")
    synthetic = synth.sample(50_000)
"""

from .errors import InputError, SchemaError, SynthroomError
from .schema import ColumnSpec, Schema, load_schema, parse_schema
from .synthesis import DEFAULT_DELTA, Synthesizer

__version__ = "0.1.0"
__all__ = [
    "ColumnSpec",
    "DEFAULT_DELTA",
    "InputError",
    "SchemaError",
    "Schema",
    "Synthesizer",
    "SynthroomError",
    "load_schema",
    "parse_schema",
]
