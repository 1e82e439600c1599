import keras
import numpy as np
import pytest

from keras_compattr import datasets
from keras_compattr.metrics import deletion_accuracy
from keras_compattr.metrics import deletion_auc
from keras_compattr.metrics import insertion_auc
from keras_compattr.metrics import keep_accuracy
from keras_compattr.metrics import pointing_game
from keras_compattr.metrics import robustness
from keras_compattr.metrics import sensitivity
from keras_compattr.metrics import sparseness
from tests.region_model import build_region_model
from tests.region_model import region_images


def _softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def _maps():
    """Region images, their ground truth, a faithful and an inverted map."""
    images, labels, gt = region_images()
    # Evidence first; small noise orders the pixels inside each level.
    good = gt + 0.01 * np.random.default_rng(1).uniform(size=gt.shape)
    return images, labels, gt, good, 1.0 - good


@pytest.fixture(scope="module")
def region():
    return (build_region_model(), *_maps())


# === Pointing game ===


def test_pointing_game_perfect_inverted_and_ties():
    _, _, gt, good, inverted = _maps()
    assert pointing_game(good, gt) == 1.0
    assert pointing_game(inverted, gt) == 0.0
    # A constant map ties everywhere: expected hit is the foreground share.
    assert pointing_game(np.ones_like(gt), gt) == pytest.approx(gt.mean())
    assert pointing_game(good[..., None], gt) == 1.0


def test_pointing_game_validates_inputs():
    _, _, gt, good, _ = _maps()
    with pytest.raises(ValueError, match="same shape"):
        pointing_game(good[:, :8], gt)
    empty = gt.copy()
    empty[2] = 0
    with pytest.raises(ValueError, match=r"images \[2\]"):
        pointing_game(good, empty)


def test_metrics_refuse_a_map_as_the_ground_truth():
    from keras_compattr.metrics import attribution_mass
    from keras_compattr.metrics import pxap

    _, _, gt, good, _ = _maps()
    soft = np.clip(good + 0.1 * gt, 0.0, 1.0) * 0.9  # a map in (0, 1)
    for metric in (pointing_game, pxap, attribution_mass):
        # Swapped arguments: the map where the ground truth goes.
        with pytest.raises(ValueError, match="were they swapped"):
            metric(gt, soft)
    # Boolean and 8-bit (0 / 255) ground truth are masks too.
    assert pointing_game(good, gt.astype(bool)) == 1.0
    assert pointing_game(good, (gt * 255).astype("uint8")) == 1.0


# === Deletion / insertion ===


def test_deletion_and_insertion_rank_faithful_maps(region):
    model, images, labels, _, good, inverted = region
    kwargs = dict(steps=16, fill=0.0, batch_size=4)
    good_deletion = deletion_auc(model, images, labels, good, **kwargs)
    bad_deletion = deletion_auc(model, images, labels, inverted, **kwargs)
    random = np.random.default_rng(2).uniform(size=good.shape)
    random_deletion = deletion_auc(model, images, labels, random, **kwargs)
    assert good_deletion < 0.15
    assert bad_deletion > 0.8
    assert good_deletion < random_deletion < bad_deletion
    good_insertion = insertion_auc(model, images, labels, good, **kwargs)
    bad_insertion = insertion_auc(model, images, labels, inverted, **kwargs)
    assert good_insertion > 0.8
    assert bad_insertion < 0.15


