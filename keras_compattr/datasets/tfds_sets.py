"""TensorFlow Datasets (TFDS) data sets: offline checks, masks, reading.

A TFDS data set that is not prepared locally is downloaded only if its
download host answers within a few seconds (`url_reachable`); otherwise
`DatasetNotAvailableError` says at once where the data should be and how
to prepare it. TensorFlow and TFDS are imported inside the functions.
"""

import os
import re
import threading
import urllib.error
import urllib.request

from keras_compattr.datasets.checks import DatasetNotAvailableError
from keras_compattr.datasets.checks import no_masks_error
from keras_compattr.datasets.checks import parse_image_size
from keras_compattr.datasets.preprocessing import resize_mask

# Each TFDS data set: its splits, how its masks are made, and a URL on its
# download host (probed before a download is attempted).
TFDS_DATASETS = {
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

_SHUFFLE_BUFFER = 1024  # Examples held by the shuffle buffer of TFDS sets.
_PROBE_TIMEOUT = 2.5  # Seconds; the probe never takes much longer.


def check_tfds_split(name, split, splits):
    """Accepts TFDS split strings (`"train[:10%]"`, `"train+test"`)."""
    for part in split.split("+"):
        match = re.match(r"\s*([A-Za-z_]\w*)\s*(\[.*\])?\s*$", part)
        if match is None or match.group(1) not in splits:
            raise ValueError(
                f"Unknown split {split!r} for {name!r}. Available: "
                f"{', '.join(splits)} (TFDS slicing such as "
                f"'{splits[0]}[:10%]' works too)."
            )


def url_reachable(url, timeout=_PROBE_TIMEOUT):
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
    probe = TFDS_DATASETS[name]["probe"]
    host = probe.split("/")[2] if probe.count("/") >= 2 else probe
    if download is False:
        reasons = ("`download=False`", "--no-download")
    elif download is None and not url_reachable(probe):
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


def box_mask(box, size):
    """A uint8 mask of a TFDS box `(ymin, xmin, ymax, xmax)`.

    `size` is an int or `(height, width)`.
    """
    import tensorflow as tf

    height, width = parse_image_size(size)
    rows = (tf.range(height, dtype=tf.float32) + 0.5) / height
    cols = (tf.range(width, dtype=tf.float32) + 0.5) / width
    rows = (rows >= box[0]) & (rows <= box[2])
    cols = (cols >= box[1]) & (cols <= box[3])
    return tf.cast(rows[:, None] & cols[None, :], tf.uint8)


def tfds_source(
    name, split, image_size, with_masks, shuffle, data_dir, seed, download
):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    spec = TFDS_DATASETS[name]
    check_tfds_split(name, split, spec["splits"])
    if with_masks and spec["masks"] is None:
        raise no_masks_error(name)
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
            raise no_masks_error(name, " (this version has no masks)")
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
            return image, label, box_mask(example["bbox"], image_size)
        values = example["segmentation_mask"][..., 0]
        if mask_kind == "trimap":  # 1 pet, 2 background, 3 border.
            foreground = (values == 1) | (values == 3)
        else:  # Annotators' average in 0..255.
            foreground = values >= 128
        return image, label, resize_mask(foreground, image_size)

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
