"""Heat maps and the three DHMs: exact values on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope.debug import heatmaps


def test_label_heatmaps_scale_each_row_to_unit_max():
    hm = heatmaps.label_heatmaps(np.array([[2.0, -4.0, 1.0], [0.5, 0.25, -0.1]]))
    np.testing.assert_allclose(hm, [[0.5, -1.0, 0.25], [1.0, 0.5, -0.2]])


def test_uf1_takes_the_closest_other_label_per_feature():
    hm = np.array([[1.0, 0.0, -1.0], [0.8, -1.0, 0.0], [-1.0, 0.1, -0.5]])
    # L=0: feature 0 → closest is label 1 (0.2); feature 1 → label 2 (-0.1); feature 2 → 2 (-0.5)
    np.testing.assert_allclose(heatmaps.uf1(hm, 0), [0.2, -0.1, -0.5])


def test_uf2_and_of():
    a, b = np.array([1.0, -0.5]), np.array([0.25, 0.5])
    np.testing.assert_allclose(heatmaps.uf2(a, b), [0.75, -1.0])
    mis = [np.array([0.5, 0.0]), np.array([-0.5, 0.75])]
    np.testing.assert_allclose(heatmaps.of(mis, b), [0.25, 0.25])


def test_subset_heatmap_points_at_the_subsets_distinguishing_feature():
    g = torch.Generator().manual_seed(0)
    n = 600
    y = torch.arange(n) % 3
    feats = torch.rand(n, 5, generator=g) * 0.1
    feats[torch.arange(n), y] += 1.0  # feature k marks class k
    subset = torch.zeros(n, dtype=torch.bool)
    subset[:30] = y[:30] == 0
    feats[subset, 4] += 1.0  # the subset additionally lights feature 4
    hm = heatmaps.subset_heatmaps(feats, y, 3, {"special": subset, "empty": torch.zeros_like(
        subset)}, seed=0)
    assert set(hm) == {"special"}  # empty subsets are skipped
    assert np.abs(hm["special"]).max() == pytest.approx(1.0)
    assert int(np.argmax(hm["special"])) == 4


def test_to_image_shapes():
    v = np.arange(2 * 3 * 4, dtype=float)
    assert heatmaps.to_image(v, (2, 3, 4)).shape == (3, 4)
    np.testing.assert_allclose(heatmaps.to_image(v, (2, 3, 4))[0, 0], (0 + 12) / 2)
    assert heatmaps.to_image(v, (2, 3, 4), reduce="tile").shape == (3, 10)
    assert heatmaps.to_image(v, (24,)).shape == (1, 24)