def test_curves_have_steps_plus_one_points_and_right_ends(region):
    model, images, labels, _, good, _ = region
    fill = (0.2, 0.4, 0.6)
    auc, curves = deletion_auc(
        model, images, labels, good, steps=8, fill=fill, return_curves=True
    )
    assert curves.shape == (len(images), 9)
    full = _softmax(keras.ops.convert_to_numpy(model(images)))[:, 0]
    blank = np.broadcast_to(np.float32(fill), images.shape)
    empty = _softmax(keras.ops.convert_to_numpy(model(blank)))[:, 0]
    np.testing.assert_allclose(curves[:, 0], full, atol=1e-5)
    np.testing.assert_allclose(curves[:, -1], empty, atol=1e-5)
    # Trapezoid over x in [0, 1] (8 steps of 32 of the 256 pixels).
    expected = (0.5 * (curves[:, 1:] + curves[:, :-1]) / 8).sum(1).mean()
    assert auc == pytest.approx(expected, abs=1e-6)
    _, curves = insertion_auc(
        model, images, labels, good, steps=8, fill=fill, return_curves=True
    )
    assert curves.shape == (len(images), 9)
    np.testing.assert_allclose(curves[:, 0], empty, atol=1e-5)
    np.testing.assert_allclose(curves[:, -1], full, atol=1e-5)


def test_probability_outputs_are_used_as_they_are(region):
    model, images, labels, _, good, _ = region
    probabilities = build_region_model(softmax=True)
    from_logits = deletion_auc(model, images, labels, good, steps=8)
    from_probs = deletion_auc(probabilities, images, labels, good, steps=8)
    assert from_probs == pytest.approx(from_logits, abs=1e-5)
    # `labels=None` uses the prediction, here class 0 everywhere.
    assert deletion_auc(model, images, None, good, steps=8) == pytest.approx(
        from_logits
    )
    # One-hot labels and uint8 images are accepted.
    one_hot = np.eye(2)[labels]
    as_uint8 = np.round(images * 255).astype("uint8")
    value = deletion_auc(model, as_uint8, one_hot, good, steps=8)
    assert value == pytest.approx(from_logits, abs=0.02)


class _BatchRecorder(keras.Model):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.batch_sizes = []

    def call(self, inputs, training=False):
        self.batch_sizes.append(int(inputs.shape[0]))
        return self.inner(inputs, training=training)


def test_perturbed_images_are_evaluated_in_bounded_batches(region):
    model, images, labels, _, good, _ = region
    recorder = _BatchRecorder(model)
    images = np.concatenate([images, images[:1]])
    labels = np.concatenate([labels, labels[:1]])
    good = np.concatenate([good, good[:1]])
    deletion_auc(recorder, images, labels, good, steps=5, batch_size=3)
    # A subclassed model has no static output shape: one image is run
    # first to count its classes (and check the labels against them).
    assert recorder.batch_sizes[0] == 1
    # 7 images in batches of 3, 3 and 1, each evaluated at 6 steps.
    assert max(recorder.batch_sizes) == 3
    assert len(recorder.batch_sizes[1:]) == 3 * 6


def test_fidelity_validates_inputs(region):
    model, images, labels, _, good, _ = region
    with pytest.raises(ValueError, match="attributions"):
        deletion_auc(model, images, labels, good[:, :8])
    with pytest.raises(ValueError, match="attributions"):
        insertion_auc(model, images, labels, good[:3])
    with pytest.raises(ValueError, match="labels"):
        deletion_auc(model, images, labels[:2], good)
    with pytest.raises(ValueError, match="steps"):
        deletion_auc(model, images, labels, good, steps=0)
    with pytest.raises(ValueError, match="fill"):
        deletion_auc(model, images, labels, good, fill=(0.1, 0.2))
    with pytest.raises(ValueError, match="fraction"):
        deletion_accuracy(model, images, labels, good, fraction=1.5)
    with pytest.raises(ValueError, match="finite"):
        keep_accuracy(model, images, labels, good * np.nan)


def test_deletion_and_keep_accuracy(region):
    model, images, labels, gt, good, inverted = region
    area = float(gt[0].mean())
    kwargs = dict(fraction=area, fill=0.0)
    assert deletion_accuracy(model, images, labels, good, **kwargs) == 0.0
    assert deletion_accuracy(model, images, labels, inverted, **kwargs) == 1.0
    assert keep_accuracy(model, images, labels, good, fill=0.0) == 1.0
    assert keep_accuracy(model, images, labels, inverted, fill=0.0) == 0.0
    # Removing nothing keeps the clean accuracy.
    assert deletion_accuracy(model, images, labels, good, fraction=0.0) == 1.0


