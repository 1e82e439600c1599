import os

import numpy as np
from matplotlib.figure import Figure

from keras_compattr.visualization import plot_explanations


def test_plot_explanations_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, 1, (3, 32, 32, 3)) * 255).astype("uint8")
    masks = rng.uniform(0, 1, (3, 32, 32))
    path = os.path.join(tmp_path, "grid.png")
    figure = plot_explanations(
        images,
        masks,
        labels=[0, 1, 2],
        predictions=np.eye(3)[[0, 2, 2]],
        class_names=["a", "b", "c"],
        masked_out_confidence=[0.1, 0.2, 0.3],
        save_path=path,
    )
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 * 4 + 1  # panels and the colour bar
    assert figure.axes[0].get_ylabel() == "true: a\npred: a"
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_explanations_rejects_mismatched_masks():
    import pytest

    with pytest.raises(ValueError, match="masks"):
        plot_explanations(np.zeros((2, 8, 8, 3)), np.zeros((2, 4, 4)))
