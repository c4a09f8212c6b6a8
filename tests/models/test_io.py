from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from deepscope.errors import CheckpointError, InputError
from deepscope.models import Checkpoint, io, load_checkpoint, load_custom, save_checkpoint, zoo
from deepscope.testing import tiny_cnn

CLASSES = tuple(str(i) for i in range(10))
PWNED: list[str] = []


def _pwn() -> str:
    PWNED.append("unpickled")
    return "pwned"


class Evil:
    def __reduce__(self):
        return (_pwn, ())


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Give BatchNorm buffers non-default values so the round trip covers buffers too."""
    g = torch.Generator().manual_seed(0)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g))
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    return model


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _trained_like(zoo.build("cnn-8k", seed=0, dropout=0.2))
    path = save_checkpoint(tmp_path / "m.pt", model, arch="cnn-8k", classes=CLASSES,
                           config={"dropout": 0.2}, metadata={"acc": 0.99, "tags": ("a", "b")})
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint)
    assert ckpt.arch == "cnn-8k" and ckpt.classes == CLASSES and ckpt.path == path
    assert ckpt.config == {"dropout": 0.2}
    assert ckpt.metadata == {"acc": 0.99, "tags": ["a", "b"]}
    assert not ckpt.model.training
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model.eval()(x))
    assert zoo.arch_of(ckpt.model) == "cnn-8k"
    assert ckpt.to_dict()["parameters"] == zoo.count_parameters(model)


def test_num_classes_follows_the_classes(tmp_path):
    model = zoo.build("mlp-100k", num_classes=3, seed=0)
    path = save_checkpoint(tmp_path / "m.pt", model, arch="mlp-100k", classes=("a", "b", "c"))
    assert load_checkpoint(path).model(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_save_is_atomic_and_refuses_to_overwrite(tmp_path):
    model = zoo.build("mlp-100k", seed=0)
    path = tmp_path / "sub" / "m.pt"
    save_checkpoint(path, model, arch="mlp-100k", classes=CLASSES)
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]  # no temp file left
    original = path.read_bytes()
    other = zoo.build("mlp-100k", seed=1)
    with pytest.raises(CheckpointError, match="overwrite=True"):
        save_checkpoint(path, other, arch="mlp-100k", classes=CLASSES)
    assert path.read_bytes() == original
    save_checkpoint(path, other, arch="mlp-100k", classes=CLASSES, overwrite=True)
    assert path.read_bytes() != original
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]


def test_a_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(io.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "m.pt", zoo.build("mlp-100k"), arch="mlp-100k", classes=CLASSES)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_non_plain_metadata_and_unknown_arch(tmp_path):
    model = zoo.build("mlp-100k")
    with pytest.raises(InputError, match="metadata"):
        save_checkpoint(tmp_path / "a.pt", model, arch="mlp-100k", classes=CLASSES,
                        metadata={"obj": object()})
    with pytest.raises(InputError, match="unknown arch"):
        save_checkpoint(tmp_path / "a.pt", model, arch="resnet", classes=CLASSES)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a checkpoint", "truncate"])
def test_corrupt_files_raise_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "truncate":
        save_checkpoint(path, zoo.build("mlp-100k"), arch="mlp-100k", classes=CLASSES)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_missing_foreign_and_inconsistent_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a deepscope checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    payload = {"format": io.FORMAT, "version": io.VERSION, "arch": "resnet-99", "classes": ["a"],
               "config": {}, "metadata": {}, "state_dict": {}}
    torch.save(payload, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet-99'"):
        load_checkpoint(tmp_path / "unknown.pt")
    path = save_checkpoint(tmp_path / "m.pt", zoo.build("mlp-100k"), arch="mlp-100k",
                           classes=CLASSES)
    payload = torch.load(path, weights_only=True)
    payload["arch"] = "mlp-270k"  # weights of another architecture
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_loading_uses_weights_only(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", zoo.build("mlp-100k"), arch="mlp-100k",
                           classes=CLASSES)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(io.torch, "load", spy)
    load_checkpoint(path)
    assert calls and all(c.get("weights_only") is True for c in calls)


def test_a_malicious_pickle_is_never_executed(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": io.FORMAT, "version": 1, "payload": Evil()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_custom("deepscope.testing.models:tiny_cnn", path)
    assert PWNED == []


def test_load_custom_from_a_state_dict_and_from_a_checkpoint(tmp_path):
    model = _trained_like(tiny_cnn(num_classes=4, seed=3))
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    loaded = load_custom("deepscope.testing.models:tiny_cnn", tmp_path / "sd.pt",
                         classes=("a", "b", "c", "d"))
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not loaded.training
    arch = "custom:deepscope.testing.models:tiny_cnn"
    path = save_checkpoint(tmp_path / "c.pt", model, arch=arch, classes=("a", "b", "c", "d"))
    with torch.no_grad():
        assert torch.equal(load_custom("deepscope.testing.models:tiny_cnn", path, num_classes=4)(x),
                           model(x))


def test_custom_checkpoints_need_an_explicit_opt_in(tmp_path):
    model = tiny_cnn(num_classes=3, seed=0)
    arch = "custom:deepscope.testing.models:tiny_cnn"
    path = save_checkpoint(tmp_path / "c.pt", model, arch=arch, classes=("a", "b", "c"),
                           config={"dropout": 0.25})
    with pytest.raises(CheckpointError, match="allow_custom=True"):
        load_checkpoint(path)
    ckpt = load_checkpoint(path, allow_custom=True)
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))


def test_load_custom_errors(tmp_path):
    model = tiny_cnn(num_classes=3, seed=0)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(InputError, match=r"pkg\.module:function"):
        load_custom("no_colon_here", tmp_path / "sd.pt")
    with pytest.raises(InputError, match="cannot import"):
        load_custom("not_a_module_xyz:factory", tmp_path / "sd.pt")
    with pytest.raises(InputError, match="no attribute"):
        load_custom("deepscope.testing.models:nope", tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_custom("deepscope.testing.models:tiny_cnn", tmp_path / "sd.pt", num_classes=5)


def test_metadata_of_str_and_number_subclasses_round_trips(tmp_path):
    meta = {"torch": torch.__version__, "acc": np.float64(0.5), "n": np.int64(3), "t": (1, 2)}
    path = save_checkpoint(tmp_path / "m.pt", zoo.build("mlp-100k"), arch="mlp-100k",
                           classes=CLASSES, metadata=meta)
    loaded = load_checkpoint(path).metadata
    assert loaded == {"torch": str(torch.__version__), "acc": 0.5, "n": 3, "t": [1, 2]}
    assert type(loaded["torch"]) is str
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
