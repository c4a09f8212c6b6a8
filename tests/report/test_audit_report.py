"""Rendering an audit: a self-contained page and summary.json from SectionResults only."""

from __future__ import annotations

import html
import json
import re
import types

import pytest

from deepscope import models
from deepscope.audit.inputs import prepare
from deepscope.audit.result import AuditResult, SectionResult
from deepscope.audit.run import Audit
from deepscope.audit.spec import AuditConfig
from deepscope.data import stratified_split
from deepscope.report.audit_report import render_audit
from deepscope.testing.data import blobs
from deepscope.testing.models import tiny_cnn


@pytest.fixture(scope="module")
def result() -> AuditResult:
    ds = blobs(600, 3, styles=2, noise=0.3, seed=1)
    train, held = stratified_split(ds, (0.4, 0.6), seed=0, names=("train", "held"))
    model = tiny_cnn(3)
    models.fit(model, train, epochs=3, seed=0, progress=False)
    loaded = types.SimpleNamespace(module=model, kind="module", class_names=None,
                                   checkpoint=None, differentiable=True, path="tiny.pt")
    config = AuditConfig(sections=("model", "diagnosis", "robustness"), scale=0.2)
    res = Audit(prepare(loaded, held, train=train), config).run()
    skipped = SectionResult.skipped("detection", "a reason given in words")
    return AuditResult(res.model, res.data, {**res.sections, "detection": skipped}, res.seconds)


@pytest.fixture(scope="module")
def rendered(result, tmp_path_factory):
    """The page rendered once, with a check of every figure on its way into the page:
    (has a title, every visible axes has an axis label)."""
    from deepscope.report import html as report_html

    seen = []
    original = report_html.figure_to_data_uri

    def spy(fig, **kwargs):
        axes = [a for a in fig.axes if a.get_label() != "<colorbar>"]
        has_title = bool(fig._suptitle and fig._suptitle.get_text()) or any(
            a.get_title() for a in axes)
        labelled = all(a.get_xlabel() or a.get_ylabel() or not a.axison for a in axes)
        seen.append((has_title, labelled))
        return original(fig, **kwargs)

    report_html.figure_to_data_uri = spy
    try:
        out = tmp_path_factory.mktemp("audit-page")
        return render_audit(result, out), seen
    finally:
        report_html.figure_to_data_uri = original


def test_page_is_self_contained_and_opens_each_section_with_its_finding(result, rendered):
    page_path, _ = rendered
    page = page_path.read_text()
    assert page_path.stat().st_size < 5 * 1024 * 1024
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for res in result.sections.values():
        assert html.escape(res.finding) in page
    assert "Not run: a reason given in words." in page
    assert page.count("data:image/png;base64,") >= 6
    assert "name='viewport'" in page


def test_summary_json_has_the_interface_keys(result, rendered):
    summary = json.loads((rendered[0].parent / "summary.json").read_text())
    assert {"model", "accuracy", "per_label", "bugs", "sections"} <= set(summary)
    assert summary["sections"] == {"model": "ok", "diagnosis": "ok", "robustness": "ok",
                                   "detection": "a reason given in words"}
    assert all(set(v) == {"accuracy", "n"} for v in summary["per_label"].values())
    assert isinstance(summary["bugs"], list)
    assert summary["bugs"] == [{"label": b["label"], "kind": b["kind"], "name": b["name"],
                                "evidence": b["evidence"]}
                               for b in result.sections["diagnosis"].summary["bugs"]]


def test_every_figure_has_a_title_and_axis_labels(rendered):
    _, seen = rendered
    assert len(seen) >= 6
    assert all(t for t, _ in seen), seen
    assert all(lab for _, lab in seen), seen
