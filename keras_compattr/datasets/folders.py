"""Image folders: one sub-folder of images per class, masks mirrored.

`keras_compattr.datasets.load("folder:PATH")` reads them through
`folder_source`; which images make each split is decided in
`keras_compattr.datasets.holdout`.
"""

import os

import numpy as np

from keras_compattr.datasets.checks import no_masks_error
from keras_compattr.datasets.holdout import folder_split
from keras_compattr.datasets.holdout import hold_out
from keras_compattr.datasets.preprocessing import resize_mask

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_MASK_EXTENSIONS = (".npy", ".png", ".bmp", ".gif", ".jpg", ".jpeg")


def _list_images(folder):
    """Sorted paths (relative to `folder`) of the images below `folder`."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for file in sorted(files):
            if file.lower().endswith(IMAGE_EXTENSIONS):
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


def folder_source(
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
    image_root, share, carved = folder_split(path, split, holdout)
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
            f"({', '.join(IMAGE_EXTENSIONS)})."
        )
    paths, labels = hold_out(paths, labels, share, carved, holdout, split_seed)
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
            raise no_masks_error(
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
        return image, label, tf.cast(resize_mask(mask, image_size), "float32")

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
