"""The HTML report is self-contained and written atomically; tables render every row."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from deepscope.report import HtmlReport, markdown_table, plots
from deepscope.report.tables import html_table


def test_report_embeds_figures_and_leaves_no_temp_files(tmp_path):
    open_before = set(plt.get_fignums())
    report = HtmlReport("t", subtitle="s")
    sec = report.section("Confusion", "intro <b>escaped</b>")
    cm = np.array([[5, 1], [2, 7]])
    sec.add_figure(plots.confusion_matrix(cm, ["a", "b"]), "caption")
    sec.add_html(html_table([{"x": 1.0}, {"x": 2.5}], highlight={1: "bug"}))
    path = report.write(tmp_path / "out" / "index.html")
    text = path.read_text()
    assert "data:image/png;base64," in text
    assert "&lt;b&gt;escaped&lt;/b&gt;" in text
    assert '<tr class="bug">' in text
    assert "src=\"http" not in text  # nothing external
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.html"]
    assert set(plt.get_fignums()) == open_before  # figures are closed once embedded


def test_markdown_table_has_a_row_per_record_and_escapes_pipes():
    table = markdown_table([{"a": 1, "b": "x|y"}, {"a": 0.12345, "c": True}])
    lines = table.strip().splitlines()
    assert lines[0] == "| a | b | c |"
    assert len(lines) == 4
    assert "x\\|y" in lines[2] and "0.1235" in lines[3] and "yes" in lines[3]


def test_plots_return_figures_without_showing():
    fig = plots.per_label_accuracy([0.9, 0.5, 0.99], ["0", "1", "2"], compare=[0.95, 0.97, 0.99],
                                   highlight=[1])
    assert fig.axes and len(fig.axes[0].patches) == 6
    plt.close(fig)
    fig = plots.training_curve([{"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5},
                                {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.7}])
    assert len(fig.axes) == 2
    plt.close(fig)
