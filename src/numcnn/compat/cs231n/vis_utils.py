"""CS231n's vis_utils.py."""

from ...viz import vis_grid, vis_nn, visualize_grid

__all__ = ["visualize_grid", "vis_grid", "vis_nn"]
