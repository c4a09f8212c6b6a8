"""The audit core on a tiny CNN trained on synthetic images: sections, reasons, cache, summary."""

from __future__ import annotations

import types

import pytest
import torch

from deepscope import models
from deepscope.audit.inputs import prepare
from deepscope.audit.result import SectionResult
from deepscope.audit.run import Audit, budget_scale
from deepscope.audit.spec import AuditConfig, section_names
from deepscope.data import Dataset, stratified_split
from deepscope.errors import InputError
from deepscope.testing.data import blobs
from deepscope.testing.models import tiny_cnn


@pytest.fixture(scope="module")
def trained():
    ds = blobs(900, 3, styles=2, noise=0.3, seed=0)
    train, held = stratified_split(ds, (0.4, 0.6), seed=0, names=("train", "held"))
    model = tiny_cnn(3)
    models.fit(model, train, epochs=3, seed=0, progress=False)
    return model, train, held


def _loaded(model, **kw):
    base = {"module": model, "kind": "module", "class_names": None, "checkpoint": None,
            "differentiable": True, "path": "tiny.pt"}
    return types.SimpleNamespace(**{**base, **kw})


def test_sections_are_registered_in_report_order():
    assert section_names() == ["model", "diagnosis", "repair", "robustness", "detection",
                               "explanations"]


def test_unknown_section_is_refused():
    with pytest.raises(InputError, match=r"unknown section.*robustnes"):
        AuditConfig(sections=("robustnes",))


def test_roles_are_disjoint_and_reference_split_warns(trained):
    model, _, held = trained
    inputs = prepare(_loaded(model), held)
    assert inputs.train_source == "reference part of --data"
    assert "optimistic" in inputs.warning
    sizes = [len(inputs.train), len(inputs.test), len(inputs.validation), len(inputs.pool)]
    assert sum(sizes) == len(held)


def test_training_samples_in_heldout_data_are_left_out(trained):
    model, train, held = trained
    with pytest.raises(InputError, match="also in --train-data"):
        prepare(_loaded(model), held, train=held)
    first = held.subset(torch.arange(10))
    mixed = Dataset(x=torch.cat([train.x, first.x]), y=torch.cat([train.y, first.y]),
                    classes=train.classes)
    inputs = prepare(_loaded(model), held, train=mixed)
    assert inputs.train_source == "--train-data"
    assert len(inputs.data) == len(held) - 10
    assert "10 of" in inputs.warning and "left out" in inputs.warning
    assert prepare(_loaded(model), held, train=train).warning is not None  # pool note


def test_model_card_and_summary(trained, tmp_path):
    model, train, held = trained
    result = Audit(prepare(_loaded(model), held, train=train),
                   AuditConfig(sections=("model", "diagnosis"))).run()
    summary = result.summary()
    assert {"model", "accuracy", "per_label", "bugs", "sections"} <= set(summary)
    expected = models.evaluate(model, held).accuracy
    assert summary["accuracy"] == pytest.approx(expected)
    assert summary["sections"] == {"model": "ok", "diagnosis": "ok"}
    assert all({"label", "kind"} <= set(b) for b in summary["bugs"])
    assert sum(v["n"] for v in summary["per_label"].values()) == len(held)


def test_non_differentiable_model_skips_robustness_with_reason(trained):
    model, train, held = trained
    inputs = prepare(_loaded(model, differentiable=False, kind="onnx"), held, train=train)
    result = Audit(inputs, AuditConfig(sections=("robustness",))).run()
    res = result.sections["robustness"]
    assert res.status == "skipped"
    assert "not differentiable" in res.reason
    assert result.summary()["sections"]["robustness"] == res.reason


def test_resume_skips_finished_sections(trained, tmp_path, monkeypatch):
    model, train, held = trained
    inputs = prepare(_loaded(model), held, train=train)
    config = AuditConfig(sections=("model", "robustness"), scale=0.1)
    first = Audit(inputs, config, cache_dir=tmp_path).run()
    assert (tmp_path / "robustness.npz").exists()
    events = []
    again = Audit(inputs, config, cache_dir=tmp_path).run(
        lambda kind, step, res: events.append((kind, step.spec.name)))
    assert events == [("cached", "model"), ("cached", "robustness")]
    assert again.sections["robustness"].summary == first.sections["robustness"].summary
    # other settings: another key, so recomputed
    events.clear()
    Audit(inputs, AuditConfig(sections=("model",), seed=1), cache_dir=tmp_path).run(
        lambda kind, step, res: events.append((kind, step.spec.name)))
    assert events == [("start", "model"), ("done", "model")]


