"""Tests of the data set loaders and the TFDS builder, all offline.

TFDS data sets are replaced by `tfds.testing.mock_data` (random examples
built from each data set's code and metadata, no download); image folders
are written to `tmp_path`.
"""

import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_compattr.datasets import CompattrSyntheticConfig
from keras_compattr.datasets import DatasetNotAvailableError
from keras_compattr.datasets import load
from keras_compattr.datasets import synthetic
from keras_compattr.datasets import tfds_sets


def _batches(ds):
    return [tuple(np.asarray(t) for t in batch) for batch in ds]


def _check_batch(batch, size, with_masks=False):
    images, labels = batch[:2]
    assert images.dtype == np.float32 and images.shape[1:] == (size, size, 3)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == np.int32 and labels.shape == images.shape[:1]
    assert len(batch) == (3 if with_masks else 2)
    if with_masks:
        masks = batch[2]
        assert masks.dtype == np.float32
        assert masks.shape == images.shape[:3]
        assert set(np.unique(masks)) <= {0.0, 1.0}


def _fixed_examples(examples):
    """An `as_dataset_fn` for `mock_data` that yields given examples."""

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        del self, split, decoders, read_config, kwargs
        return tf.data.Dataset.from_tensor_slices(examples)

    return as_dataset


# === Synthetic data ===


def test_synthetic_masks_and_info():
    ds, info = load(
        "synthetic",
        split="test",
        image_size=32,
        batch_size=8,
        with_masks=True,
        num_images=12,
        return_info=True,
    )
    batches = _batches(ds)
    assert [len(b[0]) for b in batches] == [8, 4]
    _check_batch(batches[0], 32, with_masks=True)
    assert info["num_classes"] == 4 and info["num_examples"] == 12
    assert info["class_names"] == ["glyph_0", "glyph_1", "glyph_2", "glyph_3"]
    # The test split is not shuffled and uses seed + 1.
    data = synthetic(num_images=12, image_size=32, seed=1)
    np.testing.assert_allclose(batches[0][0], data["images"][:8])
    np.testing.assert_array_equal(batches[0][2], data["masks"][:8])


def test_synthetic_resized_above_native_size():
    (images, labels, masks), *_ = _batches(
        load(
            "synthetic/one_part",
            image_size=80,
            batch_size=4,
            with_masks=True,
            num_images=4,
        )
    )
    _check_batch((images, labels, masks), 80, with_masks=True)
    assert 0.0 < masks.mean() < 0.5


def test_train_split_is_shuffled_every_epoch():
    ds = load("synthetic", image_size=32, batch_size=16, num_images=16)
    first, second = (_batches(ds)[0][1] for _ in range(2))
    assert sorted(first) == sorted(second)
    assert not np.array_equal(first, second)
    data = synthetic(num_images=16, image_size=32, seed=0)
    assert not np.array_equal(first, data["labels"])


# === TFDS data sets (mocked) ===


@pytest.mark.parametrize("name", ["cifar10", "stl10", "imagenette"])
def test_tfds_without_masks(name):
    with tfds.testing.mock_data(num_examples=5):
        ds, info = load(
            name, image_size=16, batch_size=4, download=True, return_info=True
        )
        batches = _batches(ds)
    assert [len(b[0]) for b in batches] == [4, 1]
    _check_batch(batches[0], 16)
    assert info["num_classes"] == 10 and not info["has_masks"]
    with pytest.raises(ValueError, match="has no masks"):
        load(name, with_masks=True, download=False)


