"""Argument checks and errors shared by the data set loaders."""

import numpy as np


class DatasetNotAvailableError(FileNotFoundError):
    """A data set is not prepared locally and cannot be downloaded now.

    `str(error)` words its advice for Python callers (`download=True`,
    `data_dir=DIR`); `cli_message` gives the same advice for the command
    line (`--download`, `--data-dir DIR`).
    """

    cli_message = None


class BadImageError(ValueError):
    """An image file of a folder data set cannot be decoded.

    `str(error)` names the file and words its advice for Python callers
    (`skip_bad_images=True`); `cli_message` gives the same advice for the
    command line (`--skip-bad-images`).
    """

    def __init__(self, message, cli_message):
        super().__init__(message)
        self.cli_message = cli_message


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int. Received: {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1. Received: {value}")


def parse_image_size(value):
    """`(height, width)` of an int or a `(height, width)` pair.

    Example:

    >>> from keras_compattr.datasets.checks import parse_image_size
    >>> parse_image_size(32), parse_image_size((24, 48))
    ((32, 32), (24, 48))
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                "`image_size` must be an int or a (height, width) pair. "
                f"Received: {value!r}"
            )
        for side in value:
            check_positive_int(side, "image_size")
        return int(value[0]), int(value[1])
    check_positive_int(value, "image_size")
    return int(value), int(value)


def no_masks_error(name, hint=""):
    return ValueError(
        f"The {name!r} data set has no masks: use `with_masks=False`. "
        "Data sets with masks: synthetic, oxford_iiit_pet, "
        f"caltech_birds2011, folder:PATH with mask_dir.{hint}"
    )
