"""Loaders of image classification data, with masks where a data set has them.

`load` returns a batched, prefetched `tf.data.Dataset` of float images in
`[0, 1]` and integer labels, optionally with binary foreground masks, from
the embedded synthetic data, a local image folder, or a
tensorflow-datasets (TFDS) data set. It never hangs offline: a TFDS data
set that is not prepared locally and cannot be downloaded raises
`DatasetNotAvailableError` within a few seconds.

Each source has its own module: `keras_compattr.datasets.synthetic`,
`folders` (its splits and held-out shares in `holdout`) and `tfds_sets`;
`preprocessing` resizes masks and augments; `checks` holds the argument
checks and errors they share.
"""

import numpy as np

from keras_compattr.datasets.checks import check_positive_int
from keras_compattr.datasets.checks import parse_image_size
from keras_compattr.datasets.folders import folder_source
from keras_compattr.datasets.preprocessing import augment_dataset
from keras_compattr.datasets.preprocessing import resize_mask
from keras_compattr.datasets.tfds_sets import TFDS_DATASETS
from keras_compattr.datasets.tfds_sets import tfds_source

_SYNTHETIC_SPLITS = {"train": (2000, 0), "test": (500, 1)}  # size, seed
_SYNTHETIC_MAX_SIZE = 64  # Generated at most this size, then resized.

DATASETS = (
    "synthetic",
    "synthetic/one_part",
    "synthetic/two_part",
    "oxford_iiit_pet",
    "caltech_birds2011",
    "imagenette",
    "stl10",
    "cifar10",
    "folder:PATH",
)


