"""Robustness metrics: do maps stay put when the image is perturbed?

Both functions take an `explain_fn`: a callable mapping images
`(N, H, W, C)` to maps `(N, H, W)`, or any object with an
`.explain(images)` method (a `ComprehensiveAttributionModel`, or an
explainer from `keras_compattr.explainers`).
"""

import numpy as np

from keras_compattr.metrics.localization import pxap
from keras_compattr.metrics.maps import as_maps
from keras_compattr.utils.argument_checks import check_number
from keras_compattr.utils.classifiers import check_images
from keras_compattr.utils.classifiers import fill_values

PERTURBATIONS = ("pixel_drop", "background_swap")


def _explain(explain_fn, images, expected_shape):
    function = getattr(explain_fn, "explain", explain_fn)
    if not callable(function):
        raise TypeError(
            "`explain_fn` must be a callable or have an `.explain` method. "
            f"Received {type(explain_fn).__name__}."
        )
    maps = as_maps(function(images), "explain_fn(images)")
    if maps.shape != expected_shape:
        raise ValueError(
            f"`explain_fn` must return maps of shape {expected_shape}. "
            f"Received shape {maps.shape}."
        )
    if not np.all(np.isfinite(maps)):
        raise ValueError("`explain_fn` returned non-finite values.")
    return maps


def robustness(
    explain_fn,
    images,
    perturbation="pixel_drop",
    drop_fraction=0.2,
    swapped_images=None,
    seed=0,
    fill=0.5,
):
    """PxAP of maps of perturbed images against the binarised clean maps.

    The map of each clean image is binarised at its own mean (pixels `>`
    the mean are foreground) and used as the reference. The images are then
    perturbed and explained again, and the perturbed maps are scored with
    `keras_compattr.metrics.pxap` against the reference. Higher is more
    robust. A binary map that does not move scores 100; a graded map that
    does not move scores a little less (about 97-99), since pixels in the
    threshold bin holding the mean mix reference foreground and background.

    Perturbations:
    - `"pixel_drop"`: in each image, `round(drop_fraction * H * W)` pixels
      drawn at random are set to `fill` in every channel.
    - `"background_swap"`: the images are replaced by `swapped_images`, the
      same objects on another class's background (e.g. the
      `"swapped_images"` entry of `keras_compattr.datasets.synthetic(...,
      background_swap=True)`).

    Args:
        explain_fn: callable `images -> (N, H, W)` maps, or an object with
            an `.explain(images)` method.
        images: `(N, H, W, C)` images, float in `[0, 1]` or integer `0..255`.
        perturbation: `"pixel_drop"` or `"background_swap"`.
        drop_fraction: float in `[0, 1]`, share of pixels dropped.
        swapped_images: images of the same shape as `images`; required by
            `"background_swap"`.
        seed: non-negative int, seed of the dropped pixels.
        fill: float or per-channel sequence in `[0, 1]`, the value of a
            dropped pixel.

    Returns:
        A Python float in `[0, 100]`.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import robustness
    >>> images = np.random.rand(2, 8, 8, 3).astype("float32")
    >>> fixed = np.zeros((2, 8, 8)); fixed[:, :4] = 1
    >>> robustness(lambda x: fixed, images)
    100.0

    Reference:
        COMET, [Zhang et al., 2024](https://arxiv.org/abs/2407.19308),
        robustness protocol (reference binarised at the map mean, 20% pixel
        drop or background swap, PxAP of
        [Choe et al., 2020](https://arxiv.org/abs/2001.07437)).
        Perturbed maps outside `[0, 1]` are min-max normalised per image,
        as `pxap` does.
    """
    if perturbation not in PERTURBATIONS:
        raise ValueError(
            f"`perturbation` must be one of {PERTURBATIONS}. "
            f"Received: perturbation={perturbation!r}"
        )
    images = check_images(images)
    if perturbation == "background_swap":
        if swapped_images is None:
            raise ValueError(
                "perturbation='background_swap' needs `swapped_images`: the "
                "same images on swapped backgrounds, e.g. "
                "`keras_compattr.datasets.synthetic(..., "
                "background_swap=True)['swapped_images']`."
            )
        perturbed = check_images(swapped_images, "swapped_images")
        if perturbed.shape != images.shape:
            raise ValueError(
                "`swapped_images` must have the shape of `images` "
                f"{images.shape}. Received shape {perturbed.shape}."
            )
    else:
        drop_fraction = check_number(drop_fraction, "drop_fraction", 0, 1)
        seed = check_number(seed, "seed", low=0, integer=True)
        fill = fill_values(fill, images.shape[-1])
        perturbed = _drop_pixels(images, drop_fraction, fill, seed)
    clean = _explain(explain_fn, images, images.shape[:3])
    reference = clean > clean.mean(axis=(1, 2), keepdims=True)
    if not reference.any():
        raise ValueError(
            "Every clean map is constant, so the binarised reference has no "
            "foreground and PxAP is undefined."
        )
    maps = _explain(explain_fn, perturbed, images.shape[:3])
    return pxap(maps, reference)


