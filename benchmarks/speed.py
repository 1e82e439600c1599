"""Speed benchmarks of keras_compattr (issue 6).

Every figure is a ratio measured side by side in one process, repeated and
interleaved so that load from other processes hits both sides alike.

    python benchmarks/speed.py step      # COMET step / plain predictor step
    python benchmarks/speed.py profile   # the step's parts vs its floor
    python benchmarks/speed.py xla       # each step with XLA vs without
    python benchmarks/speed.py explain   # explain() vs Grad-CAM and RISE
    python benchmarks/speed.py pipeline  # tf.data pipeline vs training step
    python benchmarks/speed.py memory    # peak memory of a training step
    python benchmarks/speed.py all --json results.json

The backend comes from KERAS_BACKEND (tensorflow, jax or torch); each
backend's run gives its column of the step ratio. `--jit auto|on|off` sets
`jit_compile` (default `auto`, Keras' own default: XLA on JAX, and on
TensorFlow only where Keras finds it helps, i.e. not on a CPU; eager on
torch, where `on` asks for `torch.compile`).
"""

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import keras
import numpy as np

import keras_compattr as kca

_JIT = {"auto": "auto", "on": True, "off": False}


def _jit(args):
    return _JIT[args.jit]


def _xla_in_use(args):
    """Whether `--jit` compiles the steps with XLA here."""
    probe = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    probe.compile(jit_compile=_jit(args))
    return bool(probe.jit_compile)


def _networks(args):
    shape = (args.image_size, args.image_size, 3)
    widths = tuple(int(w) for w in args.widths.split(","))
    keras.utils.set_random_seed(0)
    selector = kca.models.build_selector(shape, backbone=args.selector)
    predictor = kca.models.build_predictor(shape, args.classes, widths=widths)
    detector = kca.models.build_classifier(
        shape, args.classes, widths=widths, name="detector"
    )
    return shape, selector, predictor, detector


def _data(args, shape, count):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (count, *shape)).astype("float32")
    labels = rng.integers(0, args.classes, count).astype("int32")
    return images, labels


def _comet(args, selector, predictor, detector):
    model = kca.ComprehensiveAttributionModel(
        selector=selector,
        predictor=predictor,
        detector=detector,
        hinge_reduction=args.hinge_reduction,
        fill_value=0.5,
    )
    model.compile(jit_compile=_jit(args))
    return model


def _plain(args, predictor):
    predictor.compile(
        optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.03),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=_jit(args),
    )
    return predictor


class _StepTimer(keras.callbacks.Callback):
    """Wall time from the end of the first batch to the end of the last."""

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch == 0:
            self.first = now
        self.last, self.batches = now, batch

    def per_step(self):
        return (self.last - self.first) / self.batches


def _time_fit(model, images, labels, batch_size):
    """Seconds per training step, excluding the first step of the call."""
    timer = _StepTimer()
    model.fit(
        images,
        labels,
        batch_size=batch_size,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[timer],
    )
    return timer.per_step()


def bench_step(args):
    """Training step time of COMET vs the same predictor trained alone."""
    shape, selector, predictor, detector = _networks(args)
    plain_predictor = keras.models.clone_model(predictor)
    comet = _comet(args, selector, predictor, detector)
    plain = _plain(args, plain_predictor)
    images, labels = _data(args, shape, args.batch_size * args.steps)
    # Warm up: trace and compile both.
    warm = args.batch_size * 3
    _time_fit(comet, images[:warm], labels[:warm], args.batch_size)
    _time_fit(plain, images[:warm], labels[:warm], args.batch_size)
    comet_times, plain_times = [], []
    for _ in range(args.repeats):
        comet_times.append(_time_fit(comet, images, labels, args.batch_size))
        plain_times.append(_time_fit(plain, images, labels, args.batch_size))
    comet_step = min(comet_times)
    plain_step = min(plain_times)
    return {
        "comet_step_ms": 1000 * comet_step,
        "plain_step_ms": 1000 * plain_step,
        "step_ratio": comet_step / plain_step,
        "comet_images_per_s": args.batch_size / comet_step,
    }


class _InputShift(keras.layers.Layer):
    """Adds a trainable image-sized offset: its gradient is the input's."""

    def build(self, input_shape):
        self.shift = self.add_weight(
            shape=(1, *input_shape[1:]), initializer="zeros", name="shift"
        )

    def call(self, images):
        return images + self.shift


def _selector_alone(args, shape):
    """The selector and mask head trained alone (mask pulled to zero)."""
    selector = kca.models.build_selector(shape, backbone=args.selector)
    images = keras.Input(shape)
    masks = kca.layers.MaskHead(*shape[:2])(selector(images))
    model = keras.Model(images, masks)
    model.compile(
        optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.03),
        loss="mean_squared_error",
        jit_compile=_jit(args),
    )
    return model


def _detector_input_gradient(args, shape, detector):
    """The frozen detector's forward pass and gradient for its input."""
    detector.trainable = False
    images = keras.Input(shape)
    model = keras.Model(images, detector(_InputShift()(images)))
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=_jit(args),
    )
    return model


