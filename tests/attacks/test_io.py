"""Saving results and drawing the grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from deepscope import attacks
from deepscope.errors import InputError


@pytest.fixture
def result(digits):
    model, x, y = digits
    boxes = torch.tensor([[5, 8, 12, 13], [16, 8, 23, 13]]).expand(len(x), 2, 4)
    return x, attacks.get("glasses", model, steps=3, progress=False)(
        x, y, target="next", boxes=boxes)


def test_save_and_load_npz(tmp_path, result):
    x, r = result
    path = attacks.save_npz(r, tmp_path / "adv.npz", x=x)
    assert [p.name for p in tmp_path.iterdir()] == ["adv.npz"]  # no temporary file left
    data = attacks.load_npz(path)
    assert np.array_equal(data["x_adv"], r.x_adv.numpy())
    assert np.array_equal(data["x"], x.numpy())
    assert np.array_equal(data["mask"], r.mask.numpy())
    assert np.array_equal(data["target_labels"], r.target_labels.numpy())
    assert data["success"].dtype == np.bool_
    assert data["summary"] == json.loads(json.dumps(r.to_dict()))
    with np.load(path, allow_pickle=False) as raw:  # readable without pickle
        assert "summary_json" in raw.files


def test_save_npz_refuses_to_overwrite(tmp_path, result):
    _, r = result
    path = tmp_path / "adv.npz"
    path.write_bytes(b"keep me")
    with pytest.raises(InputError, match="overwrite"):
        attacks.save_npz(r, path)
    assert path.read_bytes() == b"keep me"
    attacks.save_npz(r, path, overwrite=True)
    assert attacks.load_npz(path)["x_adv"].shape == tuple(r.x_adv.shape)
    with pytest.raises(InputError):
        attacks.save_npz(r, tmp_path / "missing" / "adv.npz")
    with pytest.raises(InputError):
        attacks.save_npz(r, tmp_path / "x.npz", x=r.x_adv[:2])


def test_failed_write_leaves_nothing(tmp_path, result, monkeypatch):
    _, r = result

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        attacks.save_npz(r, tmp_path / "adv.npz")
    assert list(tmp_path.iterdir()) == []


def test_plot_grid(tmp_path, result):
    x, r = result
    fig = attacks.plot_grid(x, r.x_adv, labels=r.y, adv_labels=r.adv_labels, max_images=5,
                            title="glasses")
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000
    fig2 = Figure()
    ax = fig2.subplots()
    assert attacks.plot_grid(x.numpy(), r.x_adv.numpy(), ax=ax) is fig2
    assert len(ax.images) == 1
    rgb = torch.rand(3, 3, 8, 8)
    attacks.plot_grid(rgb, rgb.flip(0), class_names=["a", "b", "c"], labels=[0, 1, 2])
    with pytest.raises(InputError):
        attacks.plot_grid(x, r.x_adv[:2])


def test_result_save_load_roundtrip(tmp_path, result):
    _, r = result
    path = r.save(tmp_path / "adv.npz")
    back = attacks.AttackResult.load(path)
    for name in ("x_adv", "success", "y", "adv_labels", "l0", "l2", "linf", "iterations",
                 "target_labels", "mask"):
        assert torch.equal(getattr(back, name), getattr(r, name)), name
    assert (back.attack, back.target, back.seconds) == (r.attack, r.target, r.seconds)
    assert back.to_dict() == json.loads(json.dumps(r.to_dict()))
    with pytest.raises(InputError, match="already exists"):
        r.save(path)


def test_legacy_file_without_header_still_loads(tmp_path, result):
    _, r = result
    path = tmp_path / "old.npz"
    np.savez(path, x_adv=r.x_adv.numpy(), success=r.success.numpy(),
             summary_json=np.array(json.dumps({"attack": "glasses"})))
    data = attacks.load_npz(path)
    assert np.array_equal(data["x_adv"], r.x_adv.numpy())
    assert data["summary"] == {"attack": "glasses"}


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04truncated"])
def test_unreadable_files_raise_one_input_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.npz"):
        attacks.load_npz(path)
    with pytest.raises(InputError, match=r"bad\.npz"):
        attacks.AttackResult.load(path)
