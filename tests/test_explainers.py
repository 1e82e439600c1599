import keras
import numpy as np
import pytest

from keras_compattr.explainers import RISE
from keras_compattr.explainers import GradCAM
from keras_compattr.explainers import IntegratedGradients
from keras_compattr.explainers import Saliency
from keras_compattr.metrics import attribution_mass
from keras_compattr.metrics import pxap
from keras_compattr.metrics import robustness
from keras_compattr.metrics import sensitivity
from keras_compattr.models import build_classifier
from tests.conftest import NUM_CLASSES
from tests.conftest import SHAPE
from tests.region_model import build_region_model
from tests.region_model import region_images


def _explainers(model):
    return {
        "grad_cam": GradCAM(model),
        "saliency": Saliency(model),
        "integrated_gradients": IntegratedGradients(model, steps=8),
        "rise": RISE(model, num_masks=64, cell_size=8),
    }


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    # 16 channels, not the 4 of `tiny_classifier`: with TensorFlow's
    # oneDNN CPU kernels, the gradient of a stride-2 1x1 convolution with
    # fewer than 16 input channels corrupts the heap for some batch sizes.
    return build_classifier(
        SHAPE, NUM_CLASSES, widths=(16, 16), blocks_per_stage=1
    )


@pytest.mark.parametrize(
    "name", ["grad_cam", "saliency", "integrated_gradients", "rise"]
)
def test_maps_have_image_shape_and_are_finite(classifier, name):
    images = np.random.default_rng(0).uniform(0, 1, (3,) + SHAPE)
    explainer = _explainers(classifier)[name]
    # Uneven batches; for RISE the batch holds masked copies of one image.
    maps = explainer.explain(images, batch_size=32 if name == "rise" else 2)
    assert maps.shape == (3,) + SHAPE[:2]
    assert maps.dtype == np.float32
    assert np.all(np.isfinite(maps))
    if name != "integrated_gradients":
        assert maps.min() >= 0.0 and maps.max() <= 1.0
    # `labels=None` explains the predicted class.
    predicted = keras.ops.convert_to_numpy(classifier(images)).argmax(-1)
    np.testing.assert_allclose(
        explainer.explain(images, labels=predicted), maps, atol=1e-5
    )
    # Integer images are read as 0..255.
    as_uint8 = np.round(images * 255).astype("uint8")
    assert explainer.explain(as_uint8, labels=predicted).shape == maps.shape


@pytest.fixture(scope="module")
def region():
    images, labels, gt = region_images(num_images=4)
    return build_region_model(), images, labels, gt


@pytest.mark.parametrize(
    "explainer, minimum",
    [
        (lambda m: GradCAM(m), 0.99),
        (lambda m: Saliency(m), 0.99),
        (lambda m: IntegratedGradients(m, steps=4), 0.99),
        # RISE's background is noisy, not zero: about 2.5x the area.
        (lambda m: RISE(m, num_masks=256, cell_size=4, fill=0.0), 0.3),
    ],
    ids=["grad_cam", "saliency", "integrated_gradients", "rise"],
)
def test_maps_put_their_mass_on_the_evidence(region, explainer, minimum):
    model, images, labels, gt = region
    maps = explainer(model).explain(images, labels, batch_size=64)
    share = attribution_mass(maps, gt)
    area = float(gt.mean())
    assert share > minimum
    # A map that ignores the evidence gets about the region's area.
    assert attribution_mass(np.ones_like(maps), gt) == pytest.approx(area)
    assert share > 2 * area
    # Every evidence pixel ranks above the background.
    assert pxap(maps, gt) > 90.0


def test_grad_cam_finds_the_last_four_dimensional_layer(classifier):
    assert GradCAM(classifier).layer.name == "stage1_0_out"
    region_model = build_region_model()
    assert GradCAM(region_model).layer.name == "region_gate"
    named = GradCAM(region_model, layer="channel_mean")
    assert named.layer.name == "channel_mean"


def test_grad_cam_rejects_bad_layers(classifier):
    # Inside a residual block: the output also depends on the shortcut.
    with pytest.raises(ValueError, match="cannot be split"):
        GradCAM(classifier, layer="stage1_0_1_conv")
    with pytest.raises(ValueError, match="4-D"):
        GradCAM(classifier, layer="logits")
    flat = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(2)], name="flat"
    )
    with pytest.raises(ValueError, match="no layer with a 4-D output"):
        GradCAM(flat)


def test_integrated_gradients_completeness(region, classifier):
    model, images, labels, _ = region
    baseline = np.full_like(images, 0.5)
    maps = IntegratedGradients(model, steps=4).explain(images, labels)
    logits = keras.ops.convert_to_numpy(model(images))[:, 0]
    base = keras.ops.convert_to_numpy(model(baseline))[:, 0]
    # Exact for a model linear in its input.
    np.testing.assert_allclose(maps.sum((1, 2)), logits - base, atol=1e-3)
    # Approximate for a non-linear network.
    images = np.random.default_rng(0).uniform(0, 1, (2,) + SHAPE)
    labels = np.array([0, 2])
    maps = IntegratedGradients(classifier, steps=64).explain(images, labels)
    outputs = keras.ops.convert_to_numpy(classifier(images))
    base = keras.ops.convert_to_numpy(classifier(np.full_like(images, 0.5)))
    gap = outputs[[0, 1], labels] - base[[0, 1], labels]
    np.testing.assert_allclose(
        maps.sum((1, 2)), gap, atol=0.05 * np.abs(gap).max() + 1e-3
    )