def bench_profile(args):
    """The COMET step against the sum of the work it cannot avoid.

    A COMET step must at least train the predictor (the plain step), run
    the selector forward and backward, and run the frozen detector forward
    and back to its input. Each part is timed as its own jitted (or not)
    `fit` step, interleaved with the COMET step in one process, so
    `floor_ratio = (plain + selector + detector) / plain` is what a COMET
    step would cost with no overhead at all, and `comet_over_floor` is what
    the implementation adds on top (masking, loss terms, the optimizer's
    bookkeeping for two groups, metrics).
    """
    shape, selector, predictor, detector = _networks(args)
    plain_predictor = keras.models.clone_model(predictor)
    alone_detector = keras.models.clone_model(detector)
    images, labels = _data(args, shape, args.batch_size * args.steps)
    masks = np.zeros((*images.shape[:3], 1), "float32")
    parts = {
        "comet": (_comet(args, selector, predictor, detector), labels),
        "plain": (_plain(args, plain_predictor), labels),
        "selector": (_selector_alone(args, shape), masks),
        "detector": (
            _detector_input_gradient(args, shape, alone_detector),
            labels,
        ),
    }
    warm = args.batch_size * 3
    for model, targets in parts.values():
        _time_fit(model, images[:warm], targets[:warm], args.batch_size)
    times = {name: [] for name in parts}
    for _ in range(args.repeats):
        for name, (model, targets) in parts.items():
            times[name].append(
                _time_fit(model, images, targets, args.batch_size)
            )
    ms = {name: 1000 * min(t) for name, t in times.items()}
    floor = ms["plain"] + ms["selector"] + ms["detector"]
    results = {f"{name}_step_ms": value for name, value in ms.items()}
    results.update(
        {
            "step_ratio": ms["comet"] / ms["plain"],
            "floor_ratio": floor / ms["plain"],
            "comet_over_floor": ms["comet"] / floor,
        }
    )
    return results


def _seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def bench_xla(args):
    """Train, test, predict and explain steps with and without XLA.

    Two COMET models with the same architecture, one compiled with
    `jit_compile=True` and one with `False`, run each step on the same
    images, interleaved, after a warm-up that traces and compiles every
    step. `xla_speedup_*` is the time without XLA over the time with it
    (above 1: XLA is faster); `*_images_per_s` are the absolute figures.
    """
    shape = (args.image_size, args.image_size, 3)
    images, labels = _data(args, shape, args.batch_size * args.steps)
    batch = args.batch_size
    models = {}
    for name, jit in (("xla", "on"), ("no_xla", "off")):
        side = argparse.Namespace(**{**vars(args), "jit": jit})
        models[name] = _comet(side, *_networks(side)[1:])
    steps = {
        # Per step, the first step of the call left out, as in `step`.
        "train": lambda m: (
            _time_fit(m, images, labels, batch) * (len(images) / batch)
        ),
        "test": lambda m: _seconds(
            lambda: m.evaluate(images, labels, batch_size=batch, verbose=0)
        ),
        "predict": lambda m: _seconds(
            lambda: m.predict(images, batch_size=batch, verbose=0)
        ),
        "explain": lambda m: _seconds(
            lambda: m.explain(images, batch_size=batch, verbose=0)
        ),
    }
    seconds = {}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for step_name, step in steps.items():
            for model_name, model in models.items():
                elapsed = step(model)
                if repeat:
                    key = (step_name, model_name)
                    seconds[key] = min(seconds.get(key, elapsed), elapsed)
    results = {}
    for step_name in steps:
        xla, no_xla = seconds[step_name, "xla"], seconds[step_name, "no_xla"]
        results[f"{step_name}_images_per_s_xla"] = len(images) / xla
        results[f"{step_name}_images_per_s_no_xla"] = len(images) / no_xla
        results[f"xla_speedup_{step_name}"] = no_xla / xla
    return results


