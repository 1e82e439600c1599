"""Splits of an image folder, and the shares held out of its training images.

A folder without a validation (or test) folder gets that split held out of
its training images: a share of each class, chosen by a hash of each
file's path and a seed, so every call sees the same split.
"""

import hashlib
import os

_SPLIT_FOLDERS = ("train", "val", "validation", "test")
# Split names of a folder, and the folders that can hold each.
_FOLDER_SPLITS = {
    "train": ("train",),
    "val": ("val", "validation"),
    "validation": ("validation", "val"),
    "test": ("test",),
}


def folder_split(path, split, holdout):
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


def hold_out(paths, labels, share, carved, holdout, split_seed):
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
