"""Loaders of image classification data, with masks where a data set has them.

`load` returns a batched, prefetched `tf.data.Dataset` of float images in
`[0, 1]` and integer labels, optionally with binary foreground masks, from
the embedded synthetic data, a local image folder, or a
tensorflow-datasets (TFDS) data set. It never hangs offline: a TFDS data
set that is not prepared locally and cannot be downloaded raises
`DatasetNotAvailableError` within a few seconds.
"""

import hashlib
import math
import os
import re
import threading
import urllib.error
import urllib.request

import numpy as np

# Each TFDS data set: its splits, how its masks are made, and a URL on its
# download host (probed before a download is attempted).
_TFDS_DATASETS = {
    "oxford_iiit_pet": {
        "splits": ("train", "test"),
        "masks": "trimap",
        "probe": "https://thor.robots.ox.ac.uk/",
    },
    "caltech_birds2011": {
        "splits": ("train", "test"),
        "masks": "soft",
        "probe": "https://data.caltech.edu/",
    },
    "imagenette": {
        "splits": ("train", "validation"),
        "masks": None,
        "probe": "https://s3.amazonaws.com/fast-ai-imageclas/",
    },
    "stl10": {
        "splits": ("train", "test"),
        "masks": None,
        "probe": "http://ai.stanford.edu/",
    },
    "cifar10": {
        "splits": ("train", "test"),
        "masks": None,
        "probe": "https://www.cs.toronto.edu/",
    },
}
_SYNTHETIC_SPLITS = {"train": (2000, 0), "test": (500, 1)}  # size, seed
_SYNTHETIC_MAX_SIZE = 64  # Generated at most this size, then resized.
_SPLIT_FOLDERS = ("train", "val", "validation", "test")
# Split names of a folder, and the folders that can hold each.
_FOLDER_SPLITS = {
    "train": ("train",),
    "val": ("val", "validation"),
    "validation": ("validation", "val"),
    "test": ("test",),
}
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_MASK_EXTENSIONS = (".npy", ".png", ".bmp", ".gif", ".jpg", ".jpeg")
_SHUFFLE_BUFFER = 1024  # Examples held by the shuffle buffer of TFDS sets.
_PROBE_TIMEOUT = 2.5  # Seconds; the probe never takes much longer.

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


