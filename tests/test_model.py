"""The graphical model's estimation (synthesis/model.py): what it costs to compile, and that the
compiled loss changes nothing in the model."""

import numpy as np
import pytest

from synthroom.synthesis.model import estimate, jax_settings, release_compiled
from synthroom.synthesis.structure import Measurement

SIZES = {"a": 7, "b": 5, "c": 3, "d": 6, "e": 4, "f": 9, "t": 2}
CLIQUES = [("a", "t"), ("b", "t"), ("c", "t"), ("d", "t"), ("e", "t"), ("f", "t")]
CLIQUES += [("a", "b", "t"), ("b", "c", "t"), ("c", "d", "t"), ("d", "e", "t"), ("e", "f", "t")]


def measurements(seed: int = 0) -> list[Measurement]:
    rng = np.random.default_rng(seed)
    out = []
    for clique in CLIQUES:
        shape = tuple(SIZES[c] for c in clique)
        exact = rng.multinomial(1_000, rng.dirichlet(np.ones(int(np.prod(shape))))).reshape(shape)
        out.append(Measurement(clique, exact + rng.normal(0, 5.0, shape), 5.0))
    return out


def backend_compiles(fn) -> int:
    """How many XLA programs ``fn()`` compiles, from an empty compilation cache."""
    import jax

    seen = []

    def listen(event: str, _secs: float, **_kw) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(event)

    release_compiled()
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(seen)


def test_estimation_compiles_a_handful_of_programs_however_many_measurements():
    # Op by op, mbi's first evaluation of the loss compiled each small operation of each of the
    # 11 measurements on its own (55 programs here, a few hundred on Adult); compiled as one
    # program, the estimate needs the loss, the steps, the marginal oracle and a few set-up ops.
    few = backend_compiles(lambda: estimate(SIZES, measurements()[:3], iters=10))
    many = backend_compiles(lambda: estimate(SIZES, measurements(), iters=10))
    assert many <= 25
    assert many - few <= 8


def test_the_compiled_loss_gives_the_model_mbi_gives():
    from mbi import Domain, LinearMeasurement, estimation

    ms = measurements(1)
    ours = estimate(SIZES, ms, iters=50)
    with jax_settings():
        domain = Domain(list(SIZES), list(SIZES.values()))
        linear = [LinearMeasurement(m.noisy.ravel(), m.clique, m.sigma) for m in ms]
        theirs = estimation.MirrorDescent().estimate(domain, linear, iters=50)
    assert ours.total == pytest.approx(theirs.total, rel=0, abs=0)
    for clique in theirs.cliques:
        np.testing.assert_array_equal(
            np.asarray(ours.potentials[clique].values), np.asarray(theirs.potentials[clique].values)
        )


def test_finalizing_compiles_the_expansion_once_and_keeps_the_potentials():
    # Op by op, expanding the potentials to the junction tree compiled each clique's broadcast sums
    # on their own (19 programs for this model, ~90 on Adult); compiled once, the same sums.
    from synthroom.synthesis.model import finalize

    model = estimate(SIZES, measurements(2), iters=10)
    compiles = backend_compiles(lambda: finalize(model, {}))
    assert compiles <= 6
    with jax_settings():
        from mbi import junction_tree

        jtree, _ = junction_tree.make_junction_tree(model.domain, [tuple(c) for c in model.cliques])
        eager = model.potentials.expand(list(jtree.nodes))
        done = finalize(model, {})
    for clique in eager.cliques:
        want = np.asarray(eager[clique].values, dtype=np.float32).astype(np.float64)  # finalize rounds
        np.testing.assert_array_equal(np.asarray(done.potentials[clique].values), want)


def test_suppressed_codes_keep_the_targets_marginal_as_estimated():
    # Two features whose phantom code (2) holds rows the noise gave mostly to the minority class
    # y=1: conditioning on their absence alone left y=1 with 59 of 1,050 rows instead of 150 (the
    # simulator's wide table drew 1.9% 'yes' for a real 4.9%). Now the target keeps its estimated
    # marginal (and here the features theirs, as each one's codes split alike within a class); the
    # suppressed codes keep probability ~0.
    from synthroom.synthesis.model import finalize

    sizes = {"x1": 3, "x2": 3, "y": 2}
    table = np.array([[500.0, 50.0], [400.0, 40.0], [0.0, 60.0]])
    ms = [Measurement(("x1", "y"), table, 1.0), Measurement(("x2", "y"), table, 1.0)]
    model = estimate(sizes, ms, iters=2000)
    with jax_settings():
        before = {c: np.asarray(model.project((c,)).datavector()) for c in sizes}
        done = finalize(model, {"x1": [2], "x2": [2]}, "y")
        after = {c: np.asarray(done.project((c,)).datavector()) for c in sizes}
    total = float(round(float(model.total)))
    np.testing.assert_allclose(after["y"], before["y"] * total / before["y"].sum(), atol=0.5)
    assert after["y"][1] == pytest.approx(150, abs=2)
    for x in ("x1", "x2"):
        assert after[x][2] < 1e-6
        np.testing.assert_allclose(after[x][:2], before[x][:2] * total / before[x][:2].sum(), atol=0.5)


def test_nothing_suppressed_leaves_the_marginals_alone():
    from synthroom.synthesis.model import finalize

    model = estimate(SIZES, measurements(3), iters=50)
    with jax_settings():
        done = finalize(model, {}, "t")
        for col in SIZES:
            np.testing.assert_allclose(
                np.asarray(done.project((col,)).datavector()),
                np.asarray(model.project((col,)).datavector()) * done.total / float(model.total),
                rtol=1e-5,
            )
