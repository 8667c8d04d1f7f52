"""Where the raw rows live: a narrow counting interface over DuckDB.

The synthesis core never sees a row. It asks this layer for counts: of each distinct category,
of a numeric column on a fixed public grid, and of marginals over encoded (binned) columns.
Those counts are what the privacy mechanisms noise; this file boundary is the privacy boundary.
"""

from .counting import CategoryCoding, CountingSource, NumericCoding, Pieces

__all__ = ["CategoryCoding", "CountingSource", "NumericCoding", "Pieces"]
