"""The speed benchmark script runs and reports what it says it measures.

Tiny networks and a few steps: these check the script, not the speed.
"""

import importlib.util
import math
import os

import keras
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "benchmarks", "speed.py")
TINY = [
    "--image-size", "32",
    "--batch-size", "4",
    "--classes", "3",
    "--widths", "4,8",
    "--selector", "tiny",
    "--steps", "3",
    "--repeats", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(results, keys):
    for key in keys:
        assert math.isfinite(results[key]) and results[key] > 0, key


def test_profile_reports_the_step_against_its_floor(speed, capsys):
    results = speed.main(["profile", *TINY])
    _positive(
        results,
        [
            "comet_step_ms",
            "plain_step_ms",
            "selector_step_ms",
            "detector_step_ms",
            "step_ratio",
            "comet_over_floor",
        ],
    )
    parts = (
        results["plain_step_ms"]
        + results["selector_step_ms"]
        + results["detector_step_ms"]
    )
    assert results["floor_ratio"] == pytest.approx(
        parts / results["plain_step_ms"]
    )
    # `auto` is Keras' default: XLA on JAX, none on TensorFlow on a CPU.
    assert results["xla_in_use"] is (keras.backend.backend() == "jax")
    assert "floor_ratio" in capsys.readouterr().out


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="runs in the JAX child: XLA compiles on a CPU take half a minute "
    "on TensorFlow, and test_model covers its XLA steps",
)
def test_xla_compares_every_step_with_and_without(speed):
    results = speed.main(["xla", *TINY])
    for step in ("train", "test", "predict", "explain"):
        _positive(
            results,
            [
                f"{step}_images_per_s_xla",
                f"{step}_images_per_s_no_xla",
                f"xla_speedup_{step}",
            ],
        )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="two child processes; the check does not depend on the backend",
)
@pytest.mark.large  # two child processes, about 40 s
def test_memory_reads_each_child_process_peak(speed):
    results = speed.main(["memory", *TINY])
    # Each side's own peak: a child reporting its parent's peak gave two
    # equal figures before.
    assert results["comet_peak_rss_mib"] != results["plain_peak_rss_mib"]
    _positive(results, ["comet_peak_rss_mib", "plain_peak_rss_mib"])
    assert "comet_peak_device_mib" not in results  # no accelerator here