def _drop_pixels(images, drop_fraction, fill, seed):
    num, height, width, channels = images.shape
    count = int(round(drop_fraction * height * width))
    rng = np.random.default_rng(seed)
    dropped = np.zeros((num, height * width), bool)
    for i in range(num):
        dropped[i, rng.permutation(height * width)[:count]] = True
    dropped = dropped.reshape(num, height, width, 1)
    return np.where(dropped, fill, images).astype("float32")


def sensitivity(explain_fn, images, radius=0.02, samples=8, seed=0):
    """Max- and avg-sensitivity of maps to small uniform input noise.

    For each image `x` and each of `samples` draws of noise `d` uniform in
    `[-radius, radius]` (independent per pixel and channel), the relative
    change `||e(x + d) - e(x)||_F / ||e(x)||_F` of the map `e` is computed;
    max-sensitivity is its maximum over draws and avg-sensitivity its mean,
    each then averaged over images. Perturbed images are clipped to
    `[0, 1]`. Maps are used as `explain_fn` returns them (no
    normalisation). Images whose clean map is all zero are left out.

    Args:
        explain_fn: callable `images -> (N, H, W)` maps, or an object with
            an `.explain(images)` method.
        images: `(N, H, W, C)` images, float in `[0, 1]` or integer `0..255`.
        radius: float in `(0, 1]`, half-width of the uniform noise, in
            pixel units of `[0, 1]` images.
        samples: int, number of noise draws (one `explain_fn` call on all
            images per draw).
        seed: non-negative int, seed of the noise.

    Returns:
        A dict `{"max": float, "mean": float, "radius": float}`; lower is
        more robust, 0 for maps that do not change at all.

    Example:

    >>> import numpy as np
    >>> from keras_compattr.metrics import sensitivity
    >>> images = np.random.rand(2, 8, 8, 3).astype("float32")
    >>> sensitivity(lambda x: np.ones(x.shape[:3]), images)["max"]
    0.0

    Reference:
        [Yeh et al., 2019](https://arxiv.org/abs/1901.09392), as in Quantus
        `MaxSensitivity` / `AvgSensitivity` (uniform noise, Frobenius norms,
        numerator the map difference, denominator the clean map's norm).
        Deviations: Quantus' default noise bound is 0.2 with 200 samples and
        it does not clip; here `radius=0.02`, 8 samples and clipping to the
        valid pixel range.
    """
    radius = check_number(radius, "radius", 0.0, 1.0, low_open=True)
    samples = check_number(samples, "samples", low=1, integer=True)
    seed = check_number(seed, "seed", low=0, integer=True)
    images = check_images(images)
    clean = _explain(explain_fn, images, images.shape[:3])
    norms = np.sqrt(np.sum(clean.astype("float64") ** 2, axis=(1, 2)))
    valid = norms > 0
    if not valid.any():
        raise ValueError(
            "Every clean map is zero: relative sensitivity is undefined."
        )
    rng = np.random.default_rng(seed)
    ratios = np.zeros((len(images), samples))
    for sample in range(samples):
        noise = rng.uniform(-radius, radius, images.shape).astype("float32")
        noisy = np.clip(images + noise, 0.0, 1.0)
        maps = _explain(explain_fn, noisy, images.shape[:3])
        difference = (maps - clean).astype("float64")
        change = np.sqrt(np.sum(difference**2, axis=(1, 2)))
        ratios[:, sample] = np.divide(
            change, norms, out=np.zeros_like(change), where=valid
        )
    ratios = ratios[valid]
    return {
        "max": float(ratios.max(axis=1).mean()),
        "mean": float(ratios.mean(axis=1).mean()),
        "radius": radius,
    }