class DatasetNotAvailableError(FileNotFoundError):
    """A data set is not prepared locally and cannot be downloaded now.

    `str(error)` words its advice for Python callers (`download=True`,
    `data_dir=DIR`); `cli_message` gives the same advice for the command
    line (`--download`, `--data-dir DIR`).
    """

    cli_message = None


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
      class (JPEG, PNG, BMP, GIF; classes in sorted order), either directly
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
            `"image_size"`.
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
    size = _image_size(image_size)
    if batch_size is not None:
        _check_positive_int(batch_size, "batch_size")
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
        ds, info = _folder_source(
            name[len("folder:") :],
            split,
            size,
            with_masks,
            shuffle,
            seed,
            mask_dir,
            holdout,
            split_seed,
        )
    elif name.split("/")[0] == "synthetic":
        ds, info = _synthetic_source(
            name, split, size, with_masks, shuffle, seed, num_images
        )
    elif name in _TFDS_DATASETS:
        ds, info = _tfds_source(
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
        ds = _augment_dataset(ds, size, with_masks, seed)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return (ds, info) if return_info else ds


# === Checks ===


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int. Received: {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1. Received: {value}")


def _image_size(value):
    """`(height, width)` of an int or a `(height, width)` pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                "`image_size` must be an int or a (height, width) pair. "
                f"Received: {value!r}"
            )
        for side in value:
            _check_positive_int(side, "image_size")
        return int(value[0]), int(value[1])
    _check_positive_int(value, "image_size")
    return int(value), int(value)


def _check_tfds_split(name, split, splits):
    """Accepts TFDS split strings (`"train[:10%]"`, `"train+test"`)."""
    for part in split.split("+"):
        match = re.match(r"\s*([A-Za-z_]\w*)\s*(\[.*\])?\s*$", part)
        if match is None or match.group(1) not in splits:
            raise ValueError(
                f"Unknown split {split!r} for {name!r}. Available: "
                f"{', '.join(splits)} (TFDS slicing such as "
                f"'{splits[0]}[:10%]' works too)."
            )


def _no_masks_error(name, hint=""):
    return ValueError(
        f"The {name!r} data set has no masks: use `with_masks=False`. "
        "Data sets with masks: synthetic, oxford_iiit_pet, "
        f"caltech_birds2011, folder:PATH with mask_dir.{hint}"
    )


# === Network probe ===


def _url_reachable(url, timeout=_PROBE_TIMEOUT):
    """Whether a server answers at `url`; returns within `timeout + 0.5` s.

    The request runs in a daemon thread: a resolver that hangs cannot block
    the caller. Proxies from the environment are used, as by downloads.
    """
    outcome = []
    scheme = url.split(":", 1)[0]
    via_proxy = scheme in urllib.request.getproxies()

    def probe():
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                outcome.append(True)
        except urllib.error.HTTPError as error:
            # The server answered; a proxy refusing the host did not.
            outcome.append(not (via_proxy and error.code in (403, 407)))
        except Exception:
            outcome.append(False)

    thread = threading.Thread(
        target=probe, name="keras_compattr-probe", daemon=True
    )
    thread.start()
    thread.join(timeout + 0.5)
    return bool(outcome) and outcome[0]


# === TFDS data sets ===


def _tfds_mocked(builder):
    """Whether `tfds.testing.mock_data` replaces the builder's data."""
    prepare = getattr(type(builder), "download_and_prepare", None)
    module = getattr(prepare, "__module__", None) or ""
    return module.startswith("tensorflow_datasets.testing")


def _ensure_prepared(builder, name, download):
    """Prepares a TFDS data set, or raises `DatasetNotAvailableError`."""
    if builder.is_prepared() or _tfds_mocked(builder):
        # Mocked data is generated on the fly: there is nothing to fetch.
        return
    probe = _TFDS_DATASETS[name]["probe"]
    host = probe.split("/")[2] if probe.count("/") >= 2 else probe
    if download is False:
        reasons = ("`download=False`", "--no-download")
    elif download is None and not _url_reachable(probe):
        reasons = tuple(
            f"its download host {host} is unreachable; if it is not, pass "
            f"{flag}"
            for flag in ("`download=True`", "--download")
        )
    else:
        builder.download_and_prepare()
        return
    target = str(builder.data_dir)
    depth = 3 if builder.builder_config is not None else 2
    relative = os.path.join(*target.split(os.sep)[-depth:])

    def message(reason, prepare, data_dir, offline):
        return (
            f"The {name!r} data set is not prepared in {target} and is not "
            f"downloaded ({reason}). Prepare it on a machine with internet "
            f"access:\n    {prepare}\nthen copy DIR/{relative} to {target}, "
            f"or pass {data_dir} (or set TFDS_DATA_DIR). Offline, {offline} "
            "need no download."
        )

    error = DatasetNotAvailableError(
        message(
            reasons[0],
            f'python -c "import tensorflow_datasets as tfds; tfds.builder('
            f"'{name}', data_dir='DIR').download_and_prepare()\"\n"
            f"(or `tfds build {name} --data_dir DIR`),",
            "`data_dir=DIR`",
            "`load('synthetic')` and `load('folder:PATH')`",
        )
    )
    error.cli_message = message(
        reasons[1],
        f"tfds build {name} --data_dir DIR",
        "--data-dir DIR",
        "`--dataset synthetic` and `--dataset folder:PATH`",
    )
    raise error


def _resize_uint8(image, size):
    """Resizes to `size`, `(height, width)`, as uint8."""
    import tensorflow as tf

    image = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def _resize_mask(mask, size):
    """Resizes a boolean `(H, W)` mask to `size` (nearest), as uint8."""
    import tensorflow as tf

    mask = tf.cast(mask, tf.uint8)[..., None]
    mask = tf.image.resize(mask, size, method="nearest")
    return tf.cast(mask[..., 0], tf.uint8)


def _box_mask(box, size):
    """A uint8 mask of a TFDS box `(ymin, xmin, ymax, xmax)`.

    `size` is an int or `(height, width)`.
    """
    import tensorflow as tf

    height, width = _image_size(size)
    rows = (tf.range(height, dtype=tf.float32) + 0.5) / height
    cols = (tf.range(width, dtype=tf.float32) + 0.5) / width
    rows = (rows >= box[0]) & (rows <= box[2])
    cols = (cols >= box[1]) & (cols <= box[3])
    return tf.cast(rows[:, None] & cols[None, :], tf.uint8)


def _tfds_source(
    name, split, image_size, with_masks, shuffle, data_dir, seed, download
):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    spec = _TFDS_DATASETS[name]
    _check_tfds_split(name, split, spec["splits"])
    if with_masks and spec["masks"] is None:
        raise _no_masks_error(name)
    builder = tfds.builder(name, data_dir=data_dir)
    _ensure_prepared(builder, name, download)
    features = builder.info.features
    mask_kind = None
    if with_masks:
        if "segmentation_mask" in features:
            mask_kind = spec["masks"]
        elif "bbox" in features:
            mask_kind = "bbox"
        else:
            raise _no_masks_error(name, " (this version has no masks)")
    try:
        num_examples = int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError, TypeError):
        num_examples = None
    class_names = list(features["label"].names)
    info = {
        "class_names": class_names,
        "num_classes": len(class_names),
        "num_examples": num_examples,
        "has_masks": spec["masks"] is not None,
    }

    def convert(example):
        image = _resize_uint8(example["image"], image_size)
        label = tf.cast(example["label"], tf.int32)
        if mask_kind is None:
            return image, label
        if mask_kind == "bbox":
            return image, label, _box_mask(example["bbox"], image_size)
        values = example["segmentation_mask"][..., 0]
        if mask_kind == "trimap":  # 1 pet, 2 background, 3 border.
            foreground = (values == 1) | (values == 3)
        else:  # Annotators' average in 0..255.
            foreground = values >= 128
        return image, label, _resize_mask(foreground, image_size)

    def to_float(image, label, *mask):
        image = tf.cast(image, tf.float32) / 255.0
        return (image, label) + tuple(tf.cast(m, tf.float32) for m in mask)

    ds = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:  # Buffers resized uint8 images: 150 MB at 224 px.
        buffer = min(_SHUFFLE_BUFFER, num_examples or _SHUFFLE_BUFFER)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info


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
    _check_positive_int(num_images, "num_images")
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
            elements += (tf.cast(_resize_mask(mask, image_size), tf.float32),)
        return elements

    ds = tf.data.Dataset.range(num_images)
    if shuffle:
        ds = ds.shuffle(num_images, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info


# === Image folders ===


def _list_images(folder):
    """Sorted paths (relative to `folder`) of the images below `folder`."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for file in sorted(files):
            if file.lower().endswith(_IMAGE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(root, file), folder))
    return found


def _find_mask(mask_root, relative):
    stem = os.path.splitext(os.path.join(mask_root, relative))[0]
    for extension in _MASK_EXTENSIONS:
        for candidate in (stem + extension, stem + extension.upper()):
            if os.path.isfile(candidate):
                return candidate
    return None


def _load_npy_mask(path):
    mask = np.load(path.decode() if isinstance(path, bytes) else path)
    if mask.ndim == 3:
        mask = mask[..., 0]
    return (mask.astype("float32") > 0.5).astype("uint8")


def _folder_split(path, split, holdout):
    """Where a folder's split comes from.

    Returns:
        `(image_root, share, carved)`: the folder to list, the held-out
        share to read from it (`"train"`, `"val"`, `"test"`, or `None` for
        all of it) and the shares held out of it (`("test", "val")`,
        `("val",)` or none).
    """
    present = [
        d for d in _SPLIT_FOLDERS if os.path.isdir(os.path.join(path, d))
    ]

    def folder_of(name):
        for folder in _FOLDER_SPLITS.get(name, (name,)):
            if os.path.isdir(os.path.join(path, folder)):
                return folder
        return None

    # A missing validation split is held out; a missing test split only
    # when there is no validation folder either (else train/ stays whole).
    carved = ()
    if holdout > 0 and folder_of("val") is None:
        carved = ("val",) if folder_of("test") else ("test", "val")
    name = split.strip()
    share = "val" if name == "validation" else name
    folder = folder_of(name)
    if folder is not None and name != "train":
        return os.path.join(path, folder), None, ()
    # The training images: held-out shares come out of them.
    pool = path if not present else None
    if folder_of("train") is not None:
        pool = os.path.join(path, folder_of("train"))
    if share in ("train", *carved) and pool is not None:
        return pool, share if carved else None, carved
    available = present or ["train"]
    if pool is None:
        reason = f"its split folders are {present}"
    elif share == "test" and holdout > 0:
        reason = (
            "none is held out next to a validation folder: add a test "
            "folder, or use 'val'"
        )
    elif holdout > 0:
        reason = f"{split!r} is not a split name"
    else:
        reason = "`holdout=0`"
    if present or holdout > 0:
        available = sorted(set(available) | {"train", *carved})
    raise ValueError(
        f"Image folder {path!r} has no {split!r} split ({reason}). "
        f"Available: {', '.join(available)}."
    )


def _hold_out(paths, labels, share, carved, holdout, split_seed):
    """Keeps the paths (in order) of one share of each class."""
    if share is None:
        return paths, labels
    by_class = {}
    for relative, label in zip(paths, labels):
        by_class.setdefault(label, []).append(relative)
    kept = set()
    for files in by_class.values():
        count = max(1, round(len(files) * holdout))
        while count > 0 and len(files) - len(carved) * count < 1:
            count -= 1  # Keep at least one training image per class.
        ranked = sorted(
            files,
            key=lambda p: hashlib.sha256(
                f"{split_seed}/{p.replace(os.sep, '/')}".encode()
            ).hexdigest(),
        )
        shares = {
            name: ranked[i * count : (i + 1) * count]
            for i, name in enumerate(carved)
        }
        if share == "train":
            kept.update(ranked[len(carved) * count :])
        else:
            kept.update(shares[share])
    chosen = [i for i, p in enumerate(paths) if p in kept]
    return [paths[i] for i in chosen], [labels[i] for i in chosen]


def _folder_source(
    path,
    split,
    image_size,
    with_masks,
    shuffle,
    seed,
    mask_dir,
    holdout=0.1,
    split_seed=0,
):
    import tensorflow as tf

    if not path or not os.path.isdir(path):
        raise ValueError(
            f"Image folder {path!r} does not exist. Use `folder:PATH` with a "
            "folder holding one sub-folder of images per class."
        )
    image_root, share, carved = _folder_split(path, split, holdout)
    class_names = sorted(
        d
        for d in os.listdir(image_root)
        if not d.startswith(".") and os.path.isdir(os.path.join(image_root, d))
    )
    if not class_names:
        raise ValueError(
            f"Image folder {image_root!r} has no class sub-folders: put the "
            "images of each class in a sub-folder named after the class."
        )
    paths, labels = [], []
    for index, class_name in enumerate(class_names):
        for relative in _list_images(os.path.join(image_root, class_name)):
            paths.append(os.path.join(class_name, relative))
            labels.append(index)
    if not paths:
        raise ValueError(
            f"Image folder {image_root!r} holds no images "
            f"({', '.join(_IMAGE_EXTENSIONS)})."
        )
    paths, labels = _hold_out(paths, labels, share, carved, holdout, split_seed)
    if not paths:
        raise ValueError(
            f"Image folder {image_root!r} has too few images to hold out a "
            f"{split!r} split (a share of {holdout:g} of each class, keeping "
            "one training image per class): add images, or a split folder "
            f"{os.path.join(path, split)!r}."
        )
    info = {
        "class_names": class_names,
        "num_classes": len(class_names),
        "num_examples": len(paths),
        "has_masks": mask_dir is not None,
        "held_out": share is not None and share != "train",
    }

    mask_paths = None
    npy_masks = False
    if with_masks:
        if mask_dir is None:
            raise _no_masks_error(
                f"folder:{path}", " Pass `mask_dir` for a folder's masks."
            )
        if not os.path.isdir(mask_dir):
            raise ValueError(f"Mask folder {mask_dir!r} does not exist.")
        mask_root = mask_dir
        folder = os.path.relpath(image_root, path)
        if folder != os.curdir and os.path.isdir(
            os.path.join(mask_dir, folder)
        ):
            mask_root = os.path.join(mask_dir, folder)
        mask_paths = [_find_mask(mask_root, p) for p in paths]
        missing = [p for p, m in zip(paths, mask_paths) if m is None]
        if missing:
            raise ValueError(
                f"{len(missing)} of {len(paths)} images have no mask in "
                f"{mask_root!r}, such as {missing[0]!r} (expected "
                f"{os.path.splitext(missing[0])[0]}.npy or .png)."
            )
        kinds = {m.lower().endswith(".npy") for m in mask_paths}
        if len(kinds) > 1:
            raise ValueError(
                f"Masks in {mask_root!r} mix .npy and image files: use one."
            )
        npy_masks = kinds.pop()

    def read(image_path, label, *mask_path):
        data = tf.io.read_file(image_path)
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(image, image_size, antialias=True)
        image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
        if not mask_path:
            return image, label
        if npy_masks:
            mask = tf.numpy_function(
                _load_npy_mask, [mask_path[0]], tf.uint8, stateful=False
            )
            mask = tf.ensure_shape(mask, [None, None]) > 0
        else:
            data = tf.io.read_file(mask_path[0])
            mask = tf.io.decode_image(data, channels=1, expand_animations=False)
            mask = mask[..., 0] > 127
        return image, label, tf.cast(_resize_mask(mask, image_size), "float32")

    slices = (
        tf.constant([os.path.join(image_root, p) for p in paths]),
        tf.constant(labels, tf.int32),
    )
    if mask_paths is not None:
        slices += (tf.constant(mask_paths),)
    ds = tf.data.Dataset.from_tensor_slices(slices)
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info


# === Augmentation ===


def _augment_dataset(ds, image_size, with_masks, seed):
    """The paper's augmentation, with fresh parameters every epoch."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def apply(elements, pair):
        image, label = elements[:2]
        mask = elements[2] if with_masks else None
        image, mask = _augment_example(image, mask, pair, image_size)
        return (image, label, mask) if with_masks else (image, label)

    return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)


def _augment_example(image, mask, seed, image_size):
    """Pads and random-crops, flips and rotates one image and its mask.

    Args:
        image: `(H, W, C)` float32 tensor.
        mask: `(H, W)` float32 tensor, or `None`.
        seed: `(2,)` integer tensor, the stateless random seed.
        image_size: `(H, W)`.

    Returns:
        `(image, mask)`, transformed identically (`mask` stays `None`).
    """
    import tensorflow as tf

    height, width = image_size
    pad = max(1, round(16 * min(height, width) / 224))
    channels = image.shape[-1]
    stacked = image if mask is None else tf.concat([image, mask[..., None]], -1)
    depth = stacked.shape[-1]
    keys = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)

    padded = tf.pad(stacked, [[pad, pad], [pad, pad], [0, 0]])
    offset = tf.random.stateless_uniform(
        [2], keys[0], 0, 2 * pad + 1, dtype=tf.int32
    )
    stacked = tf.slice(
        padded, [offset[0], offset[1], 0], [height, width, depth]
    )
    flip = tf.random.stateless_uniform([], keys[1]) < 0.5
    stacked = tf.where(flip, tf.reverse(stacked, axis=[1]), stacked)

    angle = tf.random.stateless_uniform([], keys[2], -15.0, 15.0)
    angle = angle * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_extent, y_extent = float(width - 1), float(height - 1)
    # Maps output to input pixel coordinates: a rotation about the centre.
    x_offset = (x_extent - (cos * x_extent - sin * y_extent)) / 2.0
    y_offset = (y_extent - (sin * x_extent + cos * y_extent)) / 2.0
    zero = tf.zeros_like(cos)
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zero, zero])[
        None
    ]

    def rotate(x, interpolation):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=x[None],
            transforms=transform,
            output_shape=[height, width],
            fill_value=0.0,
            interpolation=interpolation,
            fill_mode="CONSTANT",
        )[0]

    image = rotate(stacked[..., :channels], "BILINEAR")
    image = tf.ensure_shape(image, [height, width, channels])
    if mask is None:
        return image, None
    mask = rotate(stacked[..., channels:], "NEAREST")[..., 0]
    return image, tf.ensure_shape(mask, [height, width])
