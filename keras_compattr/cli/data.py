"""Which data the commands read: data set names, splits, NumPy arrays."""

import os

from keras_compattr.cli.common import CommandError

# `keras_compattr.datasets.load` arguments that read a split's description.
INFO_ONLY = {"batch_size": 1, "return_info": True, "shuffle": False}


def is_synthetic(dataset):
    """Whether `dataset` names the embedded synthetic data."""
    return dataset.split("/")[0] == "synthetic"


def validation_split(dataset):
    """The split to validate on.

    A folder without a validation folder gets one held out of its training
    images by `keras_compattr.datasets.load`.
    """
    if is_synthetic(dataset):
        return "test"
    if dataset.startswith("folder:"):
        root = dataset[len("folder:") :]
        return next(
            (
                split
                for split in ("val", "validation")
                if os.path.isdir(os.path.join(root, split))
            ),
            "val",
        )
    return "validation" if dataset == "imagenette" else "test"


def split_note(split, info):
    """Which images a split holds, in words: held out or not."""
    if info.get("held_out"):
        return "held out of the training images by file name, never trained on"
    if split.strip().startswith("train"):
        return "the training images, not held out"
    return f"the data set's own {split!r} split, not trained on"


def load_arrays(
    dataset,
    split,
    image_size,
    num_images,
    seed,
    data_dir=None,
    download=None,
    skip_bad_images=False,
):
    """Images, labels and any ground truth of a split, as NumPy arrays.

    Also `"num_examples"` (the split's size) and `"note"` (which images
    these are: held out or not).
    """
    import numpy as np

    height, width = image_size
    if is_synthetic(dataset):
        from keras_compattr.datasets import synthetic

        variant = dataset.split("/", 1)[1] if "/" in dataset else "two_part"
        if split not in ("train", "test"):
            raise CommandError(
                f"Synthetic data has splits 'train' and 'test', not {split!r}."
            )
        if height != width:
            raise CommandError(
                f"Synthetic data is square; the model takes {height}x{width}."
            )
        data = synthetic(
            num_images,
            height,
            variant=variant,
            background_swap=True,
            seed=seed + (1 if split == "test" else 0),
        )
        data["num_examples"] = num_images
        data["note"] = split_note(split, {}) + (
            f" (generated with seed {seed + 1})" if split == "test" else ""
        )
        return data
    from keras_compattr.datasets import load

    source = {"data_dir": data_dir, "download": download}
    if dataset.startswith("folder:"):
        source["skip_bad_images"] = skip_bad_images
    _, info = load(
        dataset,
        split=split,
        image_size=image_size,
        **source,
        **INFO_ONLY,
    )
    ds = load(
        dataset,
        split=split,
        image_size=image_size,
        batch_size=None,
        with_masks=info["has_masks"],
        shuffle=False,
        seed=seed,
        **source,
    ).take(num_images)
    columns = list(zip(*[tuple(np.asarray(t) for t in e) for e in ds]))
    if not columns:
        raise CommandError(f"{dataset!r} split {split!r} holds no image.")
    data = {
        "images": np.stack(columns[0]).astype("float32"),
        "labels": np.asarray(columns[1], "int32"),
        "class_names": info["class_names"],
        "num_examples": info["num_examples"],
        "note": split_note(split, info),
    }
    if len(columns) > 2:
        data["masks"] = np.stack(columns[2]).astype("float32")
    return data


def load_splits(args, size):
    """`(train, validation or None, train info, validation in words)`."""
    from keras_compattr.datasets import load

    sizes = {}
    if is_synthetic(args.dataset):
        sizes = {"train": args.train_images, "test": args.test_images}
    common = dict(
        image_size=size,
        batch_size=args.batch_size,
        seed=args.seed,
        return_info=True,
        data_dir=args.data_dir,
        download=args.download,
    )
    if args.dataset.startswith("folder:"):
        common["skip_bad_images"] = args.skip_bad_images
    train, info = load(
        args.dataset,
        split="train",
        augment=args.augment,
        num_images=sizes.get("train"),
        **common,
    )
    split = args.validation_split or validation_split(args.dataset)
    try:
        validation, validation_info = load(
            args.dataset, split=split, num_images=sizes.get(split), **common
        )
    except ValueError as error:
        if args.validation_split or not args.dataset.startswith("folder:"):
            raise
        # A folder too small to hold images out: train, and say so.
        return train, None, info, f"none ({' '.join(str(error).split())})"
    note = (
        f"{split!r}, {validation_info['num_examples']} images, "
        f"{split_note(split, validation_info)}"
    )
    return train, validation, info, note


def shown_examples(data, num_classes, count=6, max_batches=16):
    """`count` images and labels of `data`, spread over the classes."""
    import numpy as np

    by_class = {}
    for index, batch in enumerate(data):
        if index >= max_batches:
            break
        for image, label in zip(np.asarray(batch[0]), np.asarray(batch[1])):
            by_class.setdefault(int(label), []).append(image)
        if (
            len(by_class) >= min(num_classes, count)
            and sum(len(v) for v in by_class.values()) >= count * 2
        ):
            break
    chosen = []
    queues = [by_class[k] for k in sorted(by_class)]
    while len(chosen) < count and any(queues):
        for label, queue in zip(sorted(by_class), queues):
            if queue and len(chosen) < count:
                chosen.append((queue.pop(0), label))
    images = np.stack([image for image, _ in chosen])
    labels = np.asarray([label for _, label in chosen], "int32")
    return images, labels
