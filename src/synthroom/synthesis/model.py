"""The graphical model, estimated and sampled with ``mbi`` (private-pgm), and its file format.

A fitted model is post-processing of DP measurements, so it is as private as the synthetic data
and safe to share. Its potentials are rounded to float32 and its total to a whole number of rows
when it is finalised (the precision sampling needs, no more), so neither the file nor the model
in memory carries full-precision images of the noisy counts. It is saved as one ``.npz`` file
with no pickled objects: the potentials of each clique as plain arrays plus a JSON header, so
loading a model file cannot run code.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import warnings
from typing import Iterator

import numpy as np

from .structure import Measurement

_numpy_state = np.random.get_state()  # importing JAX draws from numpy's global generator: put it back
import jax  # noqa: E402

with warnings.catch_warnings():  # mbi's advice at import, followed where it computes (jax_settings)
    warnings.filterwarnings("ignore", "JAX is running in float32 mode", UserWarning)
    warnings.filterwarnings("ignore", "JAX persistent compilation cache is enabled", UserWarning)
    import mbi
    from mbi import CliqueVector, Domain, Factor, LinearMeasurement, MarkovRandomField
    from mbi import estimation, junction_tree, marginal_loss, marginal_oracles
np.random.set_state(_numpy_state)
del _numpy_state


@contextlib.contextmanager
def jax_settings() -> Iterator[None]:
    """JAX as mbi needs it, for this thread and this block only: 64-bit floats (in float32 its
    estimation stalls or diverges on large data). Importing this module changes no setting of
    JAX's, and a caller's own JAX work outside the block keeps its settings."""
    with jax.enable_x64(True):
        yield


def model_cells(sizes: dict[str, int], cliques: list[tuple[str, ...]]) -> float:
    """The cells (float64 values) of the junction tree a model over ``sizes`` with ``cliques``
    would hold, by mbi's own triangulation. coarse.py and refine.py ask this rather than import
    mbi themselves: this module is the only one that imports mbi, with its advice handled (above)."""
    domain = Domain(list(sizes), [sizes[c] for c in sizes])
    return junction_tree.hypothetical_model_size(domain, cliques) * 2**20 / 8


def estimate(
    sizes: dict[str, int], measurements: list[Measurement], iters: int, warm_start: MarkovRandomField | None = None
) -> MarkovRandomField:
    """Fit the maximum-entropy graphical model that best explains the noisy marginals."""
    with jax_settings():
        domain = Domain(list(sizes), [sizes[c] for c in sizes])
        linear = [_linear(m) for m in measurements]
        return estimation.MirrorDescent().estimate(
            domain,
            _compiled_loss(linear, domain),
            estimation.minimum_variance_unbiased_total(linear),
            iters=iters,
            warm_start=warm_start,
        )


def _compiled_loss(linear: "list[LinearMeasurement]", domain: "Domain") -> "marginal_loss.MarginalLossFn":
    """mbi's loss of the measurements (as ``estimate`` builds it from the list), with the loss
    function compiled as one program. mbi's initialisation evaluates the loss once outside its
    compiled steps; op by op that compiled every small operation of every measurement on its own
    (a few hundred XLA programs on Adult: about 5 of a fit's 20 CPU s, and ~250 MiB of peak
    memory). Inside the compiled steps the call is inlined: the same model, to the bit."""
    loss = marginal_loss.from_linear_measurements(linear, domain)
    return marginal_loss.MarginalLossFn(loss.cliques, jax.jit(loss.loss_fn), loss.data, loss.lipschitz)


def _linear(m: Measurement) -> "LinearMeasurement":
    noisy = np.asarray(m.noisy, dtype=float).ravel()
    if m.cells is not None:
        return LinearMeasurement(noisy, m.clique, m.sigma, query=CellsQuery(m.cells))
    if m.groups is not None:
        return LinearMeasurement(noisy, m.clique, m.sigma, query=GroupsQuery(m.groups))
    return LinearMeasurement(noisy, m.clique, m.sigma)


@dataclasses.dataclass(frozen=True)
class GroupsQuery:
    """A marginal summed over groups of each column's codes (``Measurement.groups``: column i's
    code j falls in group ``groups[i][j]``), flattened: a coarse measurement of the clique. Hashable
    by value, as mbi's compiled programs key on their queries."""

    groups: tuple[tuple[int, ...], ...]

    def __call__(self, f: "Factor") -> "jax.Array":
        table = f.datavector(flatten=False)
        for axis, g in enumerate(self.groups):
            onehot = np.zeros((max(g) + 1, len(g)))
            onehot[np.asarray(g), np.arange(len(g))] = 1.0
            table = jax.numpy.moveaxis(jax.numpy.tensordot(onehot, table, axes=([1], [axis])), 0, axis)
        return table.ravel()

    def op_norm_sq(self) -> float:
        # The operator is a Kronecker product of 0/1 group matrices: its norm is the product of
        # the largest group sizes.
        return float(np.prod([np.bincount(np.asarray(g)).max() for g in self.groups]))


