"""The benchmark: COMET, its ablation and post-hoc maps on one footing."""

import json
import os
import time

import keras
import numpy as np

from keras_compattr.evaluation.judge import masked_out_accuracy
from keras_compattr.evaluation.judge import train_judge
from keras_compattr.evaluation.report import CompiledClassifier
from keras_compattr.evaluation.report import evaluate_explanations
from keras_compattr.evaluation.report import format_table
from keras_compattr.training import small_classifier
from keras_compattr.training import small_comet
from keras_compattr.training import train_classifier
from keras_compattr.training import train_comet

# Budgets: the full run takes a few CPU minutes per method; the quick one
# only checks that everything runs.
_BUDGETS = {  # setting: (full, quick)
    "image_size": (48, 32),
    "train_images": (1600, 48),
    "test_images": (300, 12),
    "detector_epochs": (8, 1),
    "epochs": (10, 1),
    "batch_size": (64, 16),
    "ig_steps": (16, 2),
    "rise_masks": (500, 16),
    "deletion_steps": (20, 4),
    "robustness_images": (100, 6),
    "judge_epochs": (12, 1),
}
FULL = {name: full for name, (full, _) in _BUDGETS.items()}
QUICK = {name: quick for name, (_, quick) in _BUDGETS.items()}
# Each row's model arguments; `None` stands for `run_benchmark`'s
# `area_budget` (a fixed budget).
COMET_VARIANTS = (
    # The model's defaults: "auto" area, batch chance hinge, hardened judge.
    ("COMET (default)", {}),
    ("COMET (unhardened)", {"hardening": False}),
    (
        "COMET (paper recipe)",
        {"area_budget": 0.6, "hinge_reduction": "batch", "hardening": False},
    ),
    (
        "COMET (sample hinge)",
        {"area_budget": None, "hinge_reduction": "sample", "hardening": False},
    ),
    ("no detector (a=0)", {"area_budget": None, "detector_weight": 0.0}),
)
POST_HOC = ("Grad-CAM", "Saliency", "IntegratedGradients", "RISE")
# Explainers of the black box that are trained first.
LEARNED = ("LearnedMask",)
METHODS = tuple(name for name, _ in COMET_VARIANTS) + POST_HOC + LEARNED


def _post_hoc_explainer(name, detector, fast_detector, budget, fill):
    from keras_compattr import explainers

    if name == "Grad-CAM":
        return explainers.GradCAM(detector)
    if name == "Saliency":
        return explainers.Saliency(detector)
    if name == "IntegratedGradients":
        return explainers.IntegratedGradients(
            detector, steps=budget["ig_steps"], baseline=fill
        )
    return explainers.RISE(
        fast_detector, num_masks=budget["rise_masks"], fill=fill
    )


def _labelled(explainer, images, labels, batch_size):
    """Explains the true class; perturbed copies keep the labels' order."""

    def explain(x):
        return explainer.explain(
            x, labels[: len(x)], batch_size=min(batch_size, len(x))
        )

    return explain


def _say(verbose, *args):
    if verbose:
        print(*args, flush=True)


