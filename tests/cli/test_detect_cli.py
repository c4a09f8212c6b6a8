"""``deepscope detect fit`` / ``detect run`` on AT&T faces with an untrained face model."""

from __future__ import annotations

import json
import os

import pytest
import torch
from typer.testing import CliRunner

from deepscope.cli.main import app


@pytest.fixture(scope="module")
def face_checkpoint(tmp_path_factory):
    if not os.environ.get("DEEPSCOPE_DATA", "").strip():
        pytest.skip("DEEPSCOPE_DATA is not set")
    from deepscope.models import save_checkpoint, zoo

    path = tmp_path_factory.mktemp("ckpt") / "faces.pt"
    model = zoo.build("face-vgg-1.2m", num_classes=40, seed=0)
    save_checkpoint(path, model, arch="face-vgg-1.2m",
                    classes=[f"s{i}" for i in range(1, 41)], config={"num_classes": 40})
    return path


@pytest.fixture
def relabelled(face_checkpoint, monkeypatch):
    """24 faces per split, labelled by the untrained model itself (so all are "correct")."""
    from deepscope import data as ds_data
    from deepscope.cli import detect_cmd
    from deepscope.models import load_checkpoint, predict_logits

    monkeypatch.setattr(detect_cmd, "_subset",
                        lambda n, limit, seed: torch.arange(min(n, limit or n)))
    real_load = ds_data.load
    model = load_checkpoint(face_checkpoint).model

    def relabel(name, split, **kw):
        ds = real_load(name, split, **kw)
        fields = {f: getattr(ds, f) for f in ds.__dataclass_fields__}
        fields.update(x=ds.x[:24], y=predict_logits(model, ds.x[:24]).argmax(1),
                      extras={k: v[:24] for k, v in ds.extras.items()})
        return type(ds)(**fields)

    monkeypatch.setattr("deepscope.cli.model_cmd.ds_data.load", relabel)
    return face_checkpoint


def _one_line_error(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output


def test_detect_fit_and_run_squeeze(relabelled, tmp_path):
    ckpt = relabelled
    runner = CliRunner()
    fs_out = tmp_path / "fs.npz"
    res = runner.invoke(app, ["detect", "fit", str(ckpt), "--method", "squeeze",
                              "--out", str(fs_out), "--json", "--quiet", "--target-fpr", "0.1"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["detector"] == "squeeze" and summary["n_benign"] == 24
    again = runner.invoke(app, ["detect", "fit", str(ckpt), "--method", "squeeze",
                                "--out", str(fs_out), "--quiet"])
    _one_line_error(again, "already exists")

    run = runner.invoke(app, ["detect", "run", str(fs_out), str(ckpt), "--dataset", "att-faces",
                              "--limit", "6", "--json", "--quiet"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert out["n"] == 6 and len(out["flags"]) == 6 and out["correctly_classified"] == 6

    # an attack file as written by `deepscope attack`
    from deepscope import attacks
    from deepscope.models import load_checkpoint

    model = load_checkpoint(ckpt).model
    x = torch.rand(4, 1, 112, 92)
    y = model(x).argmax(1).detach()
    adv = attacks.get("fgsm", model, eps=0.05, progress=False)(x, y)
    npz = tmp_path / "adv.npz"
    attacks.save_npz(adv, npz, x=x)
    run = runner.invoke(app, ["detect", "run", str(fs_out), str(ckpt), "--inputs", str(npz),
                              "--json", "--quiet"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert out["n"] == 4 and out["successful_attacks"] == int(adv.success.sum())


@pytest.mark.slow
def test_detect_fit_and_run_ami(relabelled, tmp_path):
    ckpt = relabelled
    runner = CliRunner()
    ami_out = tmp_path / "ami.npz"
    res = runner.invoke(app, ["detect", "fit", str(ckpt), "--method", "ami", "--out",
                              str(ami_out), "--json", "--quiet", "-p", "n_pairs=4",
                              "-p", "alphas=[1.0]", "-p", "epsilons=[1.0]",
                              "-p", 'layers=["block4.relu1","block4.relu2"]'])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert set(summary["witness_counts"]) == {"left_eye", "right_eye", "nose", "mouth",
                                              "shared"}
    assert summary["steering"]["layers"]
    run = runner.invoke(app, ["detect", "run", str(ami_out), str(ckpt), "--dataset",
                              "att-faces", "--limit", "6", "--json", "--quiet"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["n"] == 6


def test_detect_errors_are_one_line(face_checkpoint, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["detect", "fit", str(face_checkpoint), "--method", "magic",
                              "--out", str(tmp_path / "d.npz")])
    _one_line_error(bad, "--method")
    assert "ami, art-binary, joint, lid, mahalanobis, margin, squeeze" in bad.output
    unknown = runner.invoke(app, ["detect", "fit", str(face_checkpoint), "--method", "squeeze",
                                  "-p", "n_pairs=3", "--out", str(tmp_path / "d.npz")])
    _one_line_error(unknown, "unknown parameter")
    both = runner.invoke(app, ["detect", "run", str(tmp_path / "d.npz"), str(face_checkpoint)])
    _one_line_error(both, "exactly one")
    missing = runner.invoke(app, ["detect", "run", str(tmp_path / "nope.npz"),
                                  str(face_checkpoint), "--dataset", "att-faces", "--quiet"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


@pytest.mark.parametrize("method,params", [
    ("mahalanobis", ["-p", "epsilons=[0.0]"]),
    ("lid", ["-p", "k=5", "-p", "minibatch=10"]),
    ("margin", []),
])
def test_detect_fit_and_run_the_peers(relabelled, tmp_path, method, params):
    out = tmp_path / f"{method}.npz"
    res = CliRunner().invoke(app, ["detect", "fit", str(relabelled), "--method", method,
                                   "--out", str(out), "--json", "--quiet", "--target-fpr",
                                   "0.2", *params])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["detector"] == method
    run = CliRunner().invoke(app, ["detect", "run", str(out), str(relabelled), "--dataset",
                                   "att-faces", "--limit", "4", "--json", "--quiet"])
    assert run.exit_code == 0, run.output
    assert len(json.loads(run.stdout)["flags"]) == 4
