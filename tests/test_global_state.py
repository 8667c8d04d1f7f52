"""Importing, fitting and sampling change no process-wide setting: not XLA_FLAGS, not JAX's
64-bit switch, not numpy's global generator (which sampling neither seeds nor reads)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from synthroom import Synthesizer
from synthroom.demo import CUSTOMERS_SCHEMA
from synthroom.runtime import FAST_COMPILE_FLAG, XLA_FLAG, xla_flags
from synthroom.synthesis.model import jax_settings, sample_codes

PROBE = """
import json, os
os.environ.pop("XLA_FLAGS", None)
import numpy as np
np.random.seed(123)
before = np.random.get_state()[1].tolist()
import synthroom, synthroom.synthesis.model, synthroom.pipeline, synthroom.api, synthroom.cli.app, synthroom.room
import jax
seen = {"import": [os.environ.get("XLA_FLAGS"), bool(jax.config.jax_enable_x64),
                   np.random.get_state()[1].tolist() == before]}
from synthroom.demo import CUSTOMERS_SCHEMA, simulate_customers
model = synthroom.Synthesizer(CUSTOMERS_SCHEMA, epsilon=1.0, seed=3).fit(simulate_customers(800, seed=0))
model.sample(200)
seen["fit and sample"] = [os.environ.get("XLA_FLAGS"), bool(jax.config.jax_enable_x64),
                          np.random.get_state()[1].tolist() == before]
print(json.dumps(seen))
"""


def test_importing_fitting_and_sampling_leave_the_process_settings_alone():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"import": [None, False, True], "fit and sample": [None, False, True]}


@pytest.fixture(scope="module")
def fitted(customers):
    return Synthesizer(CUSTOMERS_SCHEMA, epsilon=4.0, seed=7).fit(customers)


def test_sampling_does_not_read_numpys_global_generator(fitted):
    np.random.seed(1)
    first = fitted.sample(300, seed=5)
    np.random.seed(2)
    assert fitted.sample(300, seed=5).equals(first)
    assert not fitted.sample(300, seed=6).equals(first)


def test_samples_follow_the_models_distribution(fitted):
    # every (feature, target) pair of 100,000 draws against the model's own marginal: a sampler
    # that broke the conditioning would be off by far more than sampling error (about 0.02 here)
    model = fitted.model_
    rows = 100_000
    codes = sample_codes(model, rows, seed=11)
    target = fitted.schema.target
    for col in model.domain:
        if col == target:
            continue
        with jax_settings():
            expected = np.asarray(model.project((col, target)).datavector(flatten=False), dtype=float)
        expected = expected / expected.sum()
        drawn = np.zeros_like(expected)
        np.add.at(drawn, (codes[col], codes[target]), 1.0 / rows)
        assert 0.5 * np.abs(drawn - expected).sum() < 0.05, col


def test_xla_flags_adds_each_default_once_and_keeps_a_users_choice():
    assert XLA_FLAG == "--xla_cpu_use_fusion_emitters=false"
    assert xla_flags(None) == XLA_FLAG
    assert xla_flags(XLA_FLAG) == XLA_FLAG
    assert xla_flags("--xla_foo=1") == f"--xla_foo=1 {XLA_FLAG}"
    assert xla_flags("--xla_cpu_use_fusion_emitters=true") == "--xla_cpu_use_fusion_emitters=true"
    both = (XLA_FLAG, FAST_COMPILE_FLAG)
    assert xla_flags(None, defaults=both) == f"{XLA_FLAG} --xla_backend_optimization_level=0"
    assert xla_flags("--xla_backend_optimization_level=2", defaults=both) == (
        f"--xla_backend_optimization_level=2 {XLA_FLAG}"
    )


QUIET = """
from synthroom.demo import CUSTOMERS_SCHEMA, simulate_customers
import synthroom
synthroom.Synthesizer(CUSTOMERS_SCHEMA, epsilon=1.0, seed=3).fit(simulate_customers(8_000, seed=0))
"""


def test_a_fit_prints_none_of_mbi_s_import_time_advice():
    """mbi warns at import (JAX in float32, JAX's compilation cache); model.py imports it with that
    advice handled, so no other module may import mbi first: a standard-regime fit (its coarse round
    sizes the junction tree before the estimator runs) printed both warnings on the command line."""
    done = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "JAX is running in float32 mode" not in done.stderr
    assert "JAX persistent compilation cache is enabled" not in done.stderr
