import numpy as np
import pytest

from keras_compattr.datasets import as_dataset
from keras_compattr.datasets import class_glyphs
from keras_compattr.datasets import synthetic


def _tile_box(mask):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _glyph_of(image, box, cell):
    r0, r1, c0, c1 = box
    tile = image[r0:r1, c0:c1]
    corner = tile[0, 0]
    # The tile has two colours; cells matching the corner colour form one
    # side of the glyph. Compare up to swapping the two colours.
    cells = tile[::cell, ::cell]
    return np.all(np.isclose(cells, corner), axis=-1)


@pytest.mark.parametrize("variant,parts", [("one_part", 1), ("two_part", 2)])
def test_part_masks_mark_exactly_the_class_glyph_tiles(variant, parts):
    data = synthetic(num_images=20, image_size=48, variant=variant, seed=3)
    glyphs = class_glyphs(4)
    assert data["part_masks"].shape == (20, parts, 48, 48)
    np.testing.assert_array_equal(data["masks"], data["part_masks"].max(axis=1))
    cell = 2
    for image, label, part_masks in zip(
        data["images"], data["labels"], data["part_masks"]
    ):
        for mask in part_masks:
            box = _tile_box(mask > 0)
            r0, r1, c0, c1 = box
            # Each part is one solid 10x10 tile.
            assert (r1 - r0, c1 - c0) == (10, 10)
            assert mask[r0:r1, c0:c1].all() and mask.sum() == 100
            seen = _glyph_of(image, box, cell)
            expected = glyphs[label]
            assert np.array_equal(seen, expected) or np.array_equal(
                seen, ~expected
            )
    if parts == 2:
        overlap = data["part_masks"][:, 0] * data["part_masks"][:, 1]
        assert overlap.sum() == 0


def test_values_labels_and_determinism():
    a = synthetic(num_images=40, image_size=32, num_classes=4, seed=7)
    b = synthetic(num_images=40, image_size=32, num_classes=4, seed=7)
    c = synthetic(num_images=40, image_size=32, num_classes=4, seed=8)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert not np.array_equal(a["images"], c["images"])
    assert a["images"].dtype == np.float32
    assert a["images"].min() >= 0.0 and a["images"].max() <= 1.0
    np.testing.assert_array_equal(np.bincount(a["labels"]), [10] * 4)
    assert set(np.unique(a["masks"])) == {0.0, 1.0}
    assert a["class_names"] == ["glyph_0", "glyph_1", "glyph_2", "glyph_3"]


def test_class_glyphs_do_not_depend_on_the_seed_and_are_distinct():
    glyphs = class_glyphs(12)
    np.testing.assert_array_equal(glyphs, class_glyphs(12))
    for i in range(12):
        for j in range(i):
            assert np.sum(glyphs[i] != glyphs[j]) >= 7


def test_background_swap_keeps_foreground_and_changes_background():
    data = synthetic(num_images=12, image_size=32, background_swap=True, seed=1)
    swapped = data["swapped_images"]
    inside = data["masks"][..., None] > 0
    np.testing.assert_array_equal(
        np.where(inside, swapped, 0), np.where(inside, data["images"], 0)
    )
    outside_change = np.abs(swapped - data["images"]) * (~inside)
    assert outside_change.sum(axis=(1, 2, 3)).min() > 1.0


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="variant"):
        synthetic(num_images=2, variant="three_part")
    with pytest.raises(ValueError, match="image_size"):
        synthetic(num_images=2, image_size=16)
    with pytest.raises(ValueError, match="num_classes"):
        synthetic(num_images=2, num_classes=20)


def test_as_dataset_yields_batches_with_masks():
    data = synthetic(num_images=10, image_size=32)
    batches = list(as_dataset(data, batch_size=4, with_masks=True))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    images, labels, masks = batches[0]
    assert tuple(masks.shape) == (4, 32, 32)
    np.testing.assert_array_equal(labels.numpy(), data["labels"][:4])
