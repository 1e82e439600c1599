"""RISE: attribution by randomly masked forward passes (no gradients)."""

import math

import numpy as np
from keras import ops

from keras_compattr.explainers._base import Explainer
from keras_compattr.utils.argument_checks import check_fill
from keras_compattr.utils.argument_checks import check_number
from keras_compattr.utils.classifiers import fill_values
from keras_compattr.utils.classifiers import model_outputs


class RISE(Explainer):
    """RISE maps for any Keras image classifier, from forward passes only.

    `num_masks` random masks are drawn once per `explain` call (from
    `seed`, so the same for every image and every call): a grid of cells
    of `cell_size` pixels, each kept with `probability`, upsampled
    bilinearly and shifted by a random offset of less than one cell. Each
    image is evaluated with each mask, `M * x + (1 - M) * fill`, and the
    map is the mask average weighted by the class score,
    `sum_j S(M_j x) M_j / (num_masks * probability)`; it is then min-max
    normalised per image to `[0, 1]` (the raw map is an expected score
    plus a nearly constant offset).

    The class score is the model output at the label as the model outputs
    it (a logit, or a probability for a model that ends with a softmax;
    the paper uses probabilities). Costs `N * num_masks` forward passes,
    in batches of `batch_size` masked images.

    Args:
        model: a Keras classifier mapping images to `(N, K)` logits or
            probabilities.
        num_masks: int, number of random masks.
        cell_size: int, size in pixels of a grid cell before the shift.
        probability: float in `(0, 1)`, chance that a cell is kept.
        seed: non-negative int, seed of the masks.
        fill: float or per-channel sequence in `[0, 1]`, the value of a
            masked pixel (0, as in the paper, multiplies the image by the
            mask).

    Example:

    >>> import keras, numpy as np
    >>> from keras_compattr.explainers import RISE
    >>> model = keras.Sequential(
    ...     [keras.Input((16, 16, 3)), keras.layers.Flatten(),
    ...      keras.layers.Dense(2)])
    >>> images = np.random.rand(2, 16, 16, 3).astype("float32")
    >>> rise = RISE(model, num_masks=64, cell_size=4)
    >>> rise.explain(images, labels=[0, 1]).shape
    (2, 16, 16)

    Reference:
        [Petsiuk et al., 2018](https://arxiv.org/abs/1806.07421).
    """

    def __init__(
        self,
        model,
        num_masks=2000,
        cell_size=8,
        probability=0.5,
        seed=0,
        fill=0.0,
    ):
        super().__init__(model)
        self.num_masks = check_number(num_masks, "num_masks", 1, integer=True)
        self.cell_size = check_number(cell_size, "cell_size", 1, integer=True)
        self.probability = check_number(
            probability, "probability", 0.0, 1.0, low_open=True, high_open=True
        )
        self.seed = check_number(seed, "seed", low=0, integer=True)
        check_fill(fill)
        self.fill = fill

    def _grids(self, height, width):
        """Binary grids `(num_masks, gh + 1, gw + 1)` and pixel shifts."""
        rng = np.random.default_rng(self.seed)
        cells = (
            math.ceil(height / self.cell_size) + 1,
            math.ceil(width / self.cell_size) + 1,
        )
        grids = rng.random((self.num_masks,) + cells) < self.probability
        shifts = rng.integers(0, self.cell_size, (self.num_masks, 2))
        return grids.astype("float32"), shifts

    def _masks(self, grids, shifts, height, width):
        """Upsamples and crops grids to `(M, height, width)` masks."""
        size = (
            grids.shape[1] * self.cell_size,
            grids.shape[2] * self.cell_size,
        )
        upsampled = ops.convert_to_numpy(
            ops.image.resize(grids[..., None], size, interpolation="bilinear")
        )[..., 0]
        rows = shifts[:, :1] + np.arange(height)
        cols = shifts[:, 1:] + np.arange(width)
        index = np.arange(len(grids))[:, None, None]
        return upsampled[index, rows[:, :, None], cols[:, None, :]]

    def explain(self, images, labels=None, batch_size=32):
        """Attribution maps of `images` for `labels`, in `[0, 1]`.

        Args:
            images, labels: as for `Explainer.explain`.
            batch_size: int, masked images per forward pass (RISE runs
                the model on every mask of every image).

        Returns:
            A float32 NumPy array `(N, H, W)` with values in `[0, 1]`.

        Raises:
            ValueError, TypeError: bad images, labels or `batch_size`, as
                for `Explainer.explain`.
        """
        images, labels, batch_size = self._inputs(images, labels, batch_size)
        num, height, width, channels = images.shape
        fill = fill_values(self.fill, channels)
        grids, shifts = self._grids(height, width)
        saliency = np.zeros((num, height * width), "float64")
        # Masks are the outer loop, so each is upsampled once; memory holds
        # `batch_size` masks and masked images at a time.
        for start in range(0, self.num_masks, batch_size):
            stop = start + batch_size
            masks = self._masks(
                grids[start:stop], shifts[start:stop], height, width
            )
            flat = masks.reshape(len(masks), -1).astype("float64")
            weights = masks[..., None]
            for i in range(num):
                masked = weights * images[i] + (1.0 - weights) * fill
                scores = model_outputs(self.model, masked.astype("float32"))
                saliency[i] += scores[:, labels[i]] @ flat
        saliency /= self.num_masks * self.probability
        saliency = saliency.reshape(num, height, width)
        low = saliency.min(axis=(1, 2), keepdims=True)
        span = saliency.max(axis=(1, 2), keepdims=True) - low
        return np.divide(
            saliency - low, span, out=np.zeros_like(saliency), where=span > 0
        ).astype("float32")
