"""Evaluation: score any explainer with every metric, and the benchmark.

- `evaluate_explanations`: one explanation method, every metric of
  `keras_compattr.metrics` that applies, one dict.
- `train_judge`, `masked_out_accuracy`: an independent judge of
  completeness, and its accuracy on what a decision mask leaves out.
- `format_table`: a Markdown table of several methods.
- `run_benchmark`: COMET (batch and per-sample hinge), the no-detector
  ablation and Grad-CAM / Saliency / IntegratedGradients / RISE on the
  embedded two-part data, trained and scored alike.
- `run_demo`: a detector, then COMET, trained and scored on the embedded
  two-part data (`keras-compattr demo`).
- `small_classifier`, `small_comet`, `train_classifier`, `train_comet`:
  the small-network recipe of `keras_compattr.training`, which the demo,
  command line and benchmark share; also importable from here.
"""

from keras_compattr.evaluation.benchmark import run_benchmark
from keras_compattr.evaluation.demo import run_demo
from keras_compattr.evaluation.judge import masked_out_accuracy
from keras_compattr.evaluation.judge import train_judge
from keras_compattr.evaluation.report import METRICS
from keras_compattr.evaluation.report import CompiledClassifier
from keras_compattr.evaluation.report import evaluate_explanations
from keras_compattr.evaluation.report import format_table
from keras_compattr.evaluation.report import unit_maps
from keras_compattr.training import small_classifier
from keras_compattr.training import small_comet
from keras_compattr.training import train_classifier
from keras_compattr.training import train_comet

__all__ = [
    "METRICS",
    "CompiledClassifier",
    "evaluate_explanations",
    "format_table",
    "masked_out_accuracy",
    "run_benchmark",
    "run_demo",
    "small_classifier",
    "small_comet",
    "train_classifier",
    "train_comet",
    "train_judge",
    "unit_maps",
]
