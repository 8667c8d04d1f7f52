"""The differentially private synthesizer, in scikit-learn style.

    Synthesizer(schema, epsilon=1.0, seed=0).fit(table).sample(n)

What is private: one person holding up to ``unit_cap`` rows (one input row by default;
add/remove neighbours) under ``(epsilon, delta)``-DP. Every
step that reads the data is a mechanism charged to one zCDP accountant (``privacy_report()``
lists each charge); the charges add up to exactly the budget. Default ``delta`` is 1e-9: fixed,
so it reveals nothing about the data, and below 1/rows for any table under a billion rows.

Budget split: ``domain_share`` (default 25%) of rho learns the domains (category selection,
numeric histograms), split evenly over the columns that need it; the rest goes to the marginals
(see :mod:`.structure`). Half of ``delta`` pays for category selection when any column needs it.

Not private: the schema (column names, kinds, declared categories and bounds), the storage type
of each column (integer/float/date, as the file declares it), and the parameters. The number
of output rows defaults to the model's DP estimate of the input's row count.

Randomness: without a seed, every mechanism draws from OpenDP's samplers on OS entropy (see
:mod:`synthroom.privacy.noise`). With a seed the run is reproducible, and therefore not for
release: its ledger says so (``privacy_report()["reproducible"]``, ``reproducible_``) and the
fit warns.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from ..progress import Progress, quiet
from ..engine import CategoryCoding, CountingSource, NumericCoding, Pieces, check_engine, open_source
from ..engine.grid import DATE_GRID, LOG_GRID
from ..engine.types import base_type, integer_dtype, integer_float_range, is_float, is_integer
from ..errors import InputError
from ..privacy import ZCDPAccountant, faults
from ..privacy.accountant import DEFAULT_DELTA, check_unit_cap
from ..privacy.noise import Noise, SeededNoise, noise_for
from ..schema import Schema, check_epsilon, parse_schema
from .enforce import computed_columns, modelled_schema
from .discretize import (
    GAP_SPLIT,
    CategoricalColumn,
    NumericColumn,
    domain_warnings,
    grid_and_clip,
    learn_categorical,
    learn_months,
    learn_numeric,
)
from .hierarchy import (
    Within,
    children,
    hierarchy_share,
    hierarchy_warnings,
    measure_days,
    measure_within,
    month_columns,
    refuse_conditions,
)
from .coarse import SHARE as COARSE_SHARE, coarse_round
from .refine import SHARE as REFINE_SHARE
from .selection import RowCount, count_rows, finish_domains, first_domains, fold_warnings, selection_measurements
from .refine import refine, should_refine
from .regime import STANDARD, Regime, choose_regime, too_small_warning
from .structure import ANCHOR_SHARE, SELECT_SHARE, anticipated_noise, select_and_measure

if TYPE_CHECKING:
    from mbi import MarkovRandomField

SAMPLE_BATCH_ROWS = 500_000  # sample_batches: rows per batch (a few hundred MB of frames at 15 columns)
FORMAT_VERSION = 2  # 2: no sampling seed in the file, rounded potentials and weights
NOT_FOR_RELEASE = (
    "reproducible: not for release (the run was seeded: whoever knows the seed can rerun the fit "
    "on candidate tables and recognise the output; fit without a seed to release)"
)


@dataclass
class Settings:
    """Tuning knobs; the defaults are what the benchmarks measured."""

    max_bins: int = int(STANDARD["max_bins"])
    max_target_bins: int = int(STANDARD["max_target_bins"])
    domain_share: float = STANDARD["domain_share"]
    max_clique_cells: int = 20_000
    max_model_cells: int = 1_000_000
    iters: int = int(STANDARD["iters"])  # the estimator's steps (the small regime may take fewer: regime.py)
    refine: bool = True  # a second selection round when the budget is large (see refine.py)
    coarse: bool = True  # coarse pairs beyond the tree when no second round runs (see coarse.py)
    regime: str = "auto"  # the size regime (regime.py): "auto" (from a DP row count), "standard" or "small"


@dataclass
class Synthesizer:
    """Fit a DP graphical model to one table and sample synthetic rows from it.

    Parameters
    ----------
    schema: a :class:`~synthroom.schema.Schema` or anything :func:`parse_schema` accepts.
    epsilon: total privacy budget, in [0.0001, 10].
    delta: total delta, in (0, 1e-3]; default 1e-9.
    seed: same seed and same input give the same output, for experiments only: a seeded run is
        marked "reproducible: not for release". None (the default) draws all noise from OpenDP's
        samplers on OS entropy.
    unit_cap: (keyword only) the most rows one person can hold in the table, k. The guarantee is
        then for one person (all of their rows): every mechanism's sensitivity is k times that
        of a row and the category thresholds cover k rows on k values (docs/privacy.md).
    engine: (keyword only) where the rows are counted: ``"duckdb"`` (default, in this process),
        ``"spark"`` (the active Spark session, else a local one) or a SparkSession. The counts
        are exact on both, so a seeded fit gives the same model on either.
    """

    schema: Schema | dict
    epsilon: float = 1.0
    delta: float = DEFAULT_DELTA
    seed: int | None = None
    settings: Settings = field(default_factory=Settings)
    progress: Progress = field(default=quiet, repr=False, compare=False)
    unit_cap: int = field(default=1, kw_only=True)
    engine: Any = field(default="duckdb", kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.schema = parse_schema(self.schema)
        self.engine = check_engine(self.engine)
        self.epsilon = check_epsilon(self.epsilon)
        if not (isinstance(self.delta, (int, float)) and 0 < self.delta <= 1e-3):
            raise InputError(f"delta {self.delta!r} must be in (0, 0.001]")
        try:
            self.unit_cap = check_unit_cap(self.unit_cap)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        self._sample_seed: int | None = None  # a seeded fit's sampling seed (in memory only, never saved)
        self.columns_: dict[str, CategoricalColumn | NumericColumn] | None = None
        self.model_: MarkovRandomField | None = None
        self._saved_privacy: dict | None = None  # the ledger of a model read by load()
        self.accountant_: ZCDPAccountant | None = None
        self.timings_: dict[str, float] = {}
        self.warnings_: list[str] = []  # what the fit could not learn at this budget (see fit)
        self.rule_reports_: list = []  # the last sample's enforce.RuleReport per part (None: no rules)
        self.regime_: Regime | None = None  # the size regime the fit chose (see regime.py)
        self.within_: dict[str, Within] = {}  # public hierarchies: each child's table given its parent

    # -- fitting -----------------------------------------------------------------------------
    def start_run(self) -> "tuple[ZCDPAccountant, Noise]":
        """A fresh accountant and noise source for one fit. A caller that must run a mechanism
        before :meth:`fit` reads the data (the gate's DP count of all rows, which sizes the holdout
        before the split) charges it on these and passes them to ``fit(run=...)``."""
        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]
        noise = noise_for(self.seed)  # the noise source of every mechanism of the run
        learns_categories = any(c.kind == "categorical" and c.categories is None for c in schema.columns)
        acc = ZCDPAccountant(
            self.epsilon,
            self.delta,
            self.delta / 2 if learns_categories else 0.0,
            unit_cap=self.unit_cap,
            randomness=noise.label,
            reproducible=noise.reproducible,
        )
        return acc, noise

    def fit(
        self,
        data: "str | Path | pd.DataFrame",
        *,
        first: "Callable[[ZCDPAccountant, Noise], RowCount | None] | None" = None,
        run: "tuple[ZCDPAccountant, Noise] | None" = None,
    ) -> "Synthesizer":
        """Learn the model from a CSV/Parquet path or a DataFrame; reads only counts.

        ``first``: a caller's own mechanism, run on this run's accountant and noise source before
        the fit's own charges (the gate's DP holdout-size check); the fit spends what it leaves.
        It may return a DP estimate of the rows the fit reads (a :class:`.selection.RowCount`:
        the estimate and its noise std), which then serves as the fit's row count (size regime,
        category selection) instead of a count of the fit's own. ``run``: the accountant and
        noise source from :meth:`start_run`, when the caller has charged something already."""
        acc, noise = run if run is not None else self.start_run()
        self._sample_seed = noise.sampling_seed if isinstance(noise, SeededNoise) else None
        start = time.perf_counter()
        self.progress("reading", "opening the table")
        source = _open_input(data, self.schema, self.engine)  # type: ignore[arg-type]
        try:
            self.timings_["reading"] = time.perf_counter() - start
            self.accountant_ = acc
            given = first(acc, noise) if first else None
            rows = given if given is not None else count_rows(_row_total(source, self._target_spec()), acc, noise)
            regime = self.regime_ = self._size_regime(acc, rows.noisy)
            t = time.perf_counter()
            columns, measurements, refining = self._measure(source, acc, noise, regime, rows)
            self.timings_["measuring"] = time.perf_counter() - t
            t = time.perf_counter()
            model, measurements = self._estimate(
                source, acc, noise, columns, measurements, refining=refining, iters=regime.iters
            )
        finally:
            self.counting_passes_ = _close(source)
        self._finish(model, columns, measurements, regime, noise)
        self.timings_["fitting"] = time.perf_counter() - t
        self.columns_ = columns
        return self

    def _measure(
        self, source: CountingSource, acc: ZCDPAccountant, noise: Noise, regime: Regime, rows: RowCount
    ) -> "tuple[dict[str, CategoricalColumn | NumericColumn], list, bool]":
        """The DP domains (then the source counts codes), the first round of noisy marginals, and
        whether a refinement round follows (it keeps ``REFINE_SHARE`` of what is left for it)."""
        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]  # computed columns: not modelled
        n_learn = sum(c.kind != "categorical" or c.categories is None for c in schema.columns)
        self.progress("measuring", f"learning the domains of {n_learn} columns with DP ({regime.name} regime)")
        columns, noise_scale = self._learn_domains(source, acc, noise, regime, rows)
        # public hierarchies, each at one share: the month columns' day tables (they set the bins),
        # then the children's tables (children are not modelled)
        rho_hierarchy = hierarchy_share(schema, columns, acc)
        for name in month_columns(schema):
            columns[name] = measure_days(source, columns[name], acc, noise, rho_hierarchy)  # type: ignore[arg-type]
        source.encode({name: col.coding for name, col in columns.items()})
        self.within_ = measure_within(source, schema, columns, acc, noise, rho_hierarchy)
        n_rows = max((c.noisy_rows for c in columns.values() if c.noisy_rows is not None), default=0.0)
        refining = self.settings.refine and regime.name == "standard" and should_refine(n_rows, noise_scale)
        coarse = self.settings.coarse and regime.name == "standard" and not refining
        sizes = {name: col.size for name, col in columns.items() if name not in self.within_}
        measurements = select_and_measure(
            source,
            sizes,
            schema.target,
            acc,
            noise,
            acc.rho_remaining * (1 - REFINE_SHARE if refining else 1.0) * (1 - COARSE_SHARE if coarse else 1.0),
            self.settings.max_clique_cells,
            self.settings.max_model_cells,
            progress=lambda msg: self.progress("measuring", msg),
            anchor_share=regime.anchor_share,
            select_share=regime.select_share,
            max_edges=regime.max_edges,
            focus=regime.focus,
            focus_share=regime.focus_share,
        )
        if coarse:
            ordered = {n: c.missing_bin for n, c in columns.items() if isinstance(c, NumericColumn) and n in sizes}
            measurements += coarse_round(
                source, measurements, sizes, ordered, schema.target, acc, noise, acc.rho_remaining
            )
        return columns, measurements, refining

    def _estimate(
        self,
        source: CountingSource,
        acc: ZCDPAccountant,
        noise: Noise,
        columns: "dict[str, CategoricalColumn | NumericColumn]",
        measurements: list,
        *,
        refining: bool,
        iters: int,
    ) -> "tuple[Any, list]":
        """The graphical model from the noisy marginals (``iters``: the estimator's steps, the size
        regime's); when ``refining``, a second round of marginals the first model gets worst (on
        the rest of the budget) and a re-estimate.
        Returns the (not yet finalized) model and every measurement it was estimated from."""
        from .model import estimate, release_compiled

        settings = self.settings
        sizes = {name: col.size for name, col in columns.items() if name not in self.within_}
        selected = selection_measurements(columns, set(sizes))  # the selections' counts: no charge
        if not refining:  # the data is no longer needed: free DuckDB before compiling
            source.close()
        self.progress("fitting", f"estimating the graphical model from {len(measurements)} noisy marginals")
        model = estimate(sizes, measurements + selected, iters)
        if not refining:
            return model, measurements
        release_compiled()
        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]
        measurements = measurements + refine(
            source,
            model,
            measurements,
            sizes,
            schema.target,
            acc,
            noise,
            acc.rho_remaining,
            settings.max_clique_cells,
            settings.max_model_cells,
            progress=lambda msg: self.progress("fitting", msg),
        )
        self.progress("fitting", f"re-estimating with {len(measurements)} noisy marginals")
        return estimate(sizes, measurements + selected, iters, warm_start=model), measurements

    def _finish(
        self,
        model: Any,
        columns: "dict[str, CategoricalColumn | NumericColumn]",
        measurements: list,
        regime: Regime,
        noise: Noise,
    ) -> None:
        """Free the compiled estimator, keep the finalized model and the fit's warnings."""
        from .model import finalize, release_compiled

        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]
        release_compiled()
        modelled = {name: col for name, col in columns.items() if name not in self.within_}
        self.model_ = finalize(model, _phantom_codes(modelled, measurements, month_columns(schema)), schema.target)
        self.warnings_ = (
            domain_warnings(columns, schema.target)
            + _regime_warnings(regime, self.epsilon, schema)
            + fold_warnings(self.model_, modelled, schema.target, self.epsilon)
            + hierarchy_warnings(self.within_, columns, self.epsilon)
            + ([NOT_FOR_RELEASE] if noise.reproducible else [])
        )

    def _learn_domains(
        self, source: CountingSource, acc: ZCDPAccountant, noise: Noise, regime: Regime, rows: RowCount
    ) -> "tuple[dict[str, CategoricalColumn | NumericColumn], float]":
        """Every column's codes, learned with DP on the regime's budgets (``rows``: the fit's DP row
        count); and the noise std one measured clique will carry (which sets the numeric columns'
        bin counts)."""
        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]
        learn_cats = [c for c in schema.columns if c.kind == "categorical" and c.categories is None]
        rho_cols = _domain_budgets(schema, regime, acc.rho_budget)
        rho_marginals = acc.rho_budget * (1 - regime.domain_share - (regime.target_share or 0.0))
        noise_scale = anticipated_noise(
            rho_marginals,
            len(schema.columns),
            self.unit_cap,
            anchor_share=regime.anchor_share,
            select_share=regime.select_share,
            max_edges=regime.max_edges,
            focus=regime.focus,
            focus_share=regime.focus_share,
        )
        delta_col = acc.delta_threshold / len(learn_cats) if learn_cats else 0.0
        # The predictive column's classes first when it is an undeclared categorical (selection.py
        # sizes its budget), then every other column on the regime's budgets, then the second stage.
        columns = first_domains(source, schema, acc, noise, max(rho_cols.values(), default=0.0), delta_col, rows)
        for spec in schema.columns:
            if spec.name in columns:
                continue
            if spec.kind == "categorical":
                columns[spec.name] = learn_categorical(
                    source, spec, acc, noise, rho_cols[spec.name], delta_col, reserve_tail=regime.tail_share > 0
                )
            elif spec.hierarchy == "month":  # months as bins, the days weighed later (hierarchy.py)
                columns[spec.name] = learn_months(source, spec, acc, noise, rho_cols[spec.name], grow=regime.grow)
            else:
                bins = regime.max_target_bins if spec.name == schema.target else regime.max_bins
                columns[spec.name] = learn_numeric(
                    source,
                    spec,
                    acc,
                    noise,
                    rho_cols[spec.name],
                    bins,
                    noise_scale,
                    min_bins=regime.min_bins,
                    grow=regime.grow,
                    sub_pieces=regime.sub_pieces,
                    shaped=regime.shaped_pieces,
                    gap_split=GAP_SPLIT if regime.name == "standard" else 0.0,
                )
        return finish_domains(
            source, schema, columns, acc, noise, rows, tail_share=regime.tail_share, tail_trigger=regime.tail_trigger
        ), noise_scale

    def _target_spec(self):
        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]
        return schema[schema.target]

    def _size_regime(self, acc: ZCDPAccountant, rows: float) -> Regime:
        """The size regime, from the fit's DP row count ``rows`` (the gate's count of the training
        part, already charged, or :func:`.selection.count_rows`'s)."""
        schema: Schema = modelled_schema(self.schema)  # type: ignore[arg-type]
        s = self.settings
        standard = {
            "max_bins": s.max_bins,
            "max_target_bins": s.max_target_bins,
            "domain_share": s.domain_share,
            "anchor_share": ANCHOR_SHARE,
            "select_share": SELECT_SHARE,
            "iters": s.iters,
        }
        return choose_regime(
            rows,
            acc.rho_budget,
            len(schema.columns),
            acc.delta - acc.delta_threshold,
            force=s.regime,
            standard=standard,
        )

    # -- sampling ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        self._fitted()

    def _fitted(self) -> "tuple[MarkovRandomField, dict[str, CategoricalColumn | NumericColumn]]":
        """The model and its columns; a clear error before fit() or load()."""
        if self.model_ is None or self.columns_ is None:
            raise RuntimeError("this Synthesizer is not fitted yet: call fit() or load() first")
        return self.model_, self.columns_

    @property
    def estimated_rows_(self) -> int:
        """The model's DP estimate of the input's row count (the default sample size)."""
        model, _ = self._fitted()
        return max(1, int(round(float(model.total))))

    @property
    def reproducible_(self) -> bool:
        """Whether the model's noise came from a seed: such a run is not for release."""
        return bool(self.privacy_report().get("reproducible", False))

    def sample(
        self,
        n: int | None = None,
        seed: int | None = None,
        *,
        where: "Mapping[str, Any] | None" = None,
        balance: str | None = None,
        rules: bool = True,
    ) -> pd.DataFrame:
        """Draw ``n`` synthetic rows (default: the DP estimate of the input's row count).

        ``where``: only rows with these values, drawn exactly from the model conditioned on them
        (column -> a value or a list of values; for a numerical or datetime column a value or a
        ``(low, high)`` range, ``None`` for an open end). ``balance``: a categorical column whose
        values get equal shares of the rows (those the model can produce, or those ``where``
        lists). The schema's rules hold on every row (``rules=False`` skips them, to see the
        model's own rule violations; computed columns are computed either way). See
        :mod:`.conditional` and :mod:`.enforce`.

        Post-processing of the model, so its randomness need not be secret, only independent of
        the mechanisms' noise: ``seed``, else a seeded fit's own sampling seed (kept in memory,
        derived from the fit's seed, not from its noise), else fresh OS entropy.
        """
        model, columns = self._fitted()
        rows = self.estimated_rows_ if n is None else int(n)
        if rows < 1:
            raise InputError(f"the number of rows to sample must be at least 1, not {n!r}")
        from .conditional import balance_plan, parse_where

        schema: Schema = self.schema  # type: ignore[assignment]
        refuse_conditions(self.within_, where, balance)
        condition = parse_where(where, columns, computed_columns(schema))
        plan = (
            [(condition, rows)]
            if balance is None
            else balance_plan(model, columns, balance, condition, rows, computed_columns(schema))
        )
        base = self._sample_seed if seed is None else seed
        seq = np.random.SeedSequence(None if base is None else [base, rows])
        t = time.perf_counter()
        self.progress("sampling", f"drawing {rows:,} rows")
        parts, self.rule_reports_ = [], []
        for cond, k in plan:
            part_seq = seq if len(plan) == 1 else seq.spawn(1)[0]
            parts.append(self._sample_part(cond, k, part_seq, rules))
        df = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        if len(parts) > 1:  # balanced parts were drawn one value at a time: mix them
            df = df.iloc[np.random.default_rng(seq.spawn(1)[0]).permutation(len(df))].reset_index(drop=True)
        self.timings_["sampling"] = time.perf_counter() - t
        return df

    def sample_batches(
        self, n: int | None = None, seed: int | None = None, *, where: Any = None, batch_rows: int | None = None
    ) -> "Iterator[pd.DataFrame]":
        """:meth:`sample` in batches of at most ``batch_rows`` (default :data:`SAMPLE_BATCH_ROWS`)
        rows, for samples too large to hold as one DataFrame (the command line writes them as they
        come: :func:`synthroom.io.write_batches`). ``n`` up to ``batch_rows`` gives one batch,
        exactly ``sample(n, seed, where=where)``; a larger sample is ``ceil(n / batch_rows)``
        independent draws, each seeded from ``seed`` (else the fit's sampling seed, else OS
        entropy), so a seeded call replays."""
        self._check_fitted()
        rows = self.estimated_rows_ if n is None else int(n)
        batch_rows = SAMPLE_BATCH_ROWS if batch_rows is None else int(batch_rows)
        if rows <= batch_rows:
            yield self.sample(rows, seed, where=where)
            return
        base = self._sample_seed if seed is None else seed
        parts = -(-rows // batch_rows)
        children = np.random.SeedSequence(None if base is None else [base, rows, parts]).spawn(parts)
        for i, child in enumerate(children):
            size = batch_rows if i < parts - 1 else rows - batch_rows * (parts - 1)
            yield self.sample(size, int(child.generate_state(1, np.uint64)[0] >> np.uint64(1)), where=where)

    def _sample_part(self, condition, rows: int, seq: np.random.SeedSequence, rules: bool) -> pd.DataFrame:
        """``rows`` finished rows from the model given ``condition`` (and the rules, if ``rules``)."""
        from .conditional import MIN_SHARE, combination_factors
        from .enforce import enforce, finish
        from .hierarchy import decode_child, draw_children
        from .model import conditioned, sample_codes, weighted_share

        schema: Schema = self.schema  # type: ignore[assignment]
        model, columns = self._fitted()
        factors = condition.factors + (combination_factors(schema.rules, columns) if rules else [])
        if factors:
            if weighted_share(model, factors) < MIN_SHARE:
                asked = " and ".join(
                    condition.text
                    + (["the allowed combinations"] if rules and len(factors) > len(condition.factors) else [])
                )
                raise InputError(f"the model gives (almost) no probability to rows with {asked}")
            model = conditioned(model, factors)
        streams = iter(_streams(seq))

        def draw(k: int) -> pd.DataFrame:
            state, rng = next(streams)
            codes = sample_codes(model, k, state)
            draw_children(self.within_, codes, rng)  # public hierarchies: each child within its parent
            values = {n: condition.decoders.get(n, c).decode(codes[n], rng) for n, c in columns.items()}
            for child, within in self.within_.items():
                values[child] = decode_child(columns[child], codes[child], values[within.parent])
            out = {n: _to_series(c, values[n], schema[n].format, schema[n].date_only) for n, c in columns.items()}
            return finish(pd.DataFrame(out), schema if rules else _derived_only(schema))

        if not rules or not schema.rules:
            self.rule_reports_.append(None)
            return draw(rows)
        df, report = enforce(schema, draw, rows, np.random.default_rng(seq.spawn(1)[0]))
        self.rule_reports_.append(report)
        return df

    # -- reporting ---------------------------------------------------------------------------
    def privacy_report(self) -> dict:
        """The accountant's ledger: every charge, and the totals against the budget."""
        if self.accountant_ is not None:
            regime = {"regime": self.regime_.summary()} if self.regime_ is not None else {}
            return {**self.accountant_.summary(), **regime}
        if self._saved_privacy is not None:  # loaded from a model file
            return self._saved_privacy
        raise RuntimeError("this Synthesizer is not fitted yet")

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted model to one ``.npz`` file (plain arrays + JSON; no pickle)."""
        model, columns = self._fitted()
        faults.refuse_to_save(self.privacy_report())  # a deliberately broken (test-only) run
        from .model import to_arrays

        header, arrays = to_arrays(model)
        described: dict[str, dict[str, Any]] = {}
        meta = {
            "format": FORMAT_VERSION,
            "schema": self.schema.to_dict(),  # type: ignore[union-attr]
            "epsilon": self.epsilon,
            "delta": self.delta,
            "privacy": self.privacy_report(),
            "model": header,
            "columns": described,
        }
        for name, col in columns.items():
            if isinstance(col, CategoricalColumn):
                described[name] = {
                    "type": "categorical",
                    "coding": asdict(col.coding),
                    "other_label": col.other_label,
                    "storage_type": col.storage_type,
                }
            else:
                described[name] = {
                    "type": "numeric",
                    "kind": col.kind,
                    "grid": col.coding.grid.name,
                    "clip": col.coding.clip,
                    "size": col.coding.size,
                    "missing_bin": col.missing_bin,
                    "pieces": asdict(col.coding.pieces),
                    "piece_to_bin": col.coding.piece_to_bin,
                    "cell_to_bin": col.coding.cell_to_bin,
                    "integer": col.integer,
                    "storage_type": col.storage_type,
                }
                for i, (lo, hi, w) in enumerate(zip(col.bin_lo, col.bin_hi, col.bin_weights)):
                    arrays[f"{name}\x00lo_{i}"] = lo
                    arrays[f"{name}\x00hi_{i}"] = hi
                    arrays[f"{name}\x00weights_{i}"] = w
        for child, within in self.within_.items():
            arrays[f"{child}\x00within"] = within.table
            arrays[f"{child}\x00allowed"] = within.allowed
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, allow_pickle=False, **{_key(k): v for k, v in arrays.items()})
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "Synthesizer":
        """Read a model written by :meth:`save`."""
        from .model import from_arrays

        try:
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read model file {str(path)!r}: {exc}") from None
        arrays = {_unkey(k): npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        if meta.get("format") != FORMAT_VERSION:
            raise InputError(
                f"model file {str(path)!r} has format {meta.get('format')!r}, expected {FORMAT_VERSION}: "
                "fit and save it again with this version"
            )
        synth = cls(
            meta["schema"], epsilon=meta["epsilon"], delta=meta["delta"], unit_cap=meta["privacy"].get("unit_cap", 1)
        )
        synth._saved_privacy = meta["privacy"]
        columns: dict[str, CategoricalColumn | NumericColumn] = {}
        for name, c in meta["columns"].items():
            if c["type"] == "categorical":
                cd = c["coding"]
                codes = CategoryCoding(tuple(cd["values"]), cd["missing_code"], cd["other_code"], cd["size"])
                columns[name] = CategoricalColumn(name, codes, c["other_label"], c["storage_type"])
            else:
                grid = DATE_GRID if c["grid"] == DATE_GRID.name else LOG_GRID
                n_bins = c["size"] - (c["missing_bin"] is not None)
                los = [arrays[f"{name}\x00lo_{i}"] for i in range(n_bins)]
                his = [arrays[f"{name}\x00hi_{i}"] for i in range(n_bins)]
                weights = [arrays[f"{name}\x00weights_{i}"] for i in range(n_bins)]
                clip = tuple(c["clip"]) if c["clip"] is not None else None
                p = c["pieces"]
                pieces = Pieces(tuple(p["origin"]), tuple(p["step"]), tuple(p["nsub"]))
                coding = NumericCoding(grid, pieces, tuple(c["piece_to_bin"]), tuple(c["cell_to_bin"]), clip, c["size"])
                columns[name] = NumericColumn(
                    name, c["kind"], coding, los, his, weights, c["missing_bin"], c["integer"], c["storage_type"]
                )
        synth.columns_ = columns
        schema: Schema = synth.schema  # type: ignore[assignment]
        synth.within_ = {
            c: Within(c, p, arrays[f"{c}\x00within"], arrays[f"{c}\x00allowed"]) for c, p in children(schema).items()
        }
        synth.model_ = from_arrays(meta["model"], {k: v for k, v in arrays.items() if k.startswith("potential_")})
        return synth


def _streams(seq: np.random.SeedSequence):
    """Seeds for successive draws: the codes' state words and the decoder's generator. The first
    is what sampling always used, so a sample without rules or conditions is unchanged."""
    yield seq.generate_state(4), np.random.default_rng(seq.spawn(1)[0])
    while True:
        child = seq.spawn(1)[0]
        yield child.generate_state(4), np.random.default_rng(child.spawn(1)[0])


def _derived_only(schema: Schema) -> Schema:
    """``schema`` with its computed columns' rules only (``sample(rules=False)``)."""
    from dataclasses import replace

    from ..rules import Computed

    return replace(schema, rules=tuple(r for r in schema.rules if isinstance(r, Computed)))


def _row_total(source: CountingSource, spec) -> int:
    """The exact number of rows (every row falls in one category or one grid cell of a column)."""
    if spec.kind == "categorical":
        return int(source.category_counts(spec.name)[1].sum())
    grid, clip = grid_and_clip(spec)
    return int(source.grid_counts(spec.name, grid, clip).sum())


def _domain_budgets(schema: Schema, regime: Regime, rho: float) -> dict[str, float]:
    """Each column's rho for learning its domain: ``domain_share`` of ``rho`` split over the
    columns without a declared domain, a categorical one weighing ``categorical_weight`` times a
    numeric one (evenly in the standard regime), except that a regime with a ``target_share``
    gives the predictive column that share of ``rho`` on top (declared columns get nothing)."""
    learn = [c.name for c in schema.columns if c.kind != "categorical" or c.categories is None]
    selected = schema[schema.target].kind == "categorical"  # an undeclared categorical target: selection.py's budget
    share = regime.target_share
    own = share is not None and schema.target in learn and len(learn) > 1 and not selected
    shared = [n for n in learn if not (own and n == schema.target)]
    weight = {n: regime.categorical_weight if schema[n].kind == "categorical" else 1.0 for n in shared}
    total = sum(weight.values())
    out = {c.name: 0.0 for c in schema.columns}
    out.update({n: regime.domain_share * rho * weight[n] / total for n in shared})
    if own and share is not None:
        out[schema.target] = share * rho
    return out


def _regime_warnings(regime: Regime, epsilon: float, schema: Schema) -> list[str]:
    line = too_small_warning(regime, epsilon, len(schema.columns))
    return [line] if line else []


def _open_input(data: "str | Path | pd.DataFrame", schema: Schema, engine) -> CountingSource:
    """The input, for counting: every modelled column; a computed column (rules) may be in the input
    or not, and is never read, like the ignored columns."""
    modelled = modelled_schema(schema)
    computed = tuple(sorted(computed_columns(schema)))
    return open_source(data, {c.name: c.kind for c in modelled.columns}, engine, ignore=schema.ignore + computed)


def _close(source) -> int:
    """Close a counting source; returns its passes over the rows (bench/spark.py's scale model)."""
    source.close()
    return source.passes


def _phantom_codes(columns, measurements, months: "list[str] | tuple[str, ...]" = ()) -> dict[str, list[int]]:
    """``other`` and missing codes that the measurements cannot tell from empty, and the empty
    months at either end of a month column (``months``).

    ``other`` always exists (whether any value was folded into it is not a DP fact), so noise
    alone can give it rows. For each categorical column we average, weighted by inverse variance,
    the unbiased 1-way counts that every raw noisy measurement containing the column implies
    (its table summed over the other columns), and drop an optional code whose count is below
    three standard deviations. Post-processing only; it keeps, e.g., a phantom ``other`` class out
    of a classification target. A month column's bins are every month of the year cells its grid
    histogram kept, and a date-only value at midnight on 1 January lies in the year cell before it
    (the cells are 365.25 days from 1900), so a table of bills on the 1st keeps that cell and has
    twelve empty months before its first: the months from either end whose estimate is below three
    standard deviations are dropped the same way (never all of them).
    """
    out: dict[str, list[int]] = {}
    for name, col in columns.items():
        if not isinstance(col, CategoricalColumn) and name not in months:
            continue
        estimate, std = _one_way(name, col.size, measurements)
        if isinstance(col, CategoricalColumn):
            optional = [c for c in (col.coding.other_code, col.coding.missing_code) if c is not None]
            drop = [c for c in optional if estimate[c] < 3.0 * std]
            if drop and len(drop) < col.size:
                out[name] = drop
            continue
        low = estimate[: len(col.bin_weights)] < 3.0 * std
        if low.all():
            continue
        first, last = int(np.argmin(low)), len(low) - int(np.argmin(low[::-1]))
        drop = list(range(first)) + list(range(last, len(low)))
        if drop:
            out[name] = drop
    return out


def _one_way(name: str, size: int, measurements) -> tuple[np.ndarray, float]:
    """A column's 1-way counts from every noisy measurement holding it (inverse-variance weighted)
    and their standard deviation."""
    total, weight = np.zeros(size), 0.0
    for m in measurements:
        if name not in m.clique or m.groups is not None:  # a coarse pair's groups: not the column's codes
            continue
        axis = m.clique.index(name)
        others = m.noisy.size // m.noisy.shape[axis]
        w = 1.0 / (others * m.sigma**2)
        total += w * np.moveaxis(m.noisy, axis, 0).reshape(size, -1).sum(axis=1)
        weight += w
    if weight == 0:
        return np.full(size, np.inf), 0.0
    return total / weight, float(1.0 / np.sqrt(weight))


def _key(name: str) -> str:
    # npz member names are file names: hex-encode anything that is not a plain identifier.
    return name if name.isidentifier() else "h_" + name.encode().hex()


def _unkey(name: str) -> str:
    return bytes.fromhex(name[2:]).decode() if name.startswith("h_") else name


def _to_series(
    col: CategoricalColumn | NumericColumn, values: np.ndarray, fmt: str | None, date_only: bool = False
) -> pd.Series:
    """Give decoded values the input column's type back: an integer column always integers (of a
    dtype that holds its storage type's values, missing kept), a date column dates."""
    if isinstance(col, CategoricalColumn):
        return _typed_categories(col, pd.Series(values, dtype=object))
    if col.kind == "datetime":
        ts = pd.to_datetime(values, unit="s", errors="coerce")
        if fmt:
            return pd.Series(ts.strftime(fmt), dtype=object).where(~pd.isna(ts), None)
        if date_only or base_type(col.storage_type) == "DATE":
            return pd.Series(ts.floor("D").date if len(ts) else [], dtype=object).where(~pd.isna(ts), None)
        return pd.Series(ts.floor("s"))
    if col.integer:
        lo, hi = integer_float_range(col.storage_type)
        return pd.Series(np.clip(np.round(values), lo, hi)).astype(integer_dtype(col.storage_type))
    return pd.Series(values, dtype=float)


def _typed_categories(col: CategoricalColumn, s: pd.Series) -> pd.Series:
    """Category labels (text) back as the numbers or booleans the column stored, each label
    converted once and exactly (no float64 detour: a 19-digit id keeps its digits); text when a
    label (``other``, a declared category) is not one."""
    stype = col.storage_type
    boolean = base_type(stype) == "BOOLEAN"
    if not (is_integer(stype) or is_float(stype) or boolean):
        return s
    codes, labels = pd.factorize(s)  # missing -> -1
    try:
        if boolean:
            table = pd.array([{"true": True, "false": False}[str(v)] for v in labels], dtype="boolean")
        elif is_integer(stype):
            table = pd.array([int(str(v)) for v in labels], dtype=integer_dtype(stype))
        else:
            table = pd.array([float(v) for v in labels], dtype="Float64")
    except (KeyError, ValueError, TypeError, OverflowError):
        return s
    out = pd.Series(table.take(codes, allow_fill=True))
    return out.astype(float) if is_float(stype) else out
