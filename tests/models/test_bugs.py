from __future__ import annotations

import pytest
import torch

from deepscope.errors import InputError
from deepscope.models import bugs
from deepscope.testing import blobs


@pytest.fixture(scope="module")
def data():
    # several styles per label, like real digits: room for a narrow subset
    return blobs(n=600, num_classes=3, shape=(1, 6, 6), noise=0.1, styles=5, seed=0)


def _mean_pairwise_distance(x: torch.Tensor) -> float:
    f = x.flatten(1)
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def _is_row_of(rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """For each row, whether it occurs exactly in ``table``."""
    return (rows[:, None, :] == table[None, :, :]).all(-1).any(1)


def _label_rows(ds, label):
    return ds.x[ds.y == label].flatten(1)


def test_registry():
    assert bugs.names() == ["underfit", "overfit"]
    assert bugs.get("overfit") is bugs.overfit


def test_underfit_counts_and_untouched_labels(data):
    out, recipe = bugs.underfit(data, 1, keep=0.1, seed=0)
    n1 = int((data.y == 1).sum())
    assert int((out.y == 1).sum()) == round(0.1 * n1) == recipe.params["n_label_kept"]
    for other in (0, 2):
        assert torch.equal(_label_rows(out, other), _label_rows(data, other))
    assert len(out) == len(data) - n1 + round(0.1 * n1) == recipe.params["n_after"]
    # kept samples are genuine samples of label 1
    kept = _label_rows(out, 1)
    assert bool(_is_row_of(kept, _label_rows(data, 1)).all())
    assert recipe.kind == "underfit" and recipe.label == 1
    assert out.info["bug"] == recipe.to_dict()
    assert "kept 20 of its 200" in recipe.description


def test_underfit_mislabel(data):
    out, recipe = bugs.underfit(data, 0, keep=0.5, mislabel=0.3, seed=1)
    n_keep = round(0.5 * 200)
    n_mis = round(0.3 * n_keep)
    assert recipe.params["n_mislabelled"] == n_mis
    assert int((out.y == 0).sum()) == n_keep - n_mis
    # the relabelled samples are label-0 images that now carry another label
    is_label0_image = _is_row_of(out.x.flatten(1), _label_rows(data, 0))
    assert int((is_label0_image & (out.y != 0)).sum()) == n_mis
    assert int(is_label0_image.sum()) == n_keep
    assert len(out) == len(data) - 200 + n_keep


def test_bugs_are_reproducible(data):
    for fn, kw in ((bugs.underfit, {"mislabel": 0.2}), (bugs.overfit, {"narrow": "anchor"}),
                   (bugs.overfit, {})):
        a, ra = fn(data, 2, seed=5, **kw)
        b, rb = fn(data, 2, seed=5, **kw)
        c, _ = fn(data, 2, seed=6, **kw)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and ra == rb
        assert not torch.equal(a.x, c.x)


def test_overfit_keeps_a_narrower_subset(data):
    n2 = int((data.y == 2).sum())
    for narrow in ("prototype", "anchor"):
        out, recipe = bugs.overfit(data, 2, keep=0.1, narrow=narrow, seed=0)
        kept = _label_rows(out, 2)
        assert len(kept) == round(0.1 * n2) == recipe.params["n_label_kept"]
        for other in (0, 1):
            assert torch.equal(_label_rows(out, other), _label_rows(data, other))
        g = torch.Generator().manual_seed(0)
        random_subsets = [
            _label_rows(data, 2)[torch.randperm(n2, generator=g)[: len(kept)]] for _ in range(20)
        ]
        spread_random = min(_mean_pairwise_distance(r) for r in random_subsets)
        assert _mean_pairwise_distance(kept) < 0.9 * spread_random, narrow
    assert recipe.params["anchor_index"] >= 0


def test_overfit_is_narrower_on_real_digits(mnist_slice):
    train, _ = mnist_slice
    out, _ = bugs.overfit(train, 5, keep=0.1, seed=0)
    kept = _label_rows(out, 5)
    everything = _label_rows(train, 5)
    assert _mean_pairwise_distance(kept) < 0.8 * _mean_pairwise_distance(everything)


def test_overfit_prototype_is_the_largest_kmeans_cluster(data):
    _, recipe = bugs.overfit(data, 0, keep=0.25, seed=0)
    assert recipe.params["clusters"] == 4
    assert 0 < recipe.params["cluster_size"] <= 200


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centres])
    found, assign = bugs.kmeans(pts, 3, generator=torch.Generator().manual_seed(1))
    assert torch.cdist(found, centres).min(1).values.max() < 0.2
    assert sorted(torch.bincount(assign).tolist()) == [50, 50, 50]


def test_bad_arguments(data):
    with pytest.raises(InputError, match="label"):
        bugs.underfit(data, 3)
    with pytest.raises(InputError, match="keep"):
        bugs.underfit(data, 0, keep=1.5)
    with pytest.raises(InputError, match="mislabel"):
        bugs.underfit(data, 0, mislabel=-0.1)
    with pytest.raises(InputError, match="narrow"):
        bugs.overfit(data, 0, narrow="widest")
    with pytest.raises(InputError, match="Dataset"):
        bugs.overfit((data.x, data.y), 0)


def test_injected_bug_is_the_new_name_and_kmeans_is_shared():
    from deepscope.models import cluster

    assert bugs.BugRecipe is bugs.InjectedBug
    assert bugs.kmeans is cluster.kmeans
