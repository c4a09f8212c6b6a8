"""``deepscope detect fit`` + ``detect run`` (CLI defaults) and the AmI benchmark's code path
(``bench/ami_table.py``) agree on one small cell: same parameters, threshold, steering and
detections on the same adversarial faces (issue 11: the CLI caught 0/8 FGSM faces where the
table said 0.76, because the benchmark used its own grid)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from deepscope import attacks
from deepscope.audit.detector_fit import benign_indices
from deepscope.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ami_table():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.ami_table")


@pytest.fixture
def faces(tmp_path, monkeypatch):
    """A face-cnn-26k checkpoint and 24 faces per split labelled by the model itself (so every
    face is benign and correctly classified), served to the CLI through ``data.load``."""
    if not os.environ.get("DEEPSCOPE_DATA", "").strip():
        pytest.skip("DEEPSCOPE_DATA is not set")
    from deepscope import data as ds_data
    from deepscope.models import predict_logits, save_checkpoint, zoo

    model = zoo.build("face-cnn-26k", num_classes=40, seed=0)
    path = tmp_path / "face.pt"
    save_checkpoint(path, model, arch="face-cnn-26k",
                    classes=[f"s{i}" for i in range(1, 41)], config={"num_classes": 40})
    real_load = ds_data.load
    cache = {}

    def relabel(name, split, **kw):
        if split not in cache:
            ds = real_load(name, split, **kw)
            pick = torch.arange(0, len(ds), max(1, len(ds) // 24))[:24]
            fields = {f: getattr(ds, f) for f in ds.__dataclass_fields__}
            fields.update(x=ds.x[pick], y=predict_logits(model, ds.x[pick]).argmax(1),
                          extras={k: v[pick] for k, v in ds.extras.items()})
            cache[split] = type(ds)(**fields)
        return cache[split]

    monkeypatch.setattr("deepscope.cli.model_cmd.ds_data.load", relabel)
    return path, model, relabel("att-faces", "train"), relabel("att-faces", "test")


def test_cli_and_benchmark_agree_on_one_cell(faces, ami_table, runner, tmp_path):
    ckpt, model, train, test = faces
    target = 0.25  # high enough that some faces are flagged
    # the benchmark's AmI row is the detector's defaults, nothing else
    method, params, witnesses = ami_table.detector_rows()["AmI"]
    assert (method, params, witnesses) == ("ami", {}, None)

    adv = attacks.get("fgsm", model, eps=0.03, progress=False)(test.x, test.y)
    npz = tmp_path / "fgsm.npz"
    attacks.save_npz(adv, npz, x=test.x)

    fitted = runner.invoke(app, ["detect", "fit", str(ckpt), "--method", "ami", "--calib-split",
                                 "test", "--target-fpr", str(target), "--out",
                                 str(tmp_path / "ami.npz"), "--json", "--quiet"])
    assert fitted.exit_code == 0, fitted.output
    cli_fit = json.loads(fitted.stdout)
    assert "note: calibrated" not in fitted.stderr  # calibrated on --calib-split test
    ran = runner.invoke(app, ["detect", "run", str(tmp_path / "ami.npz"), str(ckpt),
                              "--inputs", str(npz), "--json", "--quiet"])
    assert ran.exit_code == 0, ran.output
    cli_run = json.loads(ran.stdout)

    x_cal = test.x[benign_indices(model, test)]  # what --calib-split test calibrates on
    det = ami_table.fit_fold("AmI", ami_table.detector_rows(), {}, {}, model, train, x_cal,
                             target, {})
    assert det.get_params() == {**det.get_params(), "target_fpr": target, "seed": 0}
    assert cli_fit["steering"] == det.config_.to_dict()
    assert cli_fit["threshold"] == pytest.approx(det.threshold_, abs=1e-6)
    assert cli_fit["witness_counts"] == det.witnesses_.counts()
    assert cli_run["flags"] == det.detect(adv.x_adv).tolist()
    benign = runner.invoke(app, ["detect", "run", str(tmp_path / "ami.npz"), str(ckpt),
                                 "--dataset", "att-faces", "--split", "test", "--json",
                                 "--quiet"])
    assert benign.exit_code == 0, benign.output
    flags = json.loads(benign.stdout)["flags"]
    assert flags == det.detect(test.x).tolist()
    assert 0 < sum(flags) + sum(cli_run["flags"])  # the comparison is not all-False
    assert cli_run["scores"] == pytest.approx(det.score(adv.x_adv).tolist(), abs=1e-5)


def test_fit_notes_when_it_calibrates_on_training_inputs(faces, runner, tmp_path):
    ckpt = faces[0]
    res = runner.invoke(app, ["detect", "fit", str(ckpt), "--method", "squeeze", "--out",
                              str(tmp_path / "fs.npz"), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    json.loads(res.stdout)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("note: calibrated on held-out att-faces/train")
