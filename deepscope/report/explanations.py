"""Drawing explanations: a :class:`~deepscope.explain.compare.Comparison` (overlays and a
top-feature table) and one sequence explanation (a hex view of a byte window or a highlighted
sentence, :mod:`deepscope.report.sequence_views`).

The explanations are computed by :func:`deepscope.explain.compare.side_by_side` and
:mod:`deepscope.audit.sequence_explain`; this module only renders the results (used by
``deepscope explain`` and the demo report, so both show the same thing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

from deepscope import explain
from deepscope.explain.compare import Comparison
from deepscope.report.html import HtmlReport

if TYPE_CHECKING:
    from deepscope.audit.sequence_explain import SequenceExplanation

__all__ = ["overlay_grid", "sequence_figure", "sequence_html", "sequence_page",
           "top_feature_table"]


def overlay_grid(result: Comparison, k: int, *, n_show: int = 4) -> Any:
    """Rows = inputs, columns = the input and each method's top-``k`` features (red).

    Parameters
    ----------
    result : Comparison
        What :func:`~deepscope.explain.compare.side_by_side` returned.
    k : int
        Number of top features drawn.
    n_show : int
        Number of inputs (rows) drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    xs = np.asarray(result.x)
    runs = result.runs
    n = min(n_show, len(xs))
    fig, axes = plt.subplots(n, len(runs) + 1, figsize=(1.9 * (len(runs) + 1), 1.9 * n),
                             squeeze=False)
    for i in range(n):
        img = xs[i]
        axes[i, 0].imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                          cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        axes[i, 0].set_title("input" if i == 0 else "", fontsize=8)
        for j, run in enumerate(runs, start=1):
            explain.plot_overlay(xs, run.explanation, k, ax=axes[i, j], index=i,
                                 title=run.method if i == 0 else "")
    fig.tight_layout()
    return fig


def top_feature_table(result: Comparison, k: int) -> list[dict[str, Any]]:
    """Per method: seconds, queries and the top-k features of the first input."""
    rows = []
    for run in result.runs:
        top = np.asarray(run.explanation.top_features(k))[0].tolist()
        rows.append({"method": run.method, "seconds": round(run.seconds, 2),
                     "queries": run.queries if run.queries is not None else "—",
                     f"top-{k} features of input 1": ", ".join(map(str, top))})
    return rows


def _describe(se: SequenceExplanation) -> str:
    what = (f"at byte {se.offset + int(se.position)}" if se.kind == "bytes"
            else "for the sentence")
    label = "" if se.label is None else f", true label {se.label}"
    return (f"{se.explanation.method}: class {se.target} {what} (p = {se.proba:.3f}"
            f"{label})")


def sequence_figure(se: SequenceExplanation, *, title: str | None = None) -> Any:
    """The view of one sequence explanation: the hex view of its byte window (with the
    disassembly of the explained instruction) or its sentence with highlighted words."""
    from deepscope.report import sequence_views as sv

    title = _describe(se) if title is None else title
    if se.kind == "bytes":
        return sv.byte_figure(se.ids, se.attributions, position=se.position, title=title,
                              offset=se.offset)
    return sv.sentence_figure(se.tokens, se.attributions, title=title)


def sequence_html(se: SequenceExplanation) -> str:
    """The same view as an HTML fragment (a coloured hex table or highlighted words)."""
    from deepscope.report import sequence_views as sv

    if se.kind == "bytes":
        return sv.byte_html(se.ids, se.attributions, position=se.position, offset=se.offset)
    return sv.sentence_html(se.tokens, se.attributions)


def sequence_page(se: SequenceExplanation, title: str, subtitle: str = "") -> HtmlReport:
    """A one-section HTML page with the HTML view, the top features and the PNG view."""
    report = HtmlReport(title, subtitle=subtitle)
    sec = report.section(_describe(se), "Red supports the explained class, blue opposes it "
                         "(colour scale symmetric around 0; hover for the attribution).")
    sec.add_html(sequence_html(se))
    sec.add_figure(sequence_figure(se), "The same explanation as a picture.")
    return report