def load(
    name,
    split="train",
    image_size=224,
    batch_size=32,
    with_masks=False,
    augment=False,
    shuffle=None,
    data_dir=None,
    seed=0,
    download=None,
    return_info=False,
    num_images=None,
    mask_dir=None,
    holdout=0.1,
    split_seed=0,
    skip_bad_images=False,
):
    """Loads an image classification data set as a `tf.data.Dataset`.

    Data sets (`name`):

    - `"synthetic"` (same as `"synthetic/two_part"`) and
      `"synthetic/one_part"`: the embedded data of
      `keras_compattr.datasets.synthetic`, 4 classes, generated in memory
      (no files, no network) with exact masks. Splits `"train"` (2000
      images, seed `seed`) and `"test"` (500 images, seed `seed + 1`).
      Generated at `image_size` up to 64 px, resized above that.
    - `"oxford_iiit_pet"` (37 classes): masks from the trimap, where 1 is
      pet, 2 background and 3 the border around the pet's outline. Border
      pixels count as foreground: they hold the pet's edge and fur, so the
      mask slightly over- rather than under-covers the pet.
    - `"caltech_birds2011"` (200 classes): masks from `segmentation_mask`
      (an average over annotators, `0..255`), foreground where it is at
      least 128; from the bounding box `bbox` where a version of the data
      set has no segmentation.
    - `"imagenette"` (splits `"train"` and `"validation"`), `"stl10"`,
      `"cifar10"`: no masks.
    - `"folder:PATH"`: a local folder with one sub-folder of images per
      class (JPEG, PNG, BMP, GIF, WebP; classes in sorted order), at least
      two classes, each with at least one image, either directly
      in `PATH` or in split folders `PATH/train`, `PATH/val` (or
      `PATH/validation`) and `PATH/test`. A split folder that exists is
      read as it is. Without a validation folder, a `"val"`
      (`"validation"`) split is held out of the training images
      (`PATH/train`, or `PATH` itself without split folders), and so is a
      `"test"` split if there is no test folder either: a share `holdout`
      of each class, chosen by
      a hash of each file's path and `split_seed`, so every call (and
      `keras-compattr train` and `evaluate`) gets the same split, and
      `"train"` then reads the rest. `info["held_out"]` says whether the
      split was held out this way. Masks come from `mask_dir`, which
      mirrors the image folder: the mask of
      `PATH/<split>/<class>/<stem>.<ext>` is
      `mask_dir/<split>/<class>/<stem>.npy` (or `.png`, ...; foreground
      where the value is above 0.5, or 127 for 8-bit images).
      Every image file of the folder is decoded once when it is loaded:
      a file that cannot be decoded (not an image, truncated, empty)
      raises `ValueError` naming it, or with `skip_bad_images=True` is
      left out with a warning. Files of other types (such as `.tiff` or
      `.heic`) are left out with a warning; hidden files in silence.

    TFDS data sets are read from `data_dir` (default: `TFDS_DATA_DIR` or
    `~/tensorflow_datasets`). When they are not prepared there, they are
    downloaded and prepared if their download host answers within about
    2.5 seconds; otherwise `DatasetNotAvailableError` is raised at once,
    saying where the data should be and how to prepare it. Any TFDS split
    string works, such as `"train[:10%]"` or `"train+test"`.

    Images are resized to `image_size` (bilinear with antialiasing,
    without keeping the aspect ratio), masks with nearest neighbour.
    `augment=True` adds the paper's training augmentation to every image
    and, identically, to its mask: a random crop after zero padding of
    `16 * min(height, width) / 224` pixels (16 px at 224 px), a
    horizontal flip with probability 0.5, and a rotation by up to 15
    degrees (bilinear for images, nearest for masks, zero fill). It draws
    new parameters every epoch, deterministically from `seed`.

    Args:
        name: str, a data set above.
        split: str, the split to read.
        image_size: int (height and width) or `(height, width)`, the size
            of the output images.
        batch_size: int, or `None` for unbatched examples.
        with_masks: bool, also yield foreground masks. Raises `ValueError`
            for a data set without masks.
        augment: bool, apply the training augmentation.
        shuffle: bool, shuffle the examples every epoch. Defaults to `True`
            for splits whose name starts with `"train"`.
        data_dir: str, TFDS data folder; ignored by the other data sets.
        seed: int, seed of shuffling, augmentation and synthetic data.
        download: `None` (download a missing TFDS data set if its host is
            reachable), `False` (never download: raise at once if the data
            is absent) or `True` (always try; TFDS then retries for minutes
            when offline). Under `tfds.testing.mock_data` a data set counts
            as prepared.
        return_info: bool, also return a dict with `"class_names"` (list of
            str), `"num_classes"`, `"num_examples"` (int, or `None` when
            unknown), `"has_masks"` (whether the data set can give masks),
            `"held_out"` (whether a folder's split was held out of its
            training images, see above), `"name"`, `"split"` and
            `"image_size"`; for a folder also `"skipped_images"` and
            `"other_files"` (paths of the files left out, relative to
            the folder of class sub-folders).
        num_images: int, size of a synthetic split (defaults above). Only
            for synthetic data.
        mask_dir: str, folder of masks of a `"folder:PATH"` data set.
        holdout: float in `[0, 0.5)`, share of each class held out for a
            missing validation split and, again, for a missing test split
            of a `"folder:PATH"` data set (default 0.1: 80% train, 10%
            validation, 10% test without split folders). 0 holds nothing
            out: a missing split is an error.
        split_seed: int, seed of the held-out choice, independent of
            `seed` so that training and evaluation with other seeds see
            the same split.
        skip_bad_images: bool, leave out the image files of a
            `"folder:PATH"` data set that cannot be decoded (with a
            warning and `info["skipped_images"]`) instead of raising.

    Returns:
        A prefetched `tf.data.Dataset` of `(images, labels)` or, with
        `with_masks=True`, `(images, labels, masks)`: images
        `(B, height, width, 3)` float32 in `[0, 1]`, labels `(B,)` int32,
        masks `(B, height, width)` float32 in `{0, 1}`.
        With `return_info=True`, the tuple `(dataset, info)`.

    Example:

    >>> from keras_compattr.datasets import load
    >>> ds, info = load("synthetic", split="test", image_size=32,
    ...                 batch_size=8, with_masks=True, return_info=True)
    >>> images, labels, masks = next(iter(ds))
    >>> tuple(images.shape), tuple(masks.shape), info["num_classes"]
    ((8, 32, 32, 3), (8, 32, 32), 4)
    """
    size = parse_image_size(image_size)
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    if not isinstance(name, str):
        raise ValueError(f"`name` must be a str. Received: {name!r}")
    if not isinstance(split, str) or not split.strip():
        raise ValueError(
            f"`split` must be a non-empty str. Received: {split!r}"
        )
    if download not in (None, True, False):
        raise ValueError(
            f"`download` must be None, True or False. Received: {download!r}"
        )
    if num_images is not None and not name.startswith("synthetic"):
        raise ValueError("`num_images` applies to synthetic data only.")
    if mask_dir is not None and not name.startswith("folder:"):
        raise ValueError("`mask_dir` applies to `folder:PATH` data only.")
    if (
        isinstance(holdout, bool)
        or not isinstance(holdout, (int, float, np.number))
        or not 0.0 <= holdout < 0.5
    ):
        raise ValueError(
            f"`holdout` must be a float in [0, 0.5). Received: {holdout!r}"
        )
    if shuffle is None:
        shuffle = split.strip().startswith("train")

    if name.startswith("folder:"):
        ds, info = folder_source(
            name[len("folder:") :],
            split,
            size,
            with_masks,
            shuffle,
            seed,
            mask_dir,
            holdout,
            split_seed,
            skip_bad_images,
        )
    elif name.split("/")[0] == "synthetic":
        ds, info = _synthetic_source(
            name, split, size, with_masks, shuffle, seed, num_images
        )
    elif name in TFDS_DATASETS:
        ds, info = tfds_source(
            name,
            split,
            size,
            with_masks,
            shuffle,
            data_dir,
            seed,
            download,
        )
    else:
        raise ValueError(
            f"Unknown data set {name!r}. Available: {', '.join(DATASETS)}."
        )
    info.setdefault("held_out", False)
    info.update(
        name=name,
        split=split,
        image_size=size if isinstance(image_size, (tuple, list)) else size[0],
    )

    import tensorflow as tf

    if augment:
        ds = augment_dataset(ds, size, with_masks, seed)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return (ds, info) if return_info else ds


