"""Post-hoc attribution baselines for any Keras image classifier.

Each explainer wraps a trained classifier and has
`.explain(images, labels=None, batch_size=32) -> (N, H, W)` float32 maps,
the same interface as `ComprehensiveAttributionModel.explain`, so the
metrics in `keras_compattr.metrics` score them alike.

`GradCAM`, `Saliency`, `IntegratedGradients` and `RISE` are post-hoc:
they explain at once. `LearnedMask` is learned: `.fit` trains a selector
against the frozen classifier (COMET's objective), then `.explain` costs
one forward pass of the selector.
"""

from keras_compattr.explainers._base import Explainer
from keras_compattr.explainers.grad_cam import GradCAM
from keras_compattr.explainers.integrated_gradients import IntegratedGradients
from keras_compattr.explainers.learned_mask import LearnedMask
from keras_compattr.explainers.rise import RISE
from keras_compattr.explainers.saliency import Saliency

__all__ = [
    "RISE",
    "Explainer",
    "GradCAM",
    "IntegratedGradients",
    "LearnedMask",
    "Saliency",
]