@dataclasses.dataclass(frozen=True)
class CellsQuery:
    """Some cells of a marginal's data vector, in a fixed order (``Measurement.cells``). Hashable
    by value, as mbi's compiled programs key on their queries; it gives no estimate of the total
    (mbi reads the total from identity measurements only)."""

    cells: tuple[int, ...]

    def __call__(self, f: "Factor") -> "jax.Array":
        return f.datavector()[np.asarray(self.cells, dtype=np.int64)]

    def op_norm_sq(self) -> float:
        return 1.0


def release_compiled() -> None:
    """Free JAX's compiled programs and give the freed heap back to the OS.

    Compiling the estimator is what dominates peak memory (hundreds of MiB of XLA/LLVM state);
    nothing compiled for one estimate is reused by the next structure, so dropping it before the
    next compile keeps the peak to one compile instead of their sum.
    """
    jax.clear_caches()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def finalize(model: MarkovRandomField, suppress: dict[str, list[int]], target: str | None = None) -> MarkovRandomField:
    """The model as it will be sampled: potentials on its junction tree's maximal cliques, with
    the listed codes (column -> codes) given probability ~0 and the predictive column ``target``'s
    1-way marginal kept as estimated, less its own listed codes (:func:`_target_kept`;
    post-processing of the model).

    Sampling (:meth:`MarkovRandomField.synthetic_data`) expands the potentials to the junction
    tree and runs message passing on them; doing exactly that here means the one compiled
    message-passing program serves both, instead of two compilations.
    """
    with jax_settings():
        return _finalized(model, suppress, target)


def _finalized(model: MarkovRandomField, suppress: dict[str, list[int]], target: str | None) -> MarkovRandomField:
    jtree, _ = junction_tree.make_junction_tree(model.domain, [tuple(cl) for cl in model.cliques])
    nodes = list(jtree.nodes)
    # Compiled as one program: op by op, each clique's broadcast sums compiled on their own (~90
    # XLA programs on Adult, several CPU seconds); the sums, and so the potentials, are the same.
    potentials = jax.jit(lambda p: p.expand(nodes))(model.potentials)
    tables = dict(potentials.tables)
    for col, drop in suppress.items():
        clique = next(cl for cl in potentials.cliques if col in cl)
        factor = tables[clique]
        axis = list(factor.domain).index(col)
        penalty = np.zeros(factor.domain[col])
        penalty[drop] = -50.0  # e^-50: never drawn
        shape = [1] * len(factor.domain)
        shape[axis] = -1
        tables[clique] = Factor(factor.domain, factor.values + penalty.reshape(shape))
    total = float(max(1, round(float(model.total))))
    if suppress and target is not None:
        tables = _target_kept(model, potentials.cliques, tables, target, suppress.get(target, []), total)
    tables = {cl: Factor(f.domain, _rounded(f.values)) for cl, f in tables.items()}
    potentials = CliqueVector(model.domain, list(potentials.cliques), tables)
    marginals = marginal_oracles.message_passing_stable(potentials, total)
    return MarkovRandomField(potentials=potentials, marginals=marginals, total=total)


