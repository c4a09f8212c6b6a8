"""The object protocol, the one .npz format, seeds and the shared validators."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deepscope import _persist
from deepscope._jsonable import to_jsonable
from deepscope._seeds import derive_seed, numpy_rng, torch_generator
from deepscope._validate import check_bool, check_images, check_number, check_probability
from deepscope.errors import InputError, NotFittedError
from deepscope.protocol import Params, Persistent, check_fitted


class Scaler(Params, Persistent):
    _format = "scaler"

    def __init__(self, model=None, *, factor: float = 2.0, shift: float = 0.0) -> None:
        self.model = model
        self.factor = factor
        self.shift = shift

    def fit(self, x):
        self.mean_ = np.asarray(x).mean(0)
        return self

    def _get_state(self):
        return self.get_params(), {"mean": self.mean_}

    @classmethod
    def _from_state(cls, meta, arrays, model=None):
        obj = cls(model, factor=meta["factor"], shift=meta["shift"])
        obj.mean_ = arrays["mean"]
        return obj


def test_get_params_introspects_the_constructor_without_the_model():
    s = Scaler("m", factor=3.0)
    assert Scaler.param_names() == ["factor", "shift"]
    assert s.get_params() == {"factor": 3.0, "shift": 0.0}
    assert repr(s) == "Scaler(factor=3.0, shift=0.0)"
    Scaler.check_params({"factor": 1.0})
    with pytest.raises(InputError, match=r"unknown parameter\(s\) \['fator'\].*factor, shift"):
        Scaler.check_params({"fator": 1.0})


def test_save_load_roundtrip_atomic_and_refuses_overwrite(tmp_path):
    s = Scaler(factor=5.0).fit(np.arange(6.0).reshape(3, 2))
    path = s.save(tmp_path / "s.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]
    back = Scaler.load(path, model="m")
    assert back.model == "m" and back.factor == 5.0 and np.array_equal(back.mean_, s.mean_)
    with pytest.raises(InputError, match="already exists"):
        s.save(path)
    s.save(path, overwrite=True)
    with np.load(path, allow_pickle=False) as raw:  # plain arrays, no pickle needed
        assert json.loads(str(raw["meta_json"]))["format"] == "scaler"


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04 truncated zip"])
def test_unreadable_files_are_one_input_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a readable deepscope scaler file"):
        Scaler.load(path)


def test_wrong_kind_version_missing_and_pickles(tmp_path):
    _persist.write_npz(tmp_path / "d.npz", "detector", {}, {"a": np.zeros(2)})
    with pytest.raises(InputError, match="'detector' file, not a 'scaler'"):
        Scaler.load(tmp_path / "d.npz")
    _persist.write_npz(tmp_path / "v.npz", "scaler", {}, {}, version=7)
    with pytest.raises(InputError, match="version 7"):
        Scaler.load(tmp_path / "v.npz")
    with pytest.raises(InputError, match="does not exist"):
        Scaler.load(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="does not exist; create it first"):
        _persist.write_npz(tmp_path / "no" / "x.npz", "scaler", {}, {})
    with pytest.raises(InputError, match="dtype object"):
        _persist.write_npz(tmp_path / "o.npz", "scaler", {}, {"a": np.array([{}], dtype=object)})
    assert not (tmp_path / "o.npz").exists()
    np.savez(tmp_path / "p.npz", meta_json=np.array([{"format": "scaler"}], dtype=object))
    with pytest.raises(InputError, match="not a readable"):  # refuses to unpickle
        Scaler.load(tmp_path / "p.npz")


def test_check_fitted():
    with pytest.raises(NotFittedError, match="Scaler is not fitted"):
        check_fitted(Scaler(), "mean_")
    check_fitted(Scaler().fit([[1.0]]), "mean_")


def test_seeds_are_reproducible_independent_and_validated():
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2)
    assert len({derive_seed(0), derive_seed(0, 0), derive_seed(0, 1), derive_seed(1, 0)}) == 4
    assert numpy_rng(3, 1).integers(1 << 30) == numpy_rng(3, 1).integers(1 << 30)
    a = torch.rand(3, generator=torch_generator(3, 1))
    assert torch.equal(a, torch.rand(3, generator=torch_generator(3, 1)))
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(InputError):
            derive_seed(bad)  # type: ignore[arg-type]


def test_to_jsonable():
    out = to_jsonable({"a": np.float32(1.5), "t": torch.ones(2), "n": float("nan"),
                       "p": (1, np.int64(2)), 3: {"deep": np.arange(2)}})
    assert out == {"a": 1.5, "t": [1.0, 1.0], "n": None, "p": [1, 2], "3": {"deep": [0, 1]}}
    assert json.loads(json.dumps(out)) == out
    assert to_jsonable({"w": torch.zeros(3, 4)}, tensors="shape") == {"w": "tensor(3, 4)"}
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_validators():
    assert check_bool("flag", True) is True
    with pytest.raises(InputError, match="True or False"):
        check_bool("flag", 1)
    assert check_number("k", np.int64(3), low=1, integer=True) == 3
    for bad in (True, float("inf"), "1", 0):
        with pytest.raises(InputError):
            check_number("k", bad, low=1)
    with pytest.raises(InputError, match=r"must be < 1"):
        check_probability("p", 1.0)
    with pytest.raises(InputError, match="4-D"):
        check_images(torch.zeros(2, 8, 8))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        check_images(torch.full((1, 1, 2, 2), 2.0))
    with pytest.raises(InputError, match="was expected"):
        check_images(torch.zeros(1, 1, 2, 2), shape=(3, 2, 2))