def test_oxford_pet_masks_from_trimap():
    # Trimap: 1 pet, 2 background, 3 border; border counts as foreground.
    trimap = np.full((2, 8, 8, 1), 2, np.uint8)
    trimap[:, 2:6, 2:6] = 3
    trimap[:, 3:5, 3:5] = 1
    examples = {
        "image": np.full((2, 8, 8, 3), 255, np.uint8),
        "label": np.array([5, 36], np.int64),
        "segmentation_mask": trimap,
    }
    with tfds.testing.mock_data(as_dataset_fn=_fixed_examples(examples)):
        ds, info = load(
            "oxford_iiit_pet",
            split="test",
            image_size=8,
            batch_size=2,
            with_masks=True,
            download=True,
            return_info=True,
        )
        images, labels, masks = _batches(ds)[0]
    np.testing.assert_array_equal(labels, [5, 36])
    np.testing.assert_allclose(images, 1.0)
    np.testing.assert_array_equal(masks[0], trimap[0, ..., 0] != 2)
    assert info["num_classes"] == 37 and info["class_names"][0] == "Abyssinian"


def test_oxford_pet_random_mock_masks_are_binary():
    with tfds.testing.mock_data(num_examples=3):
        ds = load(
            "oxford_iiit_pet",
            image_size=24,
            batch_size=3,
            with_masks=True,
            augment=True,
            download=True,
        )
        _check_batch(_batches(ds)[0], 24, with_masks=True)


def test_caltech_birds_masks_threshold_the_annotators_average():
    segmentation = np.zeros((1, 4, 4, 1), np.uint8)
    segmentation[0, :2] = 127
    segmentation[0, 2:] = 128
    examples = {
        "image": np.zeros((1, 4, 4, 3), np.uint8),
        "label": np.array([3], np.int64),
        "segmentation_mask": segmentation,
        "bbox": np.array([[0.0, 0.0, 1.0, 1.0]], np.float32),
    }
    with tfds.testing.mock_data(as_dataset_fn=_fixed_examples(examples)):
        ds = load(
            "caltech_birds2011",
            image_size=4,
            with_masks=True,
            shuffle=False,
            download=True,
        )
        _, _, masks = _batches(ds)[0]
    np.testing.assert_array_equal(masks[0, :2], 0.0)
    np.testing.assert_array_equal(masks[0, 2:], 1.0)


def test_box_mask():
    box = tf.constant([0.25, 0.5, 0.75, 1.0])
    mask = np.asarray(tfds_sets.box_mask(box, 4))
    expected = np.zeros((4, 4), np.uint8)
    expected[1:3, 2:] = 1
    np.testing.assert_array_equal(mask, expected)


# === Image folders ===


