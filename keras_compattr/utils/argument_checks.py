"""Checks of the scalar and pixel-value arguments of explainers and metrics."""

import numpy as np


def _range_text(low, high, low_open, high_open):
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_number(
    value,
    name,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    integer=False,
):
    """Checks a scalar argument of a metric or explainer.

    Args:
        value: the argument: a Python or NumPy number, or a scalar tensor.
        name: the argument name used in messages.
        low: lower bound, or `None`.
        high: upper bound, or `None`.
        low_open: whether `low` itself is excluded.
        high_open: whether `high` itself is excluded.
        integer: whether the value must be a whole number.

    Returns:
        The value as a Python `int` (with `integer`) or `float`.

    Raises:
        TypeError: not a real number (a string, `None`, a bool, an array
            of several values).
        ValueError: NaN, infinite, not whole (with `integer`), or out of
            bounds.
    """
    kind = "an int" if integer else "a number"
    wanted = f"`{name}` must be {kind} " + _range_text(
        low, high, low_open, high_open
    )
    scalar = value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        scalar = np.asarray(value)
        scalar = scalar.item() if scalar.shape == () else value
    if isinstance(scalar, (bool, np.bool_)) or not isinstance(
        scalar, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{wanted}. Received {name}={value!r}.")
    number = float(scalar)
    bad = not np.isfinite(number) or (integer and number != round(number))
    if low is not None:
        bad = bad or number < low or (low_open and number == low)
    if high is not None:
        bad = bad or number > high or (high_open and number == high)
    if bad:
        raise ValueError(f"{wanted}. Received {name}={value!r}.")
    return int(number) if integer else number


def check_fill(fill, channels=None, name="fill"):
    """Checks a pixel value (a fill or baseline) for `[0, 1]` images.

    Args:
        fill: a number, or one number per channel, in `[0, 1]`.
        channels: int, the number of image channels; `None` skips the
            check of the number of values.
        name: the argument name used in messages.

    Returns:
        A float32 NumPy array: `(channels,)`, or the values as given when
        `channels` is `None`.

    Raises:
        TypeError: not numbers.
        ValueError: NaN or infinite values, values outside `[0, 1]`, or
            a number of values that is neither 1 nor `channels`.
    """
    values = np.asarray(fill)
    if (
        values.dtype == bool
        or not np.issubdtype(values.dtype, np.number)
        or np.iscomplexobj(values)
    ):
        raise TypeError(
            f"`{name}` must be a number or one number per channel, a pixel "
            f"value in [0, 1]. Received {name}={fill!r}."
        )
    values = values.astype("float64").reshape(-1)
    if values.size == 0:
        raise ValueError(f"`{name}` holds no value. Received {name}={fill!r}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"`{name}` must be finite: a pixel value in [0, 1]. "
            f"Received {name}={fill!r}."
        )
    if values.min() < 0.0 or values.max() > 1.0:
        raise ValueError(
            f"`{name}` must be a pixel value in [0, 1], the range images "
            "are read in (integer images are divided by 255): divide a "
            f"0..255 value by 255. Received {name}={fill!r}."
        )
    if channels is not None:
        if values.size == 1:
            values = np.repeat(values, channels)
        if values.size != channels:
            raise ValueError(
                f"`{name}` must be a float or one value per channel "
                f"({channels}). Received {values.size} values."
            )
    return values.astype("float32")


def check_fill_noise(noise, channels=None):
    """Checks the standard deviation of a noisy fill, in pixel units.

    Args:
        noise: a number, or one number per channel, in `[0, 1]`: the
            standard deviation of the Gaussian noise added to the fill
            value of `[0, 1]` images (0: a flat fill).
        channels: int, the number of image channels; `None` skips the
            check of the number of values.

    Returns:
        A float32 NumPy array, as `check_fill` returns it.

    Raises:
        TypeError: not numbers.
        ValueError: NaN, infinite or negative values, values above 1, or
            a number of values that is neither 1 nor `channels`.
    """
    if isinstance(noise, str):
        raise TypeError(
            "`fill_noise` must be a standard deviation in [0, 1] (pixel "
            f"units), or one per channel. Received fill_noise={noise!r}."
        )
    return check_fill(noise, channels, name="fill_noise")
