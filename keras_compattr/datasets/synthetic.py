"""Embedded synthetic data with exact ground-truth masks.

Each class is a small binary glyph (a 5x5 pattern drawn as a two-colour
tile). An image holds one or two tiles of its class glyph (the evidence)
on a cluttered background with distractor tiles of glyphs that belong to no
class, in random colours. Colour and position carry no class information;
only the glyph pattern does, so a faithful map must cover the class tiles.
"""

import numpy as np

VARIANTS = ("one_part", "two_part", "varied")
MAX_VARIED_PARTS = 3
GLYPH_CELLS = 5
_GLYPH_SEED = 20240727  # Fixed: every split shares the same class glyphs.


def _random_glyphs(rng, count, avoid=(), min_distance=7, max_tries=100000):
    """Random 5x5 binary glyphs, pairwise (and to `avoid`) far apart."""
    glyphs = []
    tries = 0
    while len(glyphs) < count:
        tries += 1
        if tries > max_tries:
            raise ValueError(
                f"Could not draw {count} distinct glyphs; use fewer classes."
            )
        glyph = rng.random((GLYPH_CELLS, GLYPH_CELLS)) < 0.5
        if not 8 <= glyph.sum() <= 17:
            continue
        others = list(avoid) + glyphs
        if all(np.sum(glyph != other) >= min_distance for other in others):
            glyphs.append(glyph)
    return np.stack(glyphs)


def class_glyphs(num_classes):
    """The `(num_classes, 5, 5)` boolean glyphs that define the classes.

    Args:
        num_classes: int.

    Returns:
        A boolean array; the same for every call with the same argument.
    """
    return _random_glyphs(np.random.default_rng(_GLYPH_SEED), num_classes)


def _distractor_glyphs(num_classes, count=48):
    rng = np.random.default_rng(_GLYPH_SEED + 1)
    return _random_glyphs(
        rng, count, avoid=class_glyphs(num_classes), min_distance=6
    )


def _tile(glyph, cell, rng):
    """Renders a glyph as an RGB tile with two random, contrasting colours."""
    on = rng.uniform(0.0, 1.0, 3)
    off = rng.uniform(0.0, 1.0, 3)
    while np.abs(on - off).sum() < 0.9:
        off = rng.uniform(0.0, 1.0, 3)
    pattern = np.kron(glyph, np.ones((cell, cell), bool))[..., None]
    return np.where(pattern, on, off).astype("float32")


def _background(rng, size):
    """A smooth random colour field with pixel noise."""
    coarse = rng.uniform(0.0, 1.0, (4, 4, 3))
    positions = np.linspace(0, 3, size)
    lower = np.floor(positions).astype(int).clip(0, 2)
    frac = (positions - lower)[:, None]
    rows = (
        coarse[lower] * (1 - frac[:, :, None])
        + coarse[lower + 1] * (frac[:, :, None])
    )
    frac_c = (positions - lower)[None, :, None]
    field = rows[:, lower] * (1 - frac_c) + rows[:, lower + 1] * frac_c
    noise = rng.normal(0.0, 0.06, (size, size, 3))
    return np.clip(field + noise, 0.0, 1.0).astype("float32")


def _place(rng, size, tile, count, gap=2, restarts=200, tries=50):
    """Top-left corners of `count` non-overlapping tiles."""
    for _ in range(restarts):
        corners = []
        for _ in range(tries):
            r, c = rng.integers(0, size - tile + 1, 2)
            if all(
                abs(r - r2) >= tile + gap or abs(c - c2) >= tile + gap
                for r2, c2 in corners
            ):
                corners.append((int(r), int(c)))
                if len(corners) == count:
                    return corners
    raise ValueError(
        f"Cannot fit {count} tiles of {tile} px in a {size} px image: use a "
        "larger image_size or fewer distractors."
    )


def _place_sized(rng, size, tiles, gap=2):
    """Top-left corners of non-overlapping square tiles of given sizes."""
    # Largest first: they are the hardest to fit.
    order = sorted(range(len(tiles)), key=lambda i: -tiles[i])
    placed = _place_in_order(rng, size, [tiles[i] for i in order], gap)
    corners = [None] * len(tiles)
    for i, corner in zip(order, placed):
        corners[i] = corner
    return corners


def _place_in_order(rng, size, tiles, gap, restarts=200, tries=50):
    for _ in range(restarts):
        corners = []
        for tile in tiles:
            for _ in range(tries):
                r, c = (int(v) for v in rng.integers(0, size - tile + 1, 2))
                if all(
                    r >= r2 + t2 + gap
                    or r2 >= r + tile + gap
                    or c >= c2 + t2 + gap
                    or c2 >= c + tile + gap
                    for (r2, c2), t2 in zip(corners, tiles)
                ):
                    corners.append((r, c))
                    break
            else:
                break
        if len(corners) == len(tiles):
            return corners
    raise ValueError(
        f"Cannot fit tiles of {tiles} px in a {size} px image: use a "
        "larger image_size or fewer distractors."
    )


