"""The MODE report section on a small synthetic task."""

from __future__ import annotations

import json

import pytest
import torch

from deepscope import data, models
from deepscope.report import HtmlReport
from deepscope.report.mode_section import add_mode_section
from deepscope.testing.data import blobs, make_dataset, one_hot_inputs
from deepscope.testing.models import identity_classifier


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(2)
    split = data.mode_split(blobs(1600, 4, (1, 28, 28), noise=0.6, styles=4, seed=1), seed=0)
    train, _ = models.bugs.underfit(split.train, 2, keep=0.1, seed=0)
    model = models.zoo.build("mlp-100k", num_classes=4, seed=0)
    models.fit(model, train, epochs=3, seed=0, lr=2e-3, patience=None, progress=False)
    return model, train, split


def test_section_shows_bug_heatmaps_dhm_and_rounds(setup, tmp_path):
    model, train, split = setup
    report = HtmlReport("t")
    summary = add_mode_section(report, model=model, train=train, validation=split.validation,
                               test=split.test, pool=split.pool, seed=0, budget=200, batch=100)
    assert summary["bug"]["label"] == 2 and summary["bug"]["kind"] == "underfit"
    assert set(summary["repair"]) == {"mode", "auto", "random"}
    assert all(len(r["history"]) == 3 for r in summary["repair"].values())
    assert "uf1" in summary["analysis"]["dhms"]
    sec = report.sections[-1]
    assert len(sec.figures) == 3  # heat maps, DHMs, accuracy per round
    page = report.write(tmp_path / "r.html").read_text()
    assert "Debugging with MODE" in page and "underfit" in page
    json.dumps(summary)


def test_section_without_bug_says_so():
    y = torch.arange(40) % 4
    perfect = make_dataset(one_hot_inputs(y, 4), y)
    report = HtmlReport("t")
    summary = add_mode_section(report, model=identity_classifier(4), train=perfect,
                               validation=perfect, test=perfect, pool=perfect)
    assert summary["bug"] is None
    assert "No per-label bug was found" in report.render()


def test_section_renders_a_comparison_computed_in_debug(setup, tmp_path):
    import numpy as np

    from deepscope import debug
    from deepscope.report.mode_section import render_mode_section

    model, train, split = setup
    state = torch.random.get_rng_state()
    cmp = debug.compare_strategies(model, split, train=train, strategies=("auto", "random"),
                                   budget=200, batch=100, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # no global RNG side effect
    assert cmp.bug.label == 2 and set(cmp.results) == {"auto", "random"}
    report = HtmlReport("t")
    summary = render_mode_section(report, cmp)
    assert summary == cmp.to_dict() and len(report.sections[-1].figures) == 3
    back = debug.StrategyComparison.load(cmp.save(tmp_path / "c.npz"), model)
    assert back.to_dict() == cmp.to_dict()
    np.testing.assert_array_equal(back.label_heatmaps, cmp.label_heatmaps)
    assert set(back.dhms) == set(cmp.dhms)
    again = HtmlReport("t")
    assert render_mode_section(again, back) == summary
