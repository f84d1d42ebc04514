import numpy as np
import pytest

from numcnn import models, nn, viz


def test_visualize_grid_scales_each_image_and_tiles():
    images = np.stack([np.full((2, 2, 1), v, float) + np.eye(2)[..., None] for v in range(5)])
    grid = viz.visualize_grid(images, ubound=255.0, padding=1)
    assert grid.shape == (3 * 2 + 2, 3 * 2 + 2, 1)
    np.testing.assert_allclose(grid[:2, :2, 0], 255 * np.eye(2))
    assert viz.vis_grid(images).max() == 1.0


def test_plots_return_figures_and_write_pngs(tmp_path):
    history = [{"loss": 1.0 / (e + 1), "train_acc": e / 10, "val_acc": e / 12} for e in range(5)]
    for figure, name in (
        (viz.plot_history(history, tmp_path / "h.png"), "h.png"),
        (viz.plot_filters(np.random.default_rng(0).standard_normal((16, 3, 5, 5)), tmp_path / "f.png"), "f.png"),
        (viz.plot_confusion_matrix(np.eye(3, dtype=int) * 5, ["a", "b", "c"], tmp_path / "c.png"), "c.png"),
    ):
        assert figure.axes and (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_confusion_matrix_counts():
    counts = viz.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3)
    np.testing.assert_array_equal(counts, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])


def test_feature_maps_follow_the_network(tmp_path):
    nn.manual_seed(0)
    net = models.build("smallcnn", in_channels=1, width=4)
    maps = viz.feature_maps(net, np.zeros((1, 16, 16), np.float32))
    assert [m.shape for _, m in maps] == [(4, 8, 8), (8, 4, 4), (8, 1, 1)]
    assert net.training  # mode restored
    figure = viz.plot_feature_maps(models.Classifier(net), np.ones((1, 16, 16), np.float32), tmp_path / "m.png")
    assert (tmp_path / "m.png").exists() and len(figure.axes) == 3 * 8
    with pytest.raises(ValueError, match="weights must have shape"):
        viz.plot_filters(np.zeros((3, 3)))
