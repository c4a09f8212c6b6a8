"""MODE on a text classifier: an injected under-fitting bug on one label of a token task is
diagnosed, and feature models / heat maps / MODE's selection work on sequence layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope import debug, models
from deepscope.data import Dataset
from deepscope.debug.feature_models import extract, layer_features
from deepscope.errors import InputError
from deepscope.models import bugs, zoo

KEYWORDS = (5, 6, 7)  # label k iff KEYWORDS[k] occurs


def keyword_task(n: int, *, seed: int, vocab: int = 40, length: int = 12) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(8, vocab, (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    x[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    y = torch.randint(0, 3, (n,), generator=g)
    where = (torch.rand(n, generator=g) * lengths).long()
    x[torch.arange(n), where] = torch.tensor(KEYWORDS)[y]
    return Dataset(x, y, ("a", "b", "c"), name="keywords", split=f"seed{seed}")


@pytest.fixture(scope="module")
def buggy():
    """A text CNN trained on the task with label 2 cut to 1 % of its training sentences."""
    train, test = keyword_task(900, seed=0), keyword_task(300, seed=1)
    injured, recipe = bugs.underfit(train, label=2, keep=0.01, seed=0)
    assert recipe.params["n_label_kept"] < 0.05 * recipe.params["n_label_before"]
    model = zoo.build("text-cnn-1.9m", num_classes=3, vocab_size=40, seed=0, embedding_dim=16,
                      filters=8)
    models.fit(model, injured, epochs=6, lr=5e-3, batch_size=32, progress=False, seed=0)
    return model, injured, test, keyword_task(600, seed=2)


def test_diagnose_finds_the_injected_underfit_label(buggy):
    model, train, test, _ = buggy
    diag = debug.diagnose(model, train, test)
    per_label = models.evaluate(model, test).per_label
    assert per_label[2] < 0.5 and min(per_label[0], per_label[1]) > 0.9
    assert [(b.label, b.kind) for b in diag.bugs] == [(2, "underfit")]


def test_feature_models_pool_sequence_layers_over_time(buggy):
    model, train, test, _ = buggy
    x = test.x[:20]
    with models.hooks.capture(model, ["convs", "embed"]) as acts:
        models.predict_logits(model, x)
    assert acts["convs"].shape == (20, 24, 12)  # N×D×T: 3 widths × 8 filters
    feats = extract(model, "convs", x)
    assert torch.allclose(feats, acts["convs"].amax(dim=2))  # max over time
    # N×T×D layouts pool over axis 1; appended padding leaves the features alone
    assert torch.equal(layer_features(acts["convs"].transpose(1, 2), x), feats)
    longer = torch.cat([x, torch.zeros(20, 7, dtype=torch.int64)], dim=1)
    assert torch.allclose(extract(model, "convs", longer), feats, atol=1e-5)

    fm = debug.FeatureModels(model, seed=0).fit(train, test)
    assert set(fm.accuracy_) == {"embed", "convs"}
    assert fm.accuracy_["convs"] > 0.6
    assert fm.shape_ in ((16,), (24,))  # pooled: one entry per channel
    hm = debug.heatmaps.label_heatmaps(fm.weights_)
    assert hm.shape == (3, fm.shape_[0]) and np.abs(hm).max() == pytest.approx(1.0)
    assert debug.heatmaps.to_image(hm[0], fm.shape_).shape == (1, fm.shape_[0])


def test_ambiguous_time_axis_is_a_clear_error():
    x = torch.ones(2, 4, dtype=torch.int64)
    with pytest.raises(InputError, match="time_axis"):
        layer_features(torch.zeros(2, 4, 4), x)
    assert layer_features(torch.arange(32.0).reshape(2, 4, 4), x, time_axis=1).shape == (2, 4)


def test_mode_selection_scores_text_pool_inputs(buggy):
    model, train, _, pool = buggy
    analysis = debug.PoolAnalysis(model, 2, "underfit", pool, train, layer="convs", seed=0,
                                  max_samples=500)
    scores = analysis.dhm_scores()
    assert scores.shape == (len(pool),) and np.isfinite(scores).all()
    assert set(analysis.dhms) >= {"uf1"}
    picked = debug.select("mode", analysis, 100, np.ones(len(pool), bool), seed=0)
    # MODE's DHM favours sentences of the under-fitted label well above its 1/3 share
    assert (pool.y[torch.from_numpy(picked)] == 2).float().mean() > 0.5
