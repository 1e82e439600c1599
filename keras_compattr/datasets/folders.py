"""Image folders: one sub-folder of images per class, masks mirrored.

`keras_compattr.datasets.load("folder:PATH")` reads them through
`folder_source`; which images make each split is decided in
`keras_compattr.datasets.holdout`.
"""

import os
import warnings

import numpy as np

from keras_compattr.datasets.checks import BadImageError
from keras_compattr.datasets.checks import no_masks_error
from keras_compattr.datasets.holdout import folder_split
from keras_compattr.datasets.holdout import hold_out
from keras_compattr.datasets.preprocessing import resize_mask

# What `tf.io.decode_image` decodes (JPEG, PNG, GIF, BMP, WebP).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_MASK_EXTENSIONS = (".npy", ".png", ".bmp", ".gif", ".jpg", ".jpeg")
# Decoded files: (path, modification time, size) -> problem or None.
_DECODED = {}
# Warnings given (each split of a folder lists the same files).
_WARNED = set()


def _list_images(folder):
    """Sorted paths (relative to `folder`) of the images below `folder`.

    Returns:
        `(images, others)`: the image files, and the other files that are
        not hidden (names starting with "."), such as `.tiff` or `.heic`
        photos that cannot be read.
    """
    found, others = [], []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            relative = os.path.relpath(os.path.join(root, file), folder)
            if file.lower().endswith(IMAGE_EXTENSIONS):
                found.append(relative)
            elif not file.startswith("."):
                others.append(relative)
    return found, others


def _decode_problem(path):
    """Why `tf.io.decode_image` cannot decode the file `path`, or `None`."""
    import tensorflow as tf

    try:
        status = os.stat(path)
    except OSError as error:
        return error.strerror or str(error)
    key = (os.path.abspath(path), status.st_mtime_ns, status.st_size)
    if key not in _DECODED:
        if status.st_size == 0:
            problem = "the file is empty (0 bytes)"
        else:
            try:
                data = tf.io.read_file(path)
                tf.io.decode_image(data, channels=3, expand_animations=False)
                problem = None
            except (tf.errors.OpError, ValueError) as error:
                problem = _short_reason(error)
        _DECODED[key] = problem
    return _DECODED[key]


def _short_reason(error):
    """TensorFlow's reason without its op name and device prefix."""
    text = getattr(error, "message", None) or str(error)
    text = text.split("}} ", 1)[-1].split(" [Op:", 1)[0].strip()
    if text.startswith("Unknown image file format"):
        return "not a JPEG, PNG, GIF, BMP or WebP file"
    return text.rstrip(".") or type(error).__name__


def find_bad_images(paths, max_workers=8):
    """The image files among `paths` that cannot be decoded.

    Each file is decoded once with `tf.io.decode_image`, as the data set
    decodes it (the result is kept until the file changes).

    Args:
        paths: list of file paths.
        max_workers: int, files decoded at once.

    Returns:
        A list of `(path, reason)`, in the order of `paths`.
    """
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(max_workers, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(workers) as pool:
        problems = list(pool.map(_decode_problem, paths))
    return [(p, why) for p, why in zip(paths, problems) if why is not None]


def _bad_image_error(bad, total):
    path, reason = bad[0]
    more = (
        f" ({len(bad) - 1} more of the {total} files cannot be decoded "
        f"either, such as {bad[1][0]!r})"
        if len(bad) > 1
        else ""
    )
    text = (
        f"Cannot decode the image file {path!r}: {reason}{more}. Replace or "
        "delete it (re-save it as JPEG or PNG), or "
    )
    return BadImageError(
        text + "pass `skip_bad_images=True` to leave such files out.",
        text + "pass --skip-bad-images to leave such files out.",
    )


def _class_files(image_root, class_names, skip_bad_images):
    """Paths, labels and the files left out, with the folders checked.

    Raises `ValueError` for fewer than two classes, a class without a
    readable image, and (unless `skip_bad_images`) a file that cannot be
    decoded.
    """
    if len(class_names) < 2:
        raise ValueError(
            f"Image folder {image_root!r} has one class sub-folder "
            f"({class_names[0]!r}); a classifier needs at least 2 classes: "
            "add a sub-folder of images for each other class."
        )
    files, others = {}, []
    for class_name in class_names:
        found, other = _list_images(os.path.join(image_root, class_name))
        files[class_name] = [os.path.join(class_name, p) for p in found]
        others += [os.path.join(class_name, p) for p in other]
    every = [p for name in class_names for p in files[name]]
    bad = find_bad_images([os.path.join(image_root, p) for p in every])
    if bad and not skip_bad_images:
        raise _bad_image_error(bad, len(every))
    unreadable = {os.path.relpath(p, image_root) for p, _ in bad}
    empty = []
    for class_name in class_names:
        files[class_name] = [
            p for p in files[class_name] if p not in unreadable
        ]
        if not files[class_name]:
            empty.append(class_name)
    if empty:
        folder = os.path.join(image_root, empty[0])
        held = [p for p in others if p.startswith(empty[0] + os.sep)]
        found = (
            f", only {len(held)} file(s) of other types such as {held[0]!r}"
            if held
            else ""
        )
        raise ValueError(
            f"Class folder {folder!r} holds no readable image "
            f"({', '.join(IMAGE_EXTENSIONS)}{found})"
            + (
                f", and so do {len(empty) - 1} more class folder(s)"
                if len(empty) > 1
                else ""
            )
            + ": add images of the class, or remove the folder."
        )
    paths, labels = [], []
    for index, class_name in enumerate(class_names):
        paths += files[class_name]
        labels += [index] * len(files[class_name])
    return paths, labels, sorted(unreadable), others


def _warn_left_out(image_root, skipped, others):
    """Warns (once per folder and message) about the files left out."""
    messages = []
    if skipped:
        messages.append(
            f"Left out {len(skipped)} image file(s) of {image_root!r} that "
            f"cannot be decoded, such as {skipped[0]!r}."
        )
    if others:
        kinds = sorted({os.path.splitext(p)[1].lower() or p for p in others})
        messages.append(
            f"Left out {len(others)} file(s) of {image_root!r} that are not "
            f"{', '.join(IMAGE_EXTENSIONS)} images ({', '.join(kinds[:5])}), "
            f"such as {others[0]!r}: convert the photos among them to JPEG "
            "or PNG to use them."
        )
    for message in messages:
        if (os.path.abspath(image_root), message) not in _WARNED:
            _WARNED.add((os.path.abspath(image_root), message))
            warnings.warn(message, stacklevel=4)


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
    skip_bad_images=False,
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
    paths, labels, skipped, others = _class_files(
        image_root, class_names, skip_bad_images
    )
    _warn_left_out(image_root, skipped, others)
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
        "skipped_images": skipped,
        "other_files": others,
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
