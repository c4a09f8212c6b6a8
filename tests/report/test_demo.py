"""The demo job trains a healthy and a buggy model and reports the bug it injected."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deepscope.report.demo import DemoConfig, run_demo

DATA = os.environ.get("DEEPSCOPE_DATA", "")


@pytest.mark.skipif(not (DATA and Path(DATA, "mnist").exists()), reason="needs real MNIST")
def test_demo_report_shows_the_injected_underfitting_bug(tmp_path):
    messages: list[str] = []
    cfg = DemoConfig(arch="mlp-100k", epochs=2, bug_label=5, seed=0, explain_inputs=8,
                     repair=False, detection=False)  # those sections have their own tests
    result = run_demo(tmp_path / "report", cfg, progress=False, log=messages.append)

    # The starved label is clearly worse in the buggy model, and the bug stays local.
    assert result.buggy_label_accuracy < result.healthy_label_accuracy - 0.10
    assert result.healthy_accuracy > 0.9
    assert result.extra["buggy_train_label_accuracy"] < 0.95  # low on train too: under-fitting

    html = result.report.read_text()
    for heading in ("Setup", "Per-label accuracy", "Confusion matrices", "Training",
                    "Why the buggy model says 5"):
        assert f"<h2>{heading}</h2>" in html, heading
    assert html.count("data:image/png;base64,") >= 6
    for method in ("dmm-men", "lime", "kernel-shap"):
        assert f"<td>{method}</td>" in html
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["bug_label"] == 5
    assert summary["buggy_label_accuracy"] == pytest.approx(result.buggy_label_accuracy)
    assert any("wrote" in m for m in messages)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["index.html",
                                                                       "summary.json"]
