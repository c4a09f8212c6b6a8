"""The demo: ``audit.demo`` computes a healthy and a buggy model, ``report.demo`` only draws."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deepscope.audit.demo import DemoConfig, DemoExperiment, demo_experiment
from deepscope.errors import InputError
from deepscope.report.demo import render_demo

DATA = os.environ.get("DEEPSCOPE_DATA", "")
pytestmark = pytest.mark.skipif(not (DATA and Path(DATA, "mnist").exists()),
                                reason="needs real MNIST")


@pytest.fixture(scope="module")
def demo() -> tuple[DemoExperiment, list[str], torch.Tensor]:
    messages: list[str] = []
    cfg = DemoConfig(arch="mlp-100k", epochs=2, bug_label=5, seed=0, explain_inputs=8,
                     repair=False, detection=False, sequences=False)  # own tests
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    exp = demo_experiment(cfg, progress=False, log=messages.append)
    return exp, messages, before


def test_the_experiment_shows_the_injected_underfitting_bug(demo):
    exp, messages, _ = demo
    label = exp.config.bug_label
    # The starved label is clearly worse in the buggy model, and the bug stays local.
    assert exp.buggy.per_label[label] < exp.healthy.per_label[label] - 0.10
    assert exp.healthy.accuracy > 0.9
    assert exp.buggy_train.per_label[label] < 0.95  # low on train too: under-fitting
    assert exp.buggy_train_counts[label] < 0.5 * np.median(exp.buggy_train_counts)
    assert exp.n_wrong == round(exp.n_label * (1 - exp.buggy.per_label[label]))
    assert len(exp.misclassified) == min(exp.n_wrong, 24)
    assert (exp.misclassified_as != label).all()
    assert exp.explanations is not None and exp.explanations.methods == [
        "dmm-men", "lime", "kernel-shap"]
    assert exp.mode is None and exp.detection is None
    assert any("training" in m for m in messages)


def test_the_experiment_leaves_the_global_random_state_alone(demo):
    assert torch.equal(torch.get_rng_state(), demo[2])


def test_the_report_renders_the_experiment(demo, tmp_path):
    exp = demo[0]
    path = render_demo(exp, tmp_path / "report")
    html = path.read_text()
    for heading in ("Setup", "Per-label accuracy", "Confusion matrices", "Training",
                    "Why the buggy model says 5"):
        assert f"<h2>{heading}</h2>" in html, heading
    assert html.count("data:image/png;base64,") >= 6
    for method in ("dmm-men", "lime", "kernel-shap"):
        assert f"<td>{method}</td>" in html
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["bug_label"] == 5
    assert summary["buggy_label_accuracy"] == pytest.approx(float(exp.buggy.per_label[5]))
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["index.html",
                                                                       "summary.json"]


def test_an_existing_report_is_replaced_only_when_asked(demo, tmp_path):
    exp = demo[0]
    render_demo(exp, tmp_path)
    stamp = (tmp_path / "index.html").stat().st_mtime_ns
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        render_demo(exp, tmp_path)
    assert (tmp_path / "index.html").stat().st_mtime_ns == stamp
    render_demo(exp, tmp_path, overwrite=True)


def test_the_experiment_round_trips_through_its_file(demo, tmp_path):
    exp = demo[0]
    back = DemoExperiment.load(exp.save(tmp_path / "demo.npz"))
    assert back.to_dict() == exp.to_dict()
    assert np.array_equal(back.misclassified, exp.misclassified)
    assert np.array_equal(back.buggy.confusion, exp.buggy.confusion)
    assert [s.to_dict() for s in back.history["buggy"]] == [
        s.to_dict() for s in exp.history["buggy"]]
    assert np.array_equal(back.explanations.runs[0].explanation.attributions,
                          exp.explanations.runs[0].explanation.attributions)