def _target_kept(
    model: MarkovRandomField, cliques, tables: dict, target: str, dropped: list[int], total: float
) -> dict:
    """The log-potentials ``tables`` (codes already suppressed) with the predictive column's 1-way
    marginal put back to the estimated model's, its own suppressed codes (``dropped``) at zero and
    the rest scaled to ``total``: one step of iterative proportional fitting, exact for one column (a
    log-ratio added to one clique that holds it).

    Suppressing codes alone conditions the model on their absence, and that moves every column
    tied to them. The noise a phantom code soaks up is a larger share of a small class than of a
    large one, so a classification target lost its minority class: the simulator's wide table
    (5,000 rows, 4.9% ``yes``) drew 1.9% ``yes`` once 17 columns' phantom codes were suppressed,
    and a model trained on it kept none of the real lift (bench/RESULTS.md, "Suppressed codes
    keep the target's classes")."""
    if target not in model.domain.attributes:
        return tables
    goal = np.array(model.project((target,)).datavector(), dtype=float)
    goal[dropped] = 0.0
    if goal.sum() <= 0:
        return tables
    goal *= total / goal.sum()
    joint = marginal_oracles.message_passing_stable(CliqueVector(model.domain, list(cliques), tables), total)
    have = np.asarray(joint.project((target,)).datavector(), dtype=float)
    step = np.zeros(goal.size)
    kept = goal > 0
    step[kept] = np.log(goal[kept] / np.maximum(have[kept], np.finfo(float).tiny))
    clique = next(cl for cl in cliques if target in cl)
    factor = tables[clique]
    shape = [1] * len(factor.domain)
    shape[list(factor.domain).index(target)] = -1
    return {**tables, clique: Factor(factor.domain, np.asarray(factor.values, dtype=float) + step.reshape(shape))}