def test_section_result_round_trips(tmp_path):
    res = SectionResult("x", "ok", "fine.", summary={"n": 3}, arrays={"a": torch.ones(2).numpy()})
    back = SectionResult.load(res.save(tmp_path / "x.npz"))
    assert back.summary == {"n": 3} and back.arrays["a"].tolist() == [1.0, 1.0]
    with pytest.raises(InputError, match="needs a reason"):
        SectionResult("x", "skipped", "no")


def test_budget_scale_shrinks_sample_counts():
    assert budget_scale(100.0, None) == 1.0
    assert budget_scale(100.0, 50.0) == pytest.approx(0.5)
    assert budget_scale(10.0, 50.0) == 1.0
    with pytest.raises(InputError):
        budget_scale(10.0, 0)
    assert AuditConfig(scale=0.5).count(500, low=20) == 250


def test_torchscript_model_gets_every_section_and_a_loadable_repair(trained, tmp_path):
    model, train, held = trained
    path = tmp_path / "tiny.ts"
    torch.jit.save(torch.jit.script(model), str(path))
    before = path.read_bytes()
    scripted = torch.jit.load(str(path))
    out = tmp_path / "repaired.ts"
    inputs = prepare(_loaded(scripted, kind="torchscript"), held, train=train)
    config = AuditConfig(sections=("model", "diagnosis", "repair"), write_repaired=str(out))
    result = Audit(inputs, config).run()
    eager = Audit(prepare(_loaded(model), held, train=train),
                  AuditConfig(sections=("model", "diagnosis"))).run()
    assert result.summary()["sections"] == {"model": "ok", "diagnosis": "ok", "repair": "ok"}
    assert "analysis_error" not in result.sections["diagnosis"].summary
    assert result.summary()["accuracy"] == eager.summary()["accuracy"]
    assert result.summary()["bugs"] == eager.summary()["bugs"]
    repaired = torch.jit.load(str(out))
    assert repaired(held.x[:4]).shape == (4, 3)
    assert path.read_bytes() == before  # the user's file is not touched
    with pytest.raises(InputError, match="already exists"):
        Audit(inputs, AuditConfig(sections=("repair",), write_repaired=str(out))).run()


def test_detection_adds_ami_when_the_data_has_attribute_boxes(trained):
    model, train, held = trained

    def with_boxes(ds):
        boxes = torch.tensor([[0, 0, 4, 4], [4, 4, 8, 8]]).expand(len(ds), 2, 4).clone()
        return Dataset(x=ds.x, y=ds.y, classes=ds.classes, extras={"boxes": boxes},
                       info={"box_names": ("top", "bottom")})

    plain = Audit(prepare(_loaded(model), held, train=train),
                  AuditConfig(sections=("detection",), scale=0.5)).run()
    boxed = Audit(prepare(_loaded(model), with_boxes(held), train=with_boxes(train)),
                  AuditConfig(sections=("detection",), scale=0.5)).run()
    assert plain.sections["detection"].summary["detectors"] == ["feature squeezing"]
    assert "no attribute boxes" in plain.sections["detection"].summary["ami_reason"]
    det = boxed.sections["detection"].summary
    assert det["detectors"] == ["feature squeezing", "AmI"]
    assert det["ami_reason"] is None
    fp = det["counts"]["AmI"]["fp"]
    assert fp["n"] == det["n_correct"] and 0 <= fp["flagged"] <= fp["n"]


def test_repair_preview_ranks_as_mode_stops():
    """A strategy that fixed the label wins over one that ends higher later: MODE stops once
    the label is fixed (the preview once reported a strategy that had fixed the label at 500
    samples and then drifted to 75 % as the loser)."""
    from deepscope.audit.section_mode import _rank

    fixed_early = {"fixed": True, "samples": 500, "label_after": 0.93}
    fixed_late = {"fixed": True, "samples": 1500, "label_after": 0.97}
    unfixed = {"fixed": False, "samples": 2000, "label_after": 0.91}
    assert sorted([unfixed, fixed_late, fixed_early], key=_rank) == [
        fixed_early, fixed_late, unfixed]