# === Synthetic data ===


def _synthetic_source(
    name, split, image_size, with_masks, shuffle, seed, num_images
):
    import tensorflow as tf

    from keras_compattr.datasets.synthetic import VARIANTS
    from keras_compattr.datasets.synthetic import synthetic

    variant = name.split("/", 1)[1] if "/" in name else "two_part"
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown data set {name!r}. Available: {', '.join(DATASETS)}."
        )
    if split not in _SYNTHETIC_SPLITS:
        raise ValueError(
            f"Unknown split {split!r} for {name!r}. Available: "
            f"{', '.join(_SYNTHETIC_SPLITS)}."
        )
    default_size, seed_offset = _SYNTHETIC_SPLITS[split]
    if num_images is None:
        num_images = default_size
    check_positive_int(num_images, "num_images")
    native = min(max(image_size), _SYNTHETIC_MAX_SIZE)
    if native < 24:
        received = image_size[0] if len(set(image_size)) == 1 else image_size
        raise ValueError(
            f"Synthetic data needs `image_size` of at least 24. "
            f"Received: {received}"
        )
    data = synthetic(
        num_images, native, variant=variant, seed=seed + seed_offset
    )
    info = {
        "class_names": data["class_names"],
        "num_classes": len(data["class_names"]),
        "num_examples": num_images,
        "has_masks": True,
    }
    images = tf.constant(data["images"])
    labels = tf.constant(data["labels"])
    masks = tf.constant(data["masks"])

    def gather(index):
        image = tf.gather(images, index)
        if (native, native) != image_size:
            image = tf.image.resize(image, image_size)
            image = tf.clip_by_value(image, 0.0, 1.0)
        elements = (image, tf.gather(labels, index))
        if with_masks:
            mask = tf.gather(masks, index) > 0.5
            elements += (tf.cast(resize_mask(mask, image_size), tf.float32),)
        return elements

    ds = tf.data.Dataset.range(num_images)
    if shuffle:
        ds = ds.shuffle(num_images, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info