def _run_seed(seed, budget, area_budget, output, verbose, variant, methods):
    from keras_compattr.datasets import synthetic
    from keras_compattr.visualization import plot_comparison
    from keras_compattr.visualization import plot_curves

    fit_verbose = 2 if verbose else 0
    size, batch_size = budget["image_size"], budget["batch_size"]
    shape, num_classes = (size, size, 3), 4
    train = synthetic(
        budget["train_images"], size, num_classes, variant, seed=seed
    )
    test = synthetic(
        budget["test_images"],
        size,
        num_classes,
        variant,
        background_swap=True,
        seed=seed + 1,
    )
    # The evaluator sees its own training images and initialisation, so
    # fidelity is not judged by the detector COMET was trained against.
    evaluator_train = synthetic(
        budget["train_images"], size, num_classes, variant, seed=seed + 2
    )
    fill = train["images"].mean(axis=(0, 1, 2))
    _say(verbose, f"[seed {seed}] Training the independent judge")
    judge = train_judge(
        evaluator_train["images"],
        evaluator_train["labels"],
        num_classes,
        fill,
        seed=seed + 500,
        epochs=budget["judge_epochs"],
        batch_size=batch_size,
        verbose=fit_verbose,
    )
    images, labels = test["images"], test["labels"]
    timings = {}

    def train_timed(name, train_function, model, data, epochs):
        """Trains `model` on `data`; its test logs. Times the training."""
        x, y = data["images"], data["labels"]
        start = time.perf_counter()
        train_function(model, x, y, epochs, batch_size, verbose=fit_verbose)
        timings[f"train {name}"] = time.perf_counter() - start
        return model.evaluate(images, labels, verbose=0, return_dict=True)

    def train_black_box(name, data, init_seed):
        keras.utils.set_random_seed(init_seed)
        model = small_classifier(shape, num_classes, name=name)
        epochs = budget["detector_epochs"]
        logs = train_timed(name, train_classifier, model, data, epochs)
        return model, logs["accuracy"]

    _say(verbose, f"\n[seed {seed}] Training the black-box classifier")
    detector, detector_accuracy = train_black_box("detector", train, seed)
    _say(verbose, f"  test accuracy {detector_accuracy:.1%}")
    _say(verbose, f"[seed {seed}] Training the evaluator (fidelity metrics)")
    evaluator, evaluator_accuracy = train_black_box(
        "evaluator", evaluator_train, seed + 1000
    )
    _say(verbose, f"  test accuracy {evaluator_accuracy:.1%}")
    fast_evaluator = CompiledClassifier(evaluator)
    fast_detector = CompiledClassifier(detector)
    common = dict(
        masks=test["masks"],
        part_masks=test["part_masks"],
        swapped_images=test["swapped_images"],
        fill=fill,
        batch_size=batch_size,
        deletion_steps=budget["deletion_steps"],
        robustness_images=budget["robustness_images"],
        return_maps=True,
    )

    results, maps = {}, {}
    for name, options in COMET_VARIANTS:
        if name not in methods:
            continue
        _say(verbose, f"[seed {seed}] Training {name}")
        keras.utils.set_random_seed(seed)
        options = dict(options)
        if options.get("area_budget", "auto") is None:
            options["area_budget"] = area_budget
        model = small_comet(shape, num_classes, detector, **options)
        logs = train_timed(name, train_comet, model, train, budget["epochs"])
        model.explain(images, verbose=0)  # compile first: time the second
        start = time.perf_counter()
        results[name], maps[name] = evaluate_explanations(
            lambda x, model=model: model.explain(x, verbose=0),
            images,
            labels,
            fast_evaluator,
            accuracy=logs["accuracy"],
            **common,
        )
        results[name]["masked_out_accuracy"] = float(
            logs["masked_out_accuracy"]
        )
        results[name]["judge_masked_out_accuracy"] = masked_out_accuracy(
            judge, images, labels, maps[name], fill
        )
        timings[f"evaluate {name}"] = time.perf_counter() - start
        _say(verbose, f"  done: accuracy {logs['accuracy']:.1%}")

    for name in POST_HOC:
        if name not in methods:
            continue
        _say(verbose, f"[seed {seed}] Explaining the black box with {name}")
        explainer = _post_hoc_explainer(
            name, detector, fast_detector, budget, fill
        )
        explain = _labelled(explainer, images, labels, batch_size)
        explain(images[:2])  # build gradient functions first
        start = time.perf_counter()
        results[name], maps[name] = evaluate_explanations(
            explain,
            images,
            labels,
            fast_evaluator,
            accuracy=detector_accuracy,
            **common,
        )
        timings[f"evaluate {name}"] = time.perf_counter() - start
        results[name]["judge_masked_out_accuracy"] = masked_out_accuracy(
            judge, images, labels, maps[name], fill
        )

    if "LearnedMask" in methods:
        _say(verbose, f"[seed {seed}] Training LearnedMask of the black box")
        keras.utils.set_random_seed(seed)
        from keras_compattr.explainers import LearnedMask

        explainer = LearnedMask(detector)
        start = time.perf_counter()
        # Labels: the black box's predictions (the explainer's default).
        explainer.fit(
            train["images"],
            epochs=budget["epochs"],
            batch_size=batch_size,
            verbose=fit_verbose,
        )
        timings["train LearnedMask"] = time.perf_counter() - start
        explainer.explain(images[:2])  # compile first: time the second
        start = time.perf_counter()
        results["LearnedMask"], maps["LearnedMask"] = evaluate_explanations(
            lambda x: explainer.explain(x, batch_size=batch_size),
            images,
            labels,
            fast_evaluator,
            accuracy=detector_accuracy,
            **common,
        )
        timings["evaluate LearnedMask"] = time.perf_counter() - start
        results["LearnedMask"]["masked_out_accuracy"] = float(
            explainer.evaluate(images, labels, verbose=0, return_dict=True)[
                "masked_out_accuracy"
            ]
        )
        results["LearnedMask"]["judge_masked_out_accuracy"] = (
            masked_out_accuracy(
                judge, images, labels, maps["LearnedMask"], fill
            )
        )

    shown = slice(0, min(6, len(images)))
    plot_comparison(
        images[shown],
        {name: method_maps[shown] for name, method_maps in maps.items()},
        labels=labels[shown],
        class_names=test["class_names"],
        gt_masks=test["masks"][shown],
        save_path=os.path.join(output, f"comparison_seed{seed}.png"),
    )
    plot_curves(
        {name: result["curves"] for name, result in results.items()},
        save_path=os.path.join(output, f"curves_seed{seed}.png"),
    )
    # The shown maps, to redraw the figure without training again.
    np.savez_compressed(
        os.path.join(output, f"maps_seed{seed}.npz"),
        images=images[shown],
        labels=labels[shown],
        gt_masks=test["masks"][shown],
        **{name: method_maps[shown] for name, method_maps in maps.items()},
    )
    extra = {
        "detector_accuracy": float(detector_accuracy),
        "evaluator_accuracy": float(evaluator_accuracy),
        "ground_truth_area": float(test["masks"].mean()),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    return results, extra


def _aggregate(per_seed):
    """Mean and standard deviation over seeds of every scalar metric."""
    methods = per_seed[0].keys()
    combined = {}
    for method in methods:
        combined[method] = {}
        for key, value in per_seed[0][method].items():
            if key == "curves":
                combined[method][key] = {
                    k: np.mean(
                        [run[method][key][k] for run in per_seed], axis=0
                    ).tolist()
                    for k in value
                }
            elif value is None:
                combined[method][key] = None
            else:
                values = [run[method][key] for run in per_seed]
                combined[method][key] = (
                    float(np.mean(values)),
                    float(np.std(values)),
                )
    return combined


def run_benchmark(
    output="compattr_benchmark",
    quick=False,
    seed=0,
    verbose=1,
    seeds=None,
    area_budget=0.2,
    variant="two_part",
    methods=None,
):
    """Trains and scores COMET, its ablation and post-hoc baselines.

    On the embedded two-part synthetic data (4 classes, each image holding
    two tiles of its class glyph among distractor tiles, with exact part
    masks and a background-swapped copy), with one budget and seed for
    every method:

    1. trains the black-box classifier (the detector) and, on other
       images and another initialisation, an evaluator classifier that
       scores the fidelity metrics (so they are not judged by the network
       COMET was trained against), and an independent judge of
       completeness (`train_judge`: another architecture, trained on
       randomly masked images);
    2. trains COMET with the defaults (`"auto"` area, hardened judge),
       without hardening, with the paper's recipe (`area_budget=0.6`,
       batch hinge, no hardening), with the per-sample hinge at the
       fixed `area_budget`, and the no-detector ablation (`a = 0`);
    3. explains the test set with each, and with Grad-CAM, Saliency,
       IntegratedGradients and RISE on the black box (explaining the true
       class), and with `LearnedMask` of the black box (a selector
       trained for the COMET epochs against the frozen black box, on its
       own predictions);
    4. scores every method with `evaluate_explanations`: accuracy,
       PxAP, part coverage, both-parts-covered, pointing game, the
       independent judge's accuracy on what the decision mask leaves out
       (`masked_out_accuracy`; chance is 25%), attribution
       mass, deletion accuracy at 5/10/20%, keep-50% accuracy,
       insertion / deletion AUC, robustness to pixel drop and background
       swap, sparseness and explain speed.

    Writes `benchmark.json`, `benchmark.md` (the table), and per seed a
    comparison figure, the insertion / deletion curves and the maps of the
    figure (`maps_seed<N>.npz`) to `output`; prints the table. The full
    budget (48 px, 1600 training and 300 test images, 8 detector and 10
    COMET epochs) took 27 minutes (14 CPU-minutes) on a shared 2-core
    CPU.

    Args:
        output: str, output folder (created if needed).
        quick: bool, a tiny budget (32 px, a few dozen images, one epoch)
            that only checks that everything runs; its numbers mean
            nothing.
        seed: int, seed of data and initialisation.
        verbose: 0 (silent) or 1 (progress and the table).
        seeds: optional sequence of seeds; when given (overrides `seed`),
            the table shows the mean ± standard deviation over them.
        area_budget: float, the area budget `t` of the sample-hinge and
            no-detector rows. The evidence covers about 9% of the two-part
            images; 0.2 leaves room for both tiles. The default row uses
            `"auto"`, the paper's recipe 0.6.
        variant: `"two_part"` (two class tiles per image) or `"varied"`
            (1-3 class tiles of three sizes; see
            `keras_compattr.datasets.synthetic`).
        methods: optional sequence of the rows to run, from `METHODS`
            (the COMET variants, then the post-hoc explainers); `None`
            runs them all. The detector and evaluator are always trained.

    Returns:
        A dict with `"results"` (`{method: {metric: value}}`, values as
        `(mean, std)` pairs when several seeds ran), `"table"` (the
        Markdown table), `"config"`, `"per_seed"` and `"seconds"`.

    Example:

    ```python
    # doctest: large (2 minutes even with quick=True)
    from keras_compattr.evaluation import run_benchmark

    report = run_benchmark(output="compattr_benchmark", quick=True)
    print(report["table"])
    report["results"]["COMET (sample hinge)"]["pxap"]
    ```
    """
    budget = dict(QUICK if quick else FULL)
    methods = METHODS if methods is None else tuple(methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(
            f"`methods` must be a non-empty subset of {METHODS}. "
            f"Received unknown methods {unknown}."
            if unknown
            else "`methods` must name at least one method."
        )
    seeds = [int(seed)] if seeds is None else [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed.")
    os.makedirs(output, exist_ok=True)
    start = time.perf_counter()
    _say(
        verbose,
        f"keras_compattr benchmark on the {keras.backend.backend()} backend"
        f" ({'quick' if quick else 'full'} budget, seeds {seeds})",
    )
    per_seed, extras = [], []
    for run_seed in seeds:
        results, extra = _run_seed(
            run_seed, budget, area_budget, output, verbose, variant, methods
        )
        per_seed.append(results)
        extras.append(extra)
    results = per_seed[0] if len(seeds) == 1 else _aggregate(per_seed)
    table = format_table(results)
    config = {
        "backend": keras.backend.backend(),
        "quick": bool(quick),
        "seeds": seeds,
        "area_budget": area_budget,
        "variant": variant,
        "methods": list(methods),
        **budget,
        "detector_accuracy": [e["detector_accuracy"] for e in extras],
        "evaluator_accuracy": [e["evaluator_accuracy"] for e in extras],
        "ground_truth_area": extras[0]["ground_truth_area"],
    }
    report = {
        "config": config,
        "results": results,
        "per_seed": per_seed,
        "seconds": [e["seconds"] for e in extras],
        "wall_time_s": round(time.perf_counter() - start, 1),
        "table": table,
    }
    with open(os.path.join(output, "benchmark.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(output, "benchmark.md"), "w") as f:
        f.write(table + "\n")
    _say(verbose, "\n" + table)
    _say(verbose, f"\nWrote {os.path.abspath(output)}")
    return report