# === Robustness and sensitivity ===


def _brightness(images):
    return np.asarray(images).mean(-1)


def test_robustness_pixel_drop():
    images, _, gt = region_images()
    # A map that ignores the image is perfectly robust.
    assert robustness(lambda x: gt, images) == pytest.approx(100.0)
    # A graded map scored against itself binarised is close to, not
    # exactly, 100: pixels in the threshold bin of the mean mix.
    unmoved = robustness(_brightness, images, drop_fraction=0.0)
    assert 95.0 < unmoved < 100.0
    # A map that follows the pixels moves when pixels are dropped.
    moved = robustness(_brightness, images, drop_fraction=0.2)
    assert moved < unmoved - 2.0
    assert robustness(_brightness, images, drop_fraction=0.6) < moved


class _Explainer:
    def explain(self, images):
        return _brightness(images)


def test_robustness_background_swap():
    data = datasets.synthetic(
        num_images=4,
        image_size=24,
        num_classes=2,
        background_swap=True,
        seed=0,
    )
    images = data["images"]
    same = robustness(
        _Explainer(),
        images,
        perturbation="background_swap",
        swapped_images=images,
    )
    assert same > 95.0
    swapped = robustness(
        _Explainer(),
        images,
        perturbation="background_swap",
        swapped_images=data["swapped_images"],
    )
    assert swapped < same - 5.0
    with pytest.raises(ValueError, match="swapped_images"):
        robustness(_brightness, images, perturbation="background_swap")
    with pytest.raises(ValueError, match="swapped_images"):
        robustness(
            _brightness,
            images,
            perturbation="background_swap",
            swapped_images=images[:2],
        )
    with pytest.raises(ValueError, match="perturbation"):
        robustness(_brightness, images, perturbation="blur")
    with pytest.raises(ValueError, match="constant"):
        robustness(lambda x: np.ones(x.shape[:3]), images)
    with pytest.raises(ValueError, match="shape"):
        robustness(lambda x: np.ones((1, 4, 4)), images)


def test_sensitivity():
    images, _, gt = region_images(num_images=3)
    fixed = sensitivity(lambda x: gt, images)
    assert fixed == {"max": 0.0, "mean": 0.0, "radius": 0.02}
    small = sensitivity(_brightness, images, radius=0.01, samples=4)
    large = sensitivity(_brightness, images, radius=0.1, samples=4)
    assert 0.0 < small["mean"] <= small["max"]
    assert large["mean"] > 3 * small["mean"]
    # Same seed, same noise.
    again = sensitivity(_brightness, images, radius=0.01, samples=4)
    assert again == small
    with pytest.raises(ValueError, match="radius"):
        sensitivity(_brightness, images, radius=0.0)
    with pytest.raises(ValueError, match="zero"):
        sensitivity(lambda x: np.zeros(x.shape[:3]), images)


# === Sparseness ===


def test_sparseness_gini():
    one_hot = np.zeros((2, 16, 16), "float32")
    one_hot[:, 3, 5] = 2.0
    assert sparseness(one_hot) == pytest.approx(1.0 - 1.0 / 256)
    assert sparseness(np.full((2, 16, 16), 0.3)) == pytest.approx(0.0)
    # Absolute values: the sign does not matter.
    assert sparseness(-one_hot) == pytest.approx(sparseness(one_hot))
    assert sparseness(np.zeros((1, 8, 8))) == 0.0
    # Half the pixels at one value: Gini is one half.
    half = np.zeros((1, 8, 8))
    half[0, :4] = 1.0
    assert sparseness(half) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        sparseness(np.zeros((1, 2, 8, 8)))