def test_rise_is_deterministic_for_a_seed(region):
    model, images, labels, _ = region
    first = RISE(model, num_masks=32, cell_size=4, seed=3).explain(images)
    again = RISE(model, num_masks=32, cell_size=4, seed=3).explain(images)
    other = RISE(model, num_masks=32, cell_size=4, seed=4).explain(images)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_explainers_validate_inputs(region):
    model, images, labels, _ = region
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        Saliency(model).explain(images[0])
    with pytest.raises(ValueError, match="labels"):
        Saliency(model).explain(images, labels[:2])
    with pytest.raises(ValueError, match="batch_size"):
        Saliency(model).explain(images, batch_size=0)
    with pytest.raises(TypeError, match="Keras model"):
        Saliency(lambda x: x)
    with pytest.raises(ValueError, match="steps"):
        IntegratedGradients(model, steps=0)
    with pytest.raises(ValueError, match="probability"):
        RISE(model, probability=1.0)


def test_explainers_plug_into_robustness_and_sensitivity(region):
    model, images, _, _ = region
    explainer = GradCAM(model)
    # Dropping 20% of the pixels leaves the evidence region mostly intact.
    assert robustness(explainer, images) > 60.0
    result = sensitivity(Saliency(model), images, samples=2)
    assert np.isfinite(result["max"]) and result["max"] >= result["mean"]


# === Grad-CAM with nested models ===


def _nested_and_flat_classifiers():
    """A classifier calling a functional backbone, and the same, flat.

    Both call the same layers (shared weights). The flat model calls them
    first, so their `output` is the flat graph's; the backbone's graph is
    the one Grad-CAM must open.
    """
    keras.utils.set_random_seed(0)
    conv1 = keras.layers.Conv2D(16, 3, padding="same", name="conv1")
    relu = keras.layers.ReLU(name="relu")
    conv2 = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv2")
    rescale = keras.layers.Rescaling(2.0, -1.0, name="rescale")
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    dense = keras.layers.Dense(NUM_CLASSES, name="logits")

    inputs = keras.Input(SHAPE)
    x = conv2(relu(conv1(rescale(inputs))))
    flat = keras.Model(inputs, dense(pool(x)), name="flat")

    backbone_inputs = keras.Input(SHAPE)
    backbone = keras.Model(
        backbone_inputs, conv2(relu(conv1(backbone_inputs))), name="backbone"
    )
    inputs = keras.Input(SHAPE)
    x = backbone(rescale(inputs), training=False)
    nested = keras.Model(inputs, dense(pool(x)), name="nested")
    return nested, flat, backbone


def test_grad_cam_opens_a_nested_functional_backbone():
    nested, flat, backbone = _nested_and_flat_classifiers()
    images = np.random.default_rng(0).uniform(0, 1, (3,) + SHAPE)
    labels = np.array([0, 1, 2])
    # The default is the backbone's last feature map.
    grad_cam = GradCAM(nested)
    assert grad_cam.layer is backbone.get_layer("conv2")
    expected = GradCAM(flat).explain(images, labels)
    assert expected.max() == pytest.approx(1.0)
    np.testing.assert_allclose(
        grad_cam.explain(images, labels), expected, atol=1e-5
    )
    # The backbone by name stands for its output; inner layers by name.
    np.testing.assert_allclose(
        GradCAM(nested, layer="backbone").explain(images, labels),
        expected,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        GradCAM(nested, layer="relu").explain(images, labels),
        GradCAM(flat, layer="relu").explain(images, labels),
        atol=1e-5,
    )
    # A Sequential classifier around the backbone.
    sequential = keras.Sequential(
        [keras.Input(SHAPE)] + nested.layers[1:], name="sequential"
    )
    np.testing.assert_allclose(
        GradCAM(sequential).explain(images, labels), expected, atol=1e-5
    )


def test_grad_cam_rejects_a_path_around_a_nested_backbone():
    _, _, backbone = _nested_and_flat_classifiers()
    inputs = keras.Input(SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()
    x = keras.layers.Concatenate()([pooled(backbone(inputs)), pooled(inputs)])
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(x))
    with pytest.raises(ValueError, match="must go through the nested model"):
        GradCAM(model)
    other = keras.layers.Conv2D(2, 3)
    other(keras.Input(SHAPE))
    with pytest.raises(ValueError, match="not a layer of model"):
        GradCAM(model, layer=other)


def test_grad_cam_explains_a_keras_hub_image_classifier():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    # KerasHub's ResNet needs 64 filters in the stem and first stack.
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
    )
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=SHAPE[:2], scale=1.0 / 127.5, offset=-1.0
    )
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone,
        num_classes=NUM_CLASSES,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(
            image_converter=converter
        ),
    )
    grad_cam = GradCAM(classifier)
    # The backbone's last feature map, behind the classifier's converter.
    assert grad_cam.layer is backbone.layers[-1]
    images = np.random.default_rng(0).uniform(0, 1, (3,) + SHAPE)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(grad_cam.model(images, training=False)),
        keras.ops.convert_to_numpy(
            classifier(converter(images * 255.0), training=False)
        ),
        atol=1e-5,
    )
    maps = grad_cam.explain(images, labels=np.array([0, 1, 2]))
    assert maps.shape == (3,) + SHAPE[:2]
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert maps.max() > 0.0
    # The backbone by name stands for its output, the same feature map.
    by_name = GradCAM(classifier, layer=backbone.name)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(by_name.features(images, training=False)),
        keras.ops.convert_to_numpy(grad_cam.features(images, training=False)),
        atol=1e-5,
    )
