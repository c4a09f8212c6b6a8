"""What a reader of the report needs from each plot: full scales, units, keys that hide nothing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from deepscope._stats import wilson_interval
from deepscope.debug.heatmaps import DHM
from deepscope.detect import DetectionReport
from deepscope.report import plots
from deepscope.report.detect_section import detection_rows
from deepscope.report.mode_section import describe_subsets, plot_dhms, plot_heatmaps


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _extents(fig, artists):
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists]


def test_per_label_accuracy_starts_at_zero_and_its_legend_covers_no_bar():
    fig = plots.per_label_accuracy([0.70, 0.98, 0.99, 0.97], list("abcd"),
                                   compare=[0.96, 0.99, 0.99, 0.98], highlight=[0])
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0
    fig.canvas.draw()
    legend = _extents(fig, [ax.get_legend()])[0]
    assert not any(legend.overlaps(bar) for bar in _extents(fig, ax.patches))


def test_confusion_colour_bar_is_in_the_unit_of_the_cells():
    cm = np.array([[8, 2], [1, 9]])
    fig = plots.confusion_matrix(cm, ["a", "b"])
    image = fig.axes[0].images[0]
    assert image.get_clim() == (0, 100)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"80", "20", "10", "90"} <= texts
    assert "%" in fig.axes[1].get_ylabel()


def test_training_curve_has_whole_epochs_and_a_legend_for_both_lines():
    hist = [{"epoch": e, "train_loss": 1.0 / e, "val_accuracy": 0.5 + e / 10} for e in (1, 2, 3)]
    fig = plots.training_curve(hist)
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    visible = [t for t in ticks if 1 <= t <= 3]
    assert visible and all(float(t).is_integer() for t in visible)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["train loss", "validation accuracy"]


@pytest.mark.parametrize("shape", [(12,), (2, 3, 2)])
def test_heat_maps_and_dhms_come_with_a_colour_bar(shape):
    rng = np.random.default_rng(0)
    hm = rng.uniform(-1, 1, size=(3, int(np.prod(shape))))
    fig = plot_heatmaps(hm, shape, ["x", "y", "z"], highlight=1)
    assert any("importance" in a.get_ylabel() for a in fig.axes)
    dhms = {"uf1": DHM("uf1", hm[0], 1.0, {}), "uf2": DHM("uf2", hm[1] * 3, -1.0, {})}
    fig = plot_dhms(dhms, shape)
    bar = [a for a in fig.axes if "importance" in a.get_ylabel()]
    assert bar and bar[0].get_ylim()[1] == pytest.approx(np.abs(hm[1] * 3).max())


def test_subset_sizes_read_as_words_not_as_a_python_dict():
    text = describe_subsets({"misclassified_as_L": 12, "correct_L": 1500})
    assert text == "12 misclassified as L, 1,500 correct L"
    assert "{" not in text and "'" not in text
    assert describe_subsets({}) == "from the label heat maps"


def test_detection_cells_carry_their_n_and_a_95_percent_interval():
    rep = DetectionReport(detectors=("AmI",), attacks=("FGSM",),
                          counts={"AmI": {"fp": (1, 20), "FGSM": (0, 8)}},
                          attack_success={"FGSM": (8, 10)}, n_benign=24, n_correct=20,
                          thresholds={"AmI": 0.5}, target_fprs={"AmI": 0.05})
    row = detection_rows(rep)[0]
    assert row["FGSM"] == "0% (0/8; 95% CI 0%–32%)"
    assert row["FP (benign)"].startswith("5% (1/20; 95% CI 1%–24%)")


def test_the_section_says_which_detector_flags_more():
    from deepscope.report.detect_section import _small_sample_note

    rep = DetectionReport(detectors=("AmI", "Feature squeezing"), attacks=("FGSM", "BIM"),
                          counts={"AmI": {"fp": (1, 20), "FGSM": (0, 8), "BIM": (3, 8)},
                                  "Feature squeezing": {"fp": (2, 20), "FGSM": (6, 8),
                                                        "BIM": (5, 8)}},
                          attack_success={"FGSM": (8, 10), "BIM": (8, 10)}, n_benign=24,
                          n_correct=20, thresholds={}, target_fprs={})
    note = _small_sample_note(rep)
    assert note.startswith("In this run Feature squeezing flags more successful attacks than "
                           "AmI (11/16 vs 3/16, all attacks pooled).")
    assert "n as small as 8" in note


def test_wilson_interval_matches_known_values_and_refuses_nonsense():
    assert wilson_interval(0, 8) == pytest.approx((0.0, 0.3244), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = wilson_interval(8, 8)
    assert hi == 1.0 and lo == pytest.approx(0.6756, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