def _write_folder(root, sizes=(32, 40, 24), classes=("cat", "dog")):
    """Writes 3 PNGs per class; returns the images' red channels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    red = {}
    for name in classes:
        (root / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            blob = np.zeros((size, size), bool)
            blob[size // 4 : size // 2, size // 3 :] = True
            image[..., 0] = np.where(blob, 255, 0)
            Image.fromarray(image).save(root / name / f"img{i}.png")
            red[f"{name}/img{i}"] = blob
    return red


def test_folder_images_labels_and_info(tmp_path):
    _write_folder(tmp_path / "train")
    ds, info = load(
        f"folder:{tmp_path}",
        image_size=16,
        batch_size=6,
        return_info=True,
        holdout=0,
    )
    (batch,) = _batches(ds)
    _check_batch(batch, 16)
    assert sorted(batch[1]) == [0, 0, 0, 1, 1, 1]
    assert info["class_names"] == ["cat", "dog"]
    assert info["num_examples"] == 6 and not info["has_masks"]
    with pytest.raises(ValueError, match="no 'test' split"):
        load(f"folder:{tmp_path}", split="test", holdout=0)
    with pytest.raises(ValueError, match="mask_dir"):
        load(f"folder:{tmp_path}", with_masks=True)


@pytest.mark.parametrize("mask_format", ["npy", "png"])
def test_folder_masks(tmp_path, mask_format):
    from PIL import Image

    red = _write_folder(tmp_path / "images")
    for key, blob in red.items():
        path = tmp_path / "masks" / f"{key}.{mask_format}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if mask_format == "npy":
            np.save(path, blob.astype(np.uint8))
        else:
            Image.fromarray(blob.astype(np.uint8) * 255).save(path)
    ds = load(
        f"folder:{tmp_path / 'images'}",
        image_size=32,
        batch_size=6,
        with_masks=True,
        shuffle=False,
        mask_dir=str(tmp_path / "masks"),
        holdout=0,
    )
    (batch,) = _batches(ds)
    _check_batch(batch, 32, with_masks=True)
    # Unshuffled, sorted by class then file: the first image is 32 px.
    np.testing.assert_array_equal(batch[2][0], red["cat/img0"])


def test_augmentation_moves_images_and_masks_together(tmp_path):
    red = _write_folder(tmp_path / "images", sizes=(32, 32, 32))
    for key, blob in red.items():
        (tmp_path / "masks" / key).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "masks" / f"{key}.npy", blob)

    def run(seed):
        ds = load(
            f"folder:{tmp_path / 'images'}",
            image_size=32,
            batch_size=6,
            with_masks=True,
            augment=True,
            shuffle=False,
            seed=seed,
            mask_dir=str(tmp_path / "masks"),
            holdout=0,
        )
        return _batches(ds)[0], _batches(ds)[0]

    (images, labels, masks), second_epoch = run(seed=0)
    _check_batch((images, labels, masks), 32, with_masks=True)
    originals = np.stack([red[k] for k in sorted(red)])
    assert np.mean(masks != originals) > 0.02  # The masks moved...
    # ...and the images' red channel moved with them. Bilinear (image) and
    # nearest (mask) rotation differ only at a few edge pixels.
    agreement = np.mean((images[..., 0] > 0.5) == (masks > 0.5), axis=(1, 2))
    assert agreement.min() > 0.99
    # Seeded: the same seed repeats; each epoch draws new parameters.
    again, _ = run(seed=0)
    np.testing.assert_array_equal(again[0], images)
    assert not np.array_equal(second_epoch[0], images)


def _write_numbered_folder(root, per_class=10, classes=("cat", "dog")):
    """Writes 8x8 PNGs whose pixel value identifies each image."""
    from PIL import Image

    values = {}
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = 10 * i + c
            image = np.full((8, 8, 3), value, np.uint8)
            Image.fromarray(image).save(root / name / f"img{i:02d}.png")
            values[value] = f"{name}/img{i:02d}.png"
    return values


def _image_ids(name, split, **kwargs):
    ds, info = load(
        name, split=split, image_size=8, batch_size=None, return_info=True,
        **kwargs,
    )  # fmt: skip
    ids = [int(round(float(np.asarray(x)[0, 0, 0]) * 255)) for x, _ in ds]
    assert len(ids) == info["num_examples"]
    return ids, info


def test_folder_without_splits_holds_out_validation_and_test(tmp_path):
    values = _write_numbered_folder(tmp_path)
    name = f"folder:{tmp_path}"
    train, train_info = _image_ids(name, "train", seed=3)
    val, val_info = _image_ids(name, "val")
    test, test_info = _image_ids(name, "test")
    # 10% of each class for validation, 10% for test, disjoint.
    assert (len(train), len(val), len(test)) == (16, 2, 2)
    assert sorted(train + val + test) == sorted(values)
    assert not set(train) & set(val) and not set(train) & set(test)
    assert not set(val) & set(test)
    assert sorted(v % 10 for v in test) == [0, 1]  # one per class
    assert not train_info["held_out"]
    assert val_info["held_out"] and test_info["held_out"]
    # The same split whatever the seed, and "validation" is "val".
    assert sorted(_image_ids(name, "train", seed=7)[0]) == sorted(train)
    assert _image_ids(name, "validation")[0] == val
    # A larger share, and another split seed, give another split.
    assert len(_image_ids(name, "test", holdout=0.3)[0]) == 6
    assert _image_ids(name, "test", split_seed=1)[0] != test
    with pytest.raises(ValueError, match="not a split name"):
        load(name, split="extra")
    with pytest.raises(ValueError, match="holdout"):
        load(name, holdout=0.5)


def test_folder_split_folders_are_kept_and_missing_ones_held_out(tmp_path):
    _write_numbered_folder(tmp_path / "train")
    _write_numbered_folder(tmp_path / "test", per_class=3)
    name = f"folder:{tmp_path}"
    train, _ = _image_ids(name, "train")
    val, val_info = _image_ids(name, "val")
    test, test_info = _image_ids(name, "test")
    # Validation is held out of train/, test/ is read as it is.
    assert (len(train), len(val), len(test)) == (18, 2, 6)
    assert not set(train) & set(val)
    assert val_info["held_out"] and not test_info["held_out"]
    # With a validation folder, train/ stays whole and test is not made up.
    (tmp_path / "test").rename(tmp_path / "val")
    assert len(_image_ids(name, "train")[0]) == 20
    assert not _image_ids(name, "val")[1]["held_out"]
    with pytest.raises(ValueError, match="no 'test' split"):
        load(name, split="test")


def test_folder_too_small_to_hold_out(tmp_path):
    _write_numbered_folder(tmp_path, per_class=2)
    # Two images per class: both stay for training.
    assert len(_image_ids(f"folder:{tmp_path}", "train")[0]) == 4
    with pytest.raises(ValueError, match="too few images"):
        load(f"folder:{tmp_path}", split="test")


def _write_bad_files(root):
    """Three kinds of files that do not decode, in the classes of `root`."""
    with open(root / "cat" / "notes.png", "w") as f:
        f.write("a text file saved as .png")
    with open(root / "dog" / "img0.png", "rb") as f:
        whole = f.read()
    (root / "dog" / "truncated.png").write_bytes(whole[: len(whole) // 3])
    (root / "dog" / "empty.jpg").write_bytes(b"")


def test_folder_files_that_do_not_decode_are_named_or_left_out(tmp_path):
    from keras_compattr.datasets.checks import BadImageError

    _write_folder(tmp_path)
    _write_bad_files(tmp_path)
    with pytest.raises(BadImageError) as error:
        load(f"folder:{tmp_path}", image_size=16, holdout=0)
    message = str(error.value)
    assert str(tmp_path / "cat" / "notes.png") in message
    assert "2 more" in message and "skip_bad_images=True" in message
    assert "--skip-bad-images" in error.value.cli_message
    with pytest.warns(UserWarning, match="Left out 3 image file"):
        ds, info = load(
            f"folder:{tmp_path}",
            image_size=16,
            batch_size=8,
            holdout=0,
            skip_bad_images=True,
            return_info=True,
        )
    assert sorted(info["skipped_images"]) == [
        "cat/notes.png",
        "dog/empty.jpg",
        "dog/truncated.png",
    ]
    # The dataset reads to the end: the bad files are out of it.
    (batch,) = _batches(ds)
    assert len(batch[1]) == info["num_examples"] == 6


def test_folder_reads_webp_and_reports_other_file_types(tmp_path):
    from PIL import Image

    _write_folder(tmp_path)
    image = np.zeros((20, 20, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "cat" / "extra.webp")
    Image.fromarray(image).save(tmp_path / "dog" / "scan.tiff")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(UserWarning, match=r"1 file\(s\).*\(\.tiff\)"):
        _, info = load(
            f"folder:{tmp_path}", image_size=16, holdout=0, return_info=True
        )
    assert info["num_examples"] == 7  # The WebP image is read.
    assert info["other_files"] == ["dog/scan.tiff"]


def test_folder_needs_two_classes_each_with_an_image(tmp_path):
    _write_folder(tmp_path, classes=("cat",))
    with pytest.raises(ValueError, match="one class sub-folder.*at least 2"):
        load(f"folder:{tmp_path}", holdout=0)
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("photos to come")
    with pytest.raises(ValueError, match="dog' holds no readable image"):
        load(f"folder:{tmp_path}", holdout=0)


@pytest.mark.parametrize("augment", [False, True])
def test_image_size_takes_height_and_width(tmp_path, augment):
    red = _write_folder(tmp_path / "images")
    for key, blob in red.items():
        (tmp_path / "masks" / key).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "masks" / f"{key}.npy", blob)
    options = {"batch_size": 2, "with_masks": True, "augment": augment}
    for name, extra in [
        ("synthetic", {"num_images": 2}),
        ("synthetic/one_part", {"num_images": 2}),
        (
            f"folder:{tmp_path / 'images'}",
            {"mask_dir": str(tmp_path / "masks"), "holdout": 0},
        ),
    ]:
        ds, info = load(
            name, image_size=(24, 40), return_info=True, **options, **extra
        )
        images, labels, masks = _batches(ds)[0]
        assert images.shape == (2, 24, 40, 3), name
        assert masks.shape == (2, 24, 40), name
        assert set(np.unique(masks)) <= {0.0, 1.0}
        assert info["image_size"] == (24, 40)
    # A square pair is the same as the int.
    pair = _batches(load("synthetic", image_size=[32, 32], num_images=4))
    square = _batches(load("synthetic", image_size=32, num_images=4))
    np.testing.assert_array_equal(pair[0][0], square[0][0])
    with tfds.testing.mock_data(num_examples=2):
        ds = load(
            "oxford_iiit_pet", image_size=(16, 8), download=True, **options
        )
        images, _, masks = _batches(ds)[0]
    assert images.shape == (2, 16, 8, 3) and masks.shape == (2, 16, 8)
    mask = np.asarray(
        tfds_sets.box_mask(tf.constant([0.0, 0.5, 0.5, 1.0]), (2, 4))
    )
    np.testing.assert_array_equal(mask, [[0, 0, 1, 1], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    "image_size, message",
    [((0, 8), "at least 1"), ((8, 8, 3), "pair"), ((8.0, 8), "an int")],
)
def test_image_size_errors(image_size, message):
    with pytest.raises(ValueError, match=message):
        load("synthetic", image_size=image_size)


@pytest.mark.parametrize("download", [None, False])
def test_mock_data_counts_as_available(download):
    # As tfds documents: pipelines are tested under `mock_data`, offline.
    start = time.time()
    with tfds.testing.mock_data(num_examples=3):
        ds, info = load(
            "cifar10",
            image_size=16,
            batch_size=3,
            download=download,
            return_info=True,
        )
        (batch,) = _batches(ds)
    _check_batch(batch, 16)
    assert info["num_classes"] == 10
    assert time.time() - start < 20  # no probe of the download host


# === Errors ===


def test_fails_fast_when_data_is_absent(tmp_path):
    start = time.time()
    with pytest.raises(DatasetNotAvailableError, match="tfds build cifar10"):
        load("cifar10", data_dir=str(tmp_path), download=False)
    assert time.time() - start < 20


def test_fails_fast_when_download_host_is_unreachable(tmp_path, monkeypatch):
    # `.invalid` never resolves (RFC 6761), with or without a network.
    spec = dict(tfds_sets.TFDS_DATASETS["cifar10"])
    spec["probe"] = "https://keras-compattr-test.invalid/"
    monkeypatch.setitem(tfds_sets.TFDS_DATASETS, "cifar10", spec)
    start = time.time()
    with pytest.raises(DatasetNotAvailableError, match="unreachable") as error:
        load("cifar10", data_dir=str(tmp_path))
    assert time.time() - start < 20
    assert str(tmp_path) in str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    # Worded for Python callers, and for the command line.
    assert "`download=True`" in str(error.value)
    assert "`data_dir=DIR`" in str(error.value)
    cli = error.value.cli_message
    assert "pass --download" in cli and "--data-dir DIR" in cli
    assert "download=True" not in cli and "data_dir=" not in cli


def test_network_probe_is_bounded(monkeypatch):
    # A server that accepts connections but never answers.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    start = time.time()
    try:
        assert not tfds_sets.url_reachable(url, timeout=0.5)
    finally:
        server.close()
    assert time.time() - start < 5
    # A request stuck where no socket timeout applies (such as a resolver).
    monkeypatch.setattr(
        tfds_sets.urllib.request, "urlopen", lambda *a, **k: time.sleep(3)
    )
    start = time.time()
    assert not tfds_sets.url_reachable(url, timeout=0.2)
    assert time.time() - start < 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "mnist"}, "Unknown data set 'mnist'"),
        ({"name": "synthetic/three_part"}, "Unknown data set"),
        ({"name": "cifar10", "split": "validation"}, "Unknown split"),
        ({"name": "imagenette", "split": "test"}, "Unknown split"),
        ({"name": "stl10", "split": "unlabelled"}, "Unknown split"),
        ({"name": "synthetic", "split": "val"}, "Unknown split"),
        ({"name": "cifar10", "with_masks": True}, "has no masks"),
        ({"name": "folder:/no/such/folder"}, "does not exist"),
        ({"name": "synthetic", "image_size": 0}, "at least 1"),
        ({"name": "synthetic", "image_size": 16}, "at least 24"),
        ({"name": "cifar10", "num_images": 4}, "synthetic data only"),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load(**kwargs)


def test_tfds_split_slicing_is_accepted():
    tfds_sets.check_tfds_split("cifar10", "train[:10%]+test", ("train", "test"))


# === TFDS builder ===


def test_tfds_builder_tiny_config(tmp_path):
    config = CompattrSyntheticConfig(
        name="tiny", image_size=32, num_train=6, num_test=3
    )
    builder = tfds.builder(
        "compattr_synthetic", config=config, data_dir=str(tmp_path)
    )
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == 6
    examples = list(tfds.as_numpy(builder.as_dataset(split="test")))
    assert len(examples) == 3
    data = synthetic(num_images=3, image_size=32, seed=1)
    by_image = {ex["image"].tobytes(): ex for ex in examples}
    for i in range(3):
        image = np.round(data["images"][i] * 255).astype(np.uint8)
        example = by_image[image.tobytes()]
        assert example["label"] == data["labels"][i]
        np.testing.assert_array_equal(example["mask"], data["masks"][i])
        assert example["part_masks"].shape == (2, 32, 32)


@pytest.fixture(scope="module")
def synthetic_tfds_dir(tmp_path_factory):
    """A TFDS data folder holding the prepared `compattr_synthetic/one_part`."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder(
        "compattr_synthetic/one_part", data_dir=data_dir
    ).download_and_prepare()
    return data_dir


def test_tfds_load_registered_config(synthetic_tfds_dir):
    ds = tfds.load(
        "compattr_synthetic/one_part",
        split="test[:2]",
        data_dir=synthetic_tfds_dir,
        as_supervised=True,
    )
    (image, label), _ = list(tfds.as_numpy(ds))
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert 0 <= label < 4


def test_prepared_tfds_data_is_read_without_network(
    synthetic_tfds_dir, monkeypatch
):
    # Any prepared TFDS data set goes through the same path as cifar10.
    spec = {"splits": ("train", "test"), "masks": None, "probe": ""}
    name = "compattr_synthetic/one_part"
    monkeypatch.setitem(tfds_sets.TFDS_DATASETS, name, spec)
    ds, info = load(
        name,
        split="train[:10]",
        image_size=32,
        batch_size=5,
        data_dir=synthetic_tfds_dir,
        download=False,
        augment=True,
        return_info=True,
    )
    batches = _batches(ds)
    assert [len(b[0]) for b in batches] == [5, 5]
    _check_batch(batches[0], 32)
    assert info["num_examples"] == 10 and info["num_classes"] == 4
