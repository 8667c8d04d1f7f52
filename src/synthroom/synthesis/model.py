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
import gc
import os
import threading

# XLA's newer CPU fusion emitters hold ~250 MiB more while compiling mbi's estimator, for no
# measurable speed-up here; use the classic emitters unless the user set the flag. XLA reads
# XLA_FLAGS when JAX first starts its CPU backend, so this must run before any computation.
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_use_fusion_emitters=false").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_enable_compilation_cache", False)

import numpy as np  # noqa: E402
import mbi  # noqa: E402
from mbi import CliqueVector, Domain, Factor, LinearMeasurement, MarkovRandomField  # noqa: E402
from mbi import estimation, junction_tree, marginal_oracles  # noqa: E402

from .structure import Measurement  # noqa: E402

_NP_RANDOM_LOCK = threading.Lock()


def estimate(
    sizes: dict[str, int], measurements: list[Measurement], iters: int, warm_start: MarkovRandomField | None = None
) -> MarkovRandomField:
    """Fit the maximum-entropy graphical model that best explains the noisy marginals."""
    domain = Domain(list(sizes), [sizes[c] for c in sizes])
    linear = [
        LinearMeasurement(np.asarray(m.noisy, dtype=float).ravel(), m.clique, m.sigma) for m in measurements
    ]
    return estimation.MirrorDescent().estimate(domain, linear, iters=iters, warm_start=warm_start)


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


def finalize(model: MarkovRandomField, suppress: dict[str, list[int]]) -> MarkovRandomField:
    """The model as it will be sampled: potentials on its junction tree's maximal cliques, with
    the listed codes (column -> codes) given probability ~0 (post-processing of the model).

    Sampling (:meth:`MarkovRandomField.synthetic_data`) expands the potentials to the junction
    tree and runs message passing on them; doing exactly that here means the one compiled
    message-passing program serves both, instead of two compilations.
    """
    jtree, _ = junction_tree.make_junction_tree(model.domain, [tuple(cl) for cl in model.cliques])
    potentials = model.potentials.expand(list(jtree.nodes))
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
    tables = {cl: Factor(f.domain, _rounded(f.values)) for cl, f in tables.items()}
    potentials = CliqueVector(model.domain, list(potentials.cliques), tables)
    total = float(max(1, round(float(model.total))))
    marginals = marginal_oracles.message_passing_stable(potentials, total)
    return MarkovRandomField(potentials=potentials, marginals=marginals, total=total)


def _rounded(values) -> np.ndarray:
    """Log-potentials at float32 precision (about 7 digits), held as float64."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


@contextlib.contextmanager
def _seeded_global_numpy(seed: "int | np.ndarray"):
    """mbi samples with numpy's global generator: seed it, and restore it afterwards."""
    with _NP_RANDOM_LOCK:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def sample_codes(model: MarkovRandomField, rows: int, seed: "int | np.ndarray") -> dict[str, np.ndarray]:
    """Draw ``rows`` records (as codes) from the model (``seed``: an int or uint32 words)."""
    with _seeded_global_numpy(seed):
        data = model.synthetic_data(rows, method="sample")
    return {c: np.asarray(data.to_dict()[c]) for c in model.domain}


EXCLUDED = -1.0e4  # log-weight of a value a condition rules out: e^-10000 is exactly 0 in float64


def conditioned(model: MarkovRandomField, factors: "list[tuple[tuple[str, ...], np.ndarray]]") -> MarkovRandomField:
    """The model times non-negative weight tables: P'(x) is proportional to P(x) times the
    product of ``weights[x_attrs]`` over the factors (evidence for ``where``, 0/1 tables for
    allowed combinations, within-bin shares for a numeric range). Exact: each table is added to
    the log-potential of a clique that holds its attributes (or becomes a clique of its own), and
    sampling runs message passing on the result, so a rare value is drawn without rejection."""
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
    domain = Domain(header["attrs"], header["shape"])
    cliques = [tuple(cl) for cl in header["cliques"]]
    factors = {cl: Factor(domain.project(cl), arrays[f"potential_{i}"]) for i, cl in enumerate(cliques)}
    potentials = CliqueVector(domain, cliques, factors)
    total = header["total"]
    marginals = marginal_oracles.message_passing_stable(potentials, total)
    return MarkovRandomField(potentials=potentials, marginals=marginals, total=total)


__all__ = ["conditioned", "estimate", "finalize", "release_compiled", "sample_codes", "to_arrays", "from_arrays",
           "weighted_share", "mbi"]
