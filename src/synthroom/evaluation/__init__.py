"""Evaluation: fidelity, ML utility and privacy attacks against real train/holdout rows."""