def _rounded(values) -> np.ndarray:
    """Log-potentials at float32 precision (about 7 digits), held as float64."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def sample_codes(model: MarkovRandomField, rows: int, seed: int | np.ndarray) -> dict[str, np.ndarray]:
    """Draw ``rows`` independent records (as codes) from a finalised model (``seed``: an int or
    uint32 words), with a generator of its own: numpy's global one is neither read nor seeded.

    Ancestral sampling along the junction tree's elimination order (mbi's ``sample`` method): the
    first column from its marginal, each next one from its distribution given the columns already
    drawn that share a clique with it (their marginals are the finalised model's)."""
    rng = np.random.default_rng(seed)
    with jax_settings():
        jtree, order = junction_tree.make_junction_tree(model.domain, [tuple(cl) for cl in model.cliques])
        marginals = model.marginals
        if {frozenset(cl) for cl in model.cliques} != {frozenset(cl) for cl in jtree.nodes}:  # e.g. conditioned
            potentials = model.potentials.expand(list(jtree.nodes))
            marginals = marginal_oracles.message_passing_stable(potentials, model.total)
        cliques = [set(cl) for cl in jtree.nodes]
        data: dict[str, np.ndarray] = {}
        for col in order[::-1]:
            near = set().union(*(cl for cl in cliques if col in cl))
            parents = tuple(c for c in data if c in near)  # in drawing order: the same draw in any process
            marginal = np.asarray(marginals.project(parents + (col,)).datavector(flatten=False))
            data[col] = _draw(marginal, [data[p] for p in parents], rows, rng)
    return data


def _draw(marginal: np.ndarray, parents: list[np.ndarray], rows: int, rng: np.random.Generator) -> np.ndarray:
    """One column's codes: row i from ``marginal``'s last axis given row i's parent codes.

    The uniforms are stratified (:func:`stratified_uniforms`) within each combination of parent
    codes, so the rows that share one get each code in the model's proportions up to one row,
    instead of with multinomial sampling noise on top of the model's own (post-processing)."""
    if not parents:
        cdf = np.cumsum(marginal / marginal.sum())
        return np.minimum(np.searchsorted(cdf, stratified_uniforms(rows, rng), side="right"), marginal.size - 1)
    totals = marginal.sum(axis=-1, keepdims=True)
    cdfs = np.divide(marginal, totals, out=np.zeros_like(marginal), where=totals != 0).cumsum(axis=-1)
    combos, inverse = np.unique(np.stack(parents, axis=-1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = np.empty(rows, dtype=np.int64)
    by_combo = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(combos)))
    for i, cdf in enumerate(cdfs[tuple(combos.T)]):
        members = by_combo[bounds[i - 1] if i else 0 : bounds[i]]
        out[members] = np.searchsorted(cdf, stratified_uniforms(members.size, rng), side="right")
    return np.minimum(out, marginal.shape[-1] - 1)


def stratified_uniforms(k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` uniforms on [0, 1), one in each interval ``[j/k, (j+1)/k)``, in random order: each
    is uniform, so every row is still drawn from its distribution, but together they cover the
    unit interval evenly (a code of probability p gets ``k p`` of them, give or take one)."""
    return (rng.permutation(k) + rng.random(k)) / k


EXCLUDED = -1.0e4  # log-weight of a value a condition rules out: e^-10000 is exactly 0 in float64


def conditioned(model: MarkovRandomField, factors: "list[tuple[tuple[str, ...], np.ndarray]]") -> MarkovRandomField:
    """The model times non-negative weight tables: P'(x) is proportional to P(x) times the
    product of ``weights[x_attrs]`` over the factors (evidence for ``where``, 0/1 tables for
    allowed combinations, within-bin shares for a numeric range). Exact: each table is added to
    the log-potential of a clique that holds its attributes (or becomes a clique of its own), and
    sampling runs message passing on the result, so a rare value is drawn without rejection."""
    with jax_settings():
        return _conditioned(model, factors)


def _conditioned(model: MarkovRandomField, factors: "list[tuple[tuple[str, ...], np.ndarray]]") -> MarkovRandomField:
    tables, cliques = dict(model.potentials.tables), list(model.potentials.cliques)
    for attrs, weights in factors:
        w = np.asarray(weights, dtype=float)
        log_w = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), EXCLUDED)
        factor = Factor(model.domain.project(attrs), log_w)
        home = next((cl for cl in cliques if set(attrs) <= set(cl)), None)
        if home is None:
            cliques.append(tuple(attrs))
            tables[tuple(attrs)] = factor
        else:
            tables[home] = tables[home] + factor
    potentials = CliqueVector(model.domain, cliques, tables)
    marginals = marginal_oracles.message_passing_stable(potentials, model.total)
    return MarkovRandomField(potentials=potentials, marginals=marginals, total=model.total)


def weighted_share(model: MarkovRandomField, factors: "list[tuple[tuple[str, ...], np.ndarray]]") -> float:
    """The model's expected product of the factors' weights: for 0/1 tables, the probability
    that a drawn row meets them all (how likely the condition is under the model)."""
    attrs = tuple(dict.fromkeys(a for atts, _ in factors for a in atts))
    with jax_settings():
        joint = np.asarray(model.project(attrs).transpose(attrs).datavector(flatten=False), dtype=float)
    joint = joint / max(joint.sum(), 1e-300)
    for atts, weights in factors:
        order = np.argsort([attrs.index(a) for a in atts])
        w = np.transpose(np.asarray(weights, dtype=float), order)
        shape = [1] * len(attrs)
        for a in atts:
            shape[attrs.index(a)] = model.domain[a]
        joint = joint * w.reshape(shape)
    return float(joint.sum())


def to_arrays(model: MarkovRandomField) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) describing the model's potentials, for saving."""
    header = {
        "attrs": list(model.domain),
        "shape": [int(model.domain[a]) for a in model.domain],
        "cliques": [list(cl) for cl in model.cliques],
        "total": float(model.total),
    }
    arrays = {f"potential_{i}": np.asarray(model.potentials[cl].values) for i, cl in enumerate(model.cliques)}
    return header, arrays


def from_arrays(header: dict, arrays: dict[str, np.ndarray]) -> MarkovRandomField:
    """Rebuild a model saved by :func:`to_arrays`."""
    with jax_settings():
        domain = Domain(header["attrs"], header["shape"])
        cliques = [tuple(cl) for cl in header["cliques"]]
        factors = {cl: Factor(domain.project(cl), arrays[f"potential_{i}"]) for i, cl in enumerate(cliques)}
        potentials = CliqueVector(domain, cliques, factors)
        total = header["total"]
        marginals = marginal_oracles.message_passing_stable(potentials, total)
        return MarkovRandomField(potentials=potentials, marginals=marginals, total=total)


__all__ = [
    "conditioned",
    "estimate",
    "finalize",
    "from_arrays",
    "jax_settings",
    "mbi",
    "release_compiled",
    "sample_codes",
    "stratified_uniforms",
    "to_arrays",
    "weighted_share",
]