def bench_explain(args):
    """explain() throughput vs Grad-CAM and RISE on the predictor."""
    shape, selector, predictor, detector = _networks(args)
    comet = _comet(args, selector, predictor, detector)
    images, _ = _data(args, shape, args.batch_size * args.steps)
    methods = {
        "comet_explain": lambda x: comet.explain(
            x, batch_size=args.batch_size, verbose=0
        ),
        "grad_cam": kca.explainers.GradCAM(predictor).explain,
        "rise": kca.explainers.RISE(
            predictor, num_masks=args.rise_masks
        ).explain,
    }
    rise_images = images[: max(1, args.batch_size // 4)]
    results = {}
    for name, explain in methods.items():
        subset = rise_images if name == "rise" else images
        explain(subset[:2])  # warm up
        best = min(
            _seconds(functools.partial(explain, subset))
            for _ in range(args.repeats)
        )
        results[f"{name}_images_per_s"] = len(subset) / best
    results["explain_vs_grad_cam"] = (
        results["comet_explain_images_per_s"] / results["grad_cam_images_per_s"]
    )
    results["explain_vs_rise"] = (
        results["comet_explain_images_per_s"] / results["rise_images_per_s"]
    )
    results["rise_masks"] = args.rise_masks
    return results


def bench_pipeline(args):
    """Images/s of the synthetic tf.data pipeline alone vs a training step."""
    ds = kca.datasets.load(
        "synthetic",
        split="train",
        image_size=args.image_size,
        batch_size=args.batch_size,
        augment=True,
    )
    count, start = 0, None
    for i, (images, _) in enumerate(ds):
        if i == 1:
            start, count = time.perf_counter(), 0
        if i > 0:
            count += int(images.shape[0])
        if i >= args.steps:
            break
    pipeline = count / (time.perf_counter() - start)
    step = bench_step(args)
    return {
        "pipeline_images_per_s": pipeline,
        "train_images_per_s": step["comet_images_per_s"],
        "pipeline_over_train": pipeline / step["comet_images_per_s"],
    }


def _peak_rss_kib():
    """This process's peak resident set, in KiB.

    On Linux this is `VmHWM`, the peak of this program's own memory map.
    `getrusage`'s `ru_maxrss` is not used there: it keeps the high-water
    mark of the process before `exec`, i.e. of the parent that forked it,
    so a child started from a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes there


def _device_peak_bytes():
    """Peak memory of the first accelerator, or None on a CPU.

    Only the benchmark reads this, so it may look at each backend here.
    """
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        return (device.memory_stats() or {}).get("peak_bytes_in_use")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    if keras.backend.backend() == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return torch.cuda.max_memory_allocated()
    return None


_MEMORY_CHILD = """
import sys, json
sys.argv = {argv!r}
sys.path.insert(0, {here!r})
import speed
args = speed.build_parser().parse_args(sys.argv[1:])
shape, selector, predictor, detector = speed._networks(args)
images, labels = speed._data(args, shape, args.batch_size * 2)
if args.which == "comet":
    model = speed._comet(args, selector, predictor, detector)
else:
    model = speed._plain(args, predictor)
model.fit(images, labels, batch_size=args.batch_size, epochs=2, verbose=0)
print(json.dumps({{
    "peak_kib": speed._peak_rss_kib(),
    "device_peak_bytes": speed._device_peak_bytes(),
}}))
"""


def bench_memory(args):
    """Peak memory of training COMET vs the plain predictor.

    Each side runs in a fresh process that imports the same modules and
    builds the same three networks, then trains one model for two epochs;
    the figures are each process's peak resident set (and, on a GPU, the
    accelerator's peak), and their difference is what training COMET
    costs beyond the plain predictor.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    results = {}
    for which in ("comet", "plain"):
        argv = ["speed.py", "memory", "--which", which] + _common_argv(args)
        code = _MEMORY_CHILD.format(argv=argv, here=here)
        output = (
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        peaks = json.loads(output)
        results[f"{which}_peak_rss_mib"] = peaks["peak_kib"] / 1024
        if peaks["device_peak_bytes"] is not None:
            results[f"{which}_peak_device_mib"] = (
                peaks["device_peak_bytes"] / 2**20
            )
    for where in ("rss", "device"):
        if f"comet_peak_{where}_mib" in results:
            results[f"comet_extra_{where}_mib"] = (
                results[f"comet_peak_{where}_mib"]
                - results[f"plain_peak_{where}_mib"]
            )
    return results


def _common_argv(args):
    return [
        "--image-size", str(args.image_size),
        "--batch-size", str(args.batch_size),
        "--classes", str(args.classes),
        "--widths", args.widths,
        "--selector", args.selector,
        "--steps", str(args.steps),
        "--hinge-reduction", args.hinge_reduction,
        "--jit", args.jit,
    ]  # fmt: skip


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what",
        choices=(
            "step",
            "profile",
            "xla",
            "explain",
            "pipeline",
            "memory",
            "all",
        ),
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--widths", default="16,32,64,128")
    parser.add_argument(
        "--selector",
        default="mobilenet_v3_small",
        choices=kca.models.networks.SELECTOR_BACKBONES,
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rise-masks", type=int, default=500)
    parser.add_argument(
        "--hinge-reduction", choices=("batch", "sample"), default="batch"
    )
    parser.add_argument("--jit", choices=tuple(_JIT), default="auto")
    parser.add_argument("--which", choices=("comet", "plain"), default="comet")
    parser.add_argument("--json", help="also write the results here")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    benches = {
        "step": bench_step,
        "profile": bench_profile,
        "xla": bench_xla,
        "explain": bench_explain,
        "pipeline": bench_pipeline,
        "memory": bench_memory,
    }
    if args.what == "all":  # `profile` times the COMET and plain steps too
        names = [name for name in benches if name != "step"]
    else:
        names = [args.what]
    results = {
        "backend": keras.backend.backend(),
        "jit_compile": args.jit,
        "xla_in_use": _xla_in_use(args),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "config": {
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "widths": args.widths,
            "selector": args.selector,
            "hinge_reduction": args.hinge_reduction,
        },
    }
    for name in names:
        results.update(benches[name](args))
    width = max(len(k) for k in results)
    for key, value in results.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        print(f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    # The networks are random, and only their speed is measured: leave out
    # the warning that the detector looks untrained.
    warnings.filterwarnings("ignore", message="The detector has accuracy")
    main()
