"""Loaders of image classification data, with masks where a data set has them.

`load` returns a batched, prefetched `tf.data.Dataset` of float images in
`[0, 1]` and integer labels, optionally with binary foreground masks, from
the embedded synthetic data, a local image folder, or a
tensorflow-datasets (TFDS) data set. It never hangs offline: a TFDS data
set that is not prepared locally and cannot be downloaded raises
`DatasetNotAvailableError` within a few seconds.
"""

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
    """A data set is not prepared locally and cannot be downloaded now."""


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
      class (JPEG, PNG, BMP, GIF; classes in sorted order). If `PATH` has a
      sub-folder named `split` (such as `PATH/train`, `PATH/val`), that one
      is read; otherwise `PATH` itself is read whatever `split` is. Masks
      come from `mask_dir`, which mirrors the image folder: the mask of
      `PATH/<split>/<class>/<stem>.<ext>` is
      `mask_dir/<split>/<class>/<stem>.npy` (or `.png`, ...; foreground
      where the value is above 0.5, or 127 for 8-bit images).

    TFDS data sets are read from `data_dir` (default: `TFDS_DATA_DIR` or
    `~/tensorflow_datasets`). When they are not prepared there, they are
    downloaded and prepared if their download host answers within about
    2.5 seconds; otherwise `DatasetNotAvailableError` is raised at once,
    saying where the data should be and how to prepare it. Any TFDS split
    string works, such as `"train[:10%]"` or `"train+test"`.

    Images are resized to `image_size` x `image_size` (bilinear with
    antialiasing, without keeping the aspect ratio), masks with nearest
    neighbour. `augment=True` adds the paper's training augmentation to
    every image and, identically, to its mask: a random crop after zero
    padding of `16 * image_size / 224` pixels (16 px at 224 px), a
    horizontal flip with probability 0.5, and a rotation by up to 15
    degrees (bilinear for images, nearest for masks, zero fill). It draws
    new parameters every epoch, deterministically from `seed`.

    Args:
        name: str, a data set above.
        split: str, the split to read.
        image_size: int, height and width of the output images.
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
            when offline).
        return_info: bool, also return a dict with `"class_names"` (list of
            str), `"num_classes"`, `"num_examples"` (int, or `None` when
            unknown), `"has_masks"` (whether the data set can give masks),
            `"name"`, `"split"` and `"image_size"`.
        num_images: int, size of a synthetic split (defaults above). Only
            for synthetic data.
        mask_dir: str, folder of masks of a `"folder:PATH"` data set.

    Returns:
        A prefetched `tf.data.Dataset` of `(images, labels)` or, with
        `with_masks=True`, `(images, labels, masks)`: images
        `(B, image_size, image_size, 3)` float32 in `[0, 1]`, labels `(B,)`
        int32, masks `(B, image_size, image_size)` float32 in `{0, 1}`.
        With `return_info=True`, the tuple `(dataset, info)`.

    Example:

    >>> from keras_compattr.datasets import load
    >>> ds, info = load("synthetic", split="test", image_size=32,
    ...                 batch_size=8, with_masks=True, return_info=True)
    >>> images, labels, masks = next(iter(ds))
    >>> tuple(images.shape), tuple(masks.shape), info["num_classes"]
    ((8, 32, 32, 3), (8, 32, 32), 4)
    """
    _check_positive_int(image_size, "image_size")
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
    if shuffle is None:
        shuffle = split.strip().startswith("train")

    if name.startswith("folder:"):
        ds, info = _folder_source(
            name[len("folder:") :],
            split,
            image_size,
            with_masks,
            shuffle,
            seed,
            mask_dir,
        )
    elif name.split("/")[0] == "synthetic":
        ds, info = _synthetic_source(
            name, split, image_size, with_masks, shuffle, seed, num_images
        )
    elif name in _TFDS_DATASETS:
        ds, info = _tfds_source(
            name,
            split,
            image_size,
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
    info.update(name=name, split=split, image_size=image_size)

    import tensorflow as tf

    if augment:
        ds = _augment_dataset(ds, image_size, with_masks, seed)
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


def _ensure_prepared(builder, name, download):
    """Prepares a TFDS data set, or raises `DatasetNotAvailableError`."""
    if builder.is_prepared():
        return
    probe = _TFDS_DATASETS[name]["probe"]
    if download is False:
        reason = "`download=False`"
    elif download is None and not _url_reachable(probe):
        host = probe.split("/")[2]
        reason = (
            f"its download host {host} is unreachable; if it is not, pass "
            "`download=True`"
        )
    else:
        builder.download_and_prepare()
        return
    target = str(builder.data_dir)
    depth = 3 if builder.builder_config is not None else 2
    relative = os.path.join(*target.split(os.sep)[-depth:])
    raise DatasetNotAvailableError(
        f"The {name!r} data set is not prepared in {target} and is not "
        f"downloaded ({reason}). Prepare it on a machine with internet "
        "access:\n"
        f'    python -c "import tensorflow_datasets as tfds; tfds.builder('
        f"'{name}', data_dir='DIR').download_and_prepare()\"\n"
        f"(or `tfds build {name} --data_dir DIR`), then copy DIR/{relative} "
        f"to {target}, or pass `data_dir=DIR` (or set TFDS_DATA_DIR). "
        "Offline, `load('synthetic')` and `load('folder:PATH')` need no "
        "download."
    )


def _resize_uint8(image, size):
    import tensorflow as tf

    image = tf.image.resize(image, (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def _resize_mask(mask, size):
    """Resizes a boolean `(H, W)` mask with nearest neighbour, to uint8."""
    import tensorflow as tf

    mask = tf.cast(mask, tf.uint8)[..., None]
    mask = tf.image.resize(mask, (size, size), method="nearest")
    return tf.cast(mask[..., 0], tf.uint8)


def _box_mask(box, size):
    """A `(size, size)` uint8 mask of a TFDS box `(ymin, xmin, ymax, xmax)`."""
    import tensorflow as tf

    centres = (tf.range(size, dtype=tf.float32) + 0.5) / size
    rows = (centres >= box[0]) & (centres <= box[2])
    cols = (centres >= box[1]) & (centres <= box[3])
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
    native = min(image_size, _SYNTHETIC_MAX_SIZE)
    if native < 24:
        raise ValueError(
            f"Synthetic data needs `image_size` of at least 24. "
            f"Received: {image_size}"
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
        if native != image_size:
            image = tf.image.resize(image, (image_size, image_size))
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


def _folder_source(
    path, split, image_size, with_masks, shuffle, seed, mask_dir
):
    import tensorflow as tf

    if not path or not os.path.isdir(path):
        raise ValueError(
            f"Image folder {path!r} does not exist. Use `folder:PATH` with a "
            "folder holding one sub-folder of images per class."
        )
    split_folder = os.path.join(path, split)
    if os.path.isdir(split_folder):
        image_root = split_folder
    else:
        present = [
            d for d in _SPLIT_FOLDERS if os.path.isdir(os.path.join(path, d))
        ]
        if present:
            raise ValueError(
                f"Image folder {path!r} has split folders {present} but no "
                f"{split!r}."
            )
        image_root = path
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
    info = {
        "class_names": class_names,
        "num_classes": len(class_names),
        "num_examples": len(paths),
        "has_masks": mask_dir is not None,
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
        if image_root == split_folder and os.path.isdir(
            os.path.join(mask_dir, split)
        ):
            mask_root = os.path.join(mask_dir, split)
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
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
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
        image: `(S, S, C)` float32 tensor.
        mask: `(S, S)` float32 tensor, or `None`.
        seed: `(2,)` integer tensor, the stateless random seed.
        image_size: int, `S`.

    Returns:
        `(image, mask)`, transformed identically (`mask` stays `None`).
    """
    import tensorflow as tf

    size = image_size
    pad = max(1, round(16 * size / 224))
    channels = image.shape[-1]
    stacked = image if mask is None else tf.concat([image, mask[..., None]], -1)
    depth = stacked.shape[-1]
    keys = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)

    padded = tf.pad(stacked, [[pad, pad], [pad, pad], [0, 0]])
    offset = tf.random.stateless_uniform(
        [2], keys[0], 0, 2 * pad + 1, dtype=tf.int32
    )
    stacked = tf.slice(padded, [offset[0], offset[1], 0], [size, size, depth])
    flip = tf.random.stateless_uniform([], keys[1]) < 0.5
    stacked = tf.where(flip, tf.reverse(stacked, axis=[1]), stacked)

    angle = tf.random.stateless_uniform([], keys[2], -15.0, 15.0)
    angle = angle * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    extent = float(size - 1)
    # Maps output to input pixel coordinates: a rotation about the centre.
    x_offset = (extent - (cos * extent - sin * extent)) / 2.0
    y_offset = (extent - (sin * extent + cos * extent)) / 2.0
    zero = tf.zeros_like(cos)
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zero, zero])[
        None
    ]

    def rotate(x, interpolation):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=x[None],
            transforms=transform,
            output_shape=[size, size],
            fill_value=0.0,
            interpolation=interpolation,
            fill_mode="CONSTANT",
        )[0]

    image = rotate(stacked[..., :channels], "BILINEAR")
    image = tf.ensure_shape(image, [size, size, channels])
    if mask is None:
        return image, None
    mask = rotate(stacked[..., channels:], "NEAREST")[..., 0]
    return image, tf.ensure_shape(mask, [size, size])