def synthetic(
    num_images=1000,
    image_size=48,
    num_classes=4,
    variant="two_part",
    num_distractors=2,
    background_swap=False,
    seed=0,
):
    """Generates images with exact ground-truth masks.

    Args:
        num_images: int, number of images.
        image_size: int, height and width in pixels (at least 24).
        num_classes: int, number of classes (at most 12).
        variant: `"one_part"` (one evidence tile per image), `"two_part"`
            (two separate tiles of the same class, each alone sufficient to
            classify: a complete map must cover both) or `"varied"` (one
            to three evidence tiles per image, each of one of three sizes,
            with distractors of random sizes too: the evidence area varies
            from image to image by a factor of up to 12, so no single area
            budget fits every image).
        num_distractors: int, tiles of non-class glyphs per image.
        background_swap: bool, also return `"swapped_images"`: the same
            evidence tiles on the background (with its distractors) of an
            image of another class, for robustness tests.
        seed: int, seed of the images; the class glyphs do not depend on
            it, so splits drawn with different seeds share classes.

    Returns:
        A dict of NumPy arrays: `"images"` `(N, S, S, 3)` float32 in
        `[0, 1]`, `"labels"` `(N,)` int32, `"masks"` `(N, S, S)` float32
        in `{0, 1}` (union of the evidence tiles), `"part_masks"`
        `(N, P, S, S)` float32 (one mask per evidence tile; for
        `"varied"`, `P = 3` and the masks of absent tiles are empty), and
        `"swapped_images"` when asked; plus `"class_names"`, a list.

    Example:

    >>> from keras_compattr.datasets import synthetic
    >>> data = synthetic(num_images=8, image_size=32, seed=0)
    >>> data["images"].shape, data["part_masks"].shape
    ((8, 32, 32, 3), (8, 2, 32, 32))
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"`variant` must be one of {VARIANTS}. Received: {variant!r}"
        )
    if image_size < 24:
        raise ValueError(
            f"`image_size` must be at least 24. Received: {image_size}"
        )
    if not 2 <= num_classes <= 12:
        raise ValueError(
            f"`num_classes` must be in [2, 12]. Received: {num_classes}"
        )
    num_parts = {"one_part": 1, "two_part": 2}.get(variant, MAX_VARIED_PARTS)
    cell = max(2, round(image_size / 24))
    cells = (cell, round(cell * 1.5), cell * 2)
    tile = GLYPH_CELLS * cell
    glyphs = class_glyphs(num_classes)
    distractors = _distractor_glyphs(num_classes)
    rng = np.random.default_rng(seed)

    labels = np.arange(num_images) % num_classes
    rng.shuffle(labels)
    images = np.empty((num_images, image_size, image_size, 3), "float32")
    backgrounds = np.empty_like(images)
    part_masks = np.zeros(
        (num_images, num_parts, image_size, image_size), "float32"
    )
    foregrounds = np.zeros_like(images)
    for i, label in enumerate(labels):
        background = _background(rng, image_size)
        if variant == "varied":
            parts = int(rng.integers(1, MAX_VARIED_PARTS + 1))
            tile_cells = rng.choice(cells, parts + num_distractors)
            while np.sum((tile_cells * GLYPH_CELLS) ** 2) > 0.35 * (
                image_size**2
            ):
                tile_cells = rng.choice(cells, parts + num_distractors)
            corners = _place_sized(
                rng, image_size, [k * GLYPH_CELLS for k in tile_cells]
            )
        else:
            parts = num_parts
            tile_cells = np.full(parts + num_distractors, cell)
            corners = _place(rng, image_size, tile, parts + num_distractors)
        for (r, c), k in zip(corners[parts:], tile_cells[parts:]):
            glyph = distractors[rng.integers(len(distractors))]
            t = k * GLYPH_CELLS
            background[r : r + t, c : c + t] = _tile(glyph, k, rng)
        backgrounds[i] = background
        image = background.copy()
        for p, ((r, c), k) in enumerate(zip(corners[:parts], tile_cells)):
            t = k * GLYPH_CELLS
            image[r : r + t, c : c + t] = _tile(glyphs[label], k, rng)
            part_masks[i, p, r : r + t, c : c + t] = 1.0
        foregrounds[i] = image
        images[i] = image

    data = {
        "images": images,
        "labels": labels.astype("int32"),
        "masks": part_masks.max(axis=1),
        "part_masks": part_masks,
        "class_names": [f"glyph_{k}" for k in range(num_classes)],
    }
    if background_swap:
        swapped = np.empty_like(images)
        for i, label in enumerate(labels):
            others = np.flatnonzero(labels != label)
            j = others[rng.integers(len(others))]
            keep = data["masks"][i][..., None] > 0
            swapped[i] = np.where(keep, foregrounds[i], backgrounds[j])
        data["swapped_images"] = swapped
    return data


def as_dataset(data, batch_size=32, with_masks=False, shuffle=False, seed=0):
    """Wraps the output of `synthetic` in a batched `tf.data.Dataset`.

    Args:
        data: dict returned by `synthetic`.
        batch_size: int.
        with_masks: bool, yield `(images, labels, masks)` instead of
            `(images, labels)`.
        shuffle: bool, shuffle every epoch.
        seed: int, shuffle seed.

    Returns:
        A prefetched `tf.data.Dataset`.

    Example:

    >>> from keras_compattr.datasets import as_dataset, synthetic
    >>> ds = as_dataset(synthetic(num_images=8, image_size=32), batch_size=4)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(4, 32, 32, 3), (4,)]
    """
    import tensorflow as tf

    elements = (data["images"], data["labels"])
    if with_masks:
        elements += (data["masks"],)
    ds = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        ds = ds.shuffle(len(data["labels"]), seed=seed)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
