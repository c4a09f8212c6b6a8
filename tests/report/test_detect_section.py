from __future__ import annotations

import pytest
import torch

from deepscope.audit.detection import DetectionExperiment, detection_experiment
from deepscope.detect.ami.witnesses import WitnessSet
from deepscope.detect.base import DetectionResult
from deepscope.models import zoo
from deepscope.report.detect_section import (
    add_detect_section,
    plot_detection_examples,
    plot_witness_counts,
    render_detect_section,
)
from deepscope.report.html import HtmlReport


def test_plots_return_figures():
    x = torch.rand(3, 1, 12, 10)
    res = DetectionResult(scores=torch.tensor([0.1, 2.0, -1.0]),
                          flags=torch.tensor([False, True, False]), threshold=0.5,
                          detector="ami", target_fpr=0.1)
    boxes = torch.tensor([[[1, 1, 4, 4], [5, 6, 9, 10]]] * 3)
    fig = plot_detection_examples(x, res, res, titles=["a", "b", "c"], boxes=boxes,
                                  box_names=("eye", "mouth"))
    assert len(fig.axes) == 3 and "flag" in fig.axes[1].get_title()
    ws = WitnessSet(("l1", "l2"), ("eye", "mouth"),
                    {"l1": {"eye": (0, 1), "mouth": (1,)}, "l2": {"eye": (), "mouth": (3,)}},
                    {"l1": 4, "l2": 8})
    fig = plot_witness_counts(ws)
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == [0, 1, 1, 2]


def test_experiment_renders_and_roundtrips(data_dir, tmp_path):
    exp = detection_experiment(model=zoo.build("face-cnn-26k", seed=0), n_attack=2, n_pairs=4,
                               progress=False, log=lambda m: None)
    back = DetectionExperiment.load(exp.save(tmp_path / "exp.npz"))
    assert back.to_dict() == exp.to_dict() and back.report == exp.report
    assert torch.equal(back.examples, exp.examples)
    report = HtmlReport("t")
    render_detect_section(report, back)
    html = report.render()
    assert "Feature squeezing" in html and "data:image/png;base64" in html
    assert set(exp.to_dict()["rates"]) == {"AmI", "Feature squeezing"}


def test_section_runs_end_to_end_with_a_given_model(data_dir):
    report = HtmlReport("t")
    exp = detection_experiment(model=zoo.build("face-cnn-26k", seed=0), n_attack=2, n_pairs=4,
                               progress=False, log=lambda m: None)
    out = add_detect_section(report, exp)
    assert report.sections and report.sections[-1].title.startswith("Adversarial detection")
    html = report.render()
    assert "Feature squeezing" in html and "data:image/png;base64" in html
    assert set(out["rates"]) == {"AmI", "Feature squeezing"}
    for rates in out["rates"].values():
        assert all(0.0 <= v <= 1.0 for v in rates.values())
    assert set(out["witness_counts"]) == {"left_eye", "right_eye", "nose", "mouth", "shared"}


@pytest.mark.slow
def test_section_trains_its_own_model(data_dir):
    report = HtmlReport("t")
    out = add_detect_section(report, detection_experiment(progress=False, log=lambda m: None))
    assert out["accuracy"] >= 0.8
    assert out["seconds"]["total"] < 300
