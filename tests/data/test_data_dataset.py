"""Dataset validation, subsetting and from_arrays conversions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deepscope.data import Dataset, from_arrays
from deepscope.errors import InputError


def make(n: int = 12, k: int = 3, c: int = 1) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, c, 4, 5, generator=g)
    y = torch.arange(n) % k
    extras = {"idx": torch.arange(n), "boxes": torch.arange(n * 4).reshape(n, 2, 2)}
    return Dataset(x, y, tuple(f"c{i}" for i in range(k)), name="toy", split="train",
                   extras=extras, info={"box_names": ("a", "b")})


def test_basic_properties() -> None:
    ds = make(12, 3, c=3)
    assert len(ds) == 12
    assert ds.num_classes == 3
    assert ds.input_shape == (3, 4, 5)
    assert ds.class_counts().tolist() == [4, 4, 4]
    assert ds.class_counts().dtype == np.int64
    assert "n=12" in repr(ds)
    summary = ds.to_dict()
    json.dumps(summary)  # JSON-friendly
    assert summary["n"] == 12 and summary["shape"] == [3, 4, 5]
    assert summary["counts"] == [4, 4, 4] and summary["classes"] == ["c0", "c1", "c2"]
    assert summary["info"] == {"box_names": ["a", "b"]}


def test_classes_list_becomes_tuple_and_is_frozen() -> None:
    ds = Dataset(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), ["a", "b"])
    assert ds.classes == ("a", "b")
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": torch.zeros(3, 2, 2)}, "4-D"),
        ({"x": torch.zeros(3, 1, 2, 2, dtype=torch.float64)}, "float32"),
        ({"x": torch.full((3, 1, 2, 2), 1.5)}, "[0, 1]"),
        ({"x": torch.full((3, 1, 2, 2), -0.1)}, "[0, 1]"),
        ({"x": torch.full((3, 1, 2, 2), float("nan"))}, "NaN"),
        ({"x": np.zeros((3, 1, 2, 2), np.float32)}, "from_arrays"),
        ({"y": torch.tensor([0, 1, 1], dtype=torch.int32)}, "int64"),
        ({"y": torch.tensor([0, 1])}, "3 samples but y has 2"),
        ({"y": torch.tensor([0, 1, 2])}, "[0, 2)"),
        ({"y": torch.tensor([0, -1, 1])}, "[0, 2)"),
        ({"classes": ()}, "non-empty"),
        ({"classes": ("a", "a")}, "unique"),
        ({"classes": "ab"}, "sequence"),
        ({"extras": {"e": torch.zeros(2)}}, "extras['e']"),
    ],
)
def test_validation_errors(kwargs: dict, message: str) -> None:
    args = {"x": torch.zeros(3, 1, 2, 2), "y": torch.tensor([0, 1, 1]), "classes": ("a", "b")}
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        Dataset(**args)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "index",
    [
        slice(2, 8, 2),
        np.array([2, 4, 6]),
        torch.tensor([2, 4, 6]),
        [2, 4, 6],
        np.isin(np.arange(12), [2, 4, 6]),
        torch.from_numpy(np.isin(np.arange(12), [2, 4, 6])),
    ],
)
def test_subset_index_kinds(index: object) -> None:
    ds = make()
    sub = ds.subset(index)
    assert sub.extras["idx"].tolist() == [2, 4, 6]
    assert torch.equal(sub.x, ds.x[[2, 4, 6]])
    assert torch.equal(sub.y, ds.y[[2, 4, 6]])
    assert torch.equal(sub.extras["boxes"], ds.extras["boxes"][[2, 4, 6]])
    assert sub.split == "train" and sub.name == "toy" and sub.info == ds.info


def test_subset_keeps_order_renames_split_and_copies() -> None:
    ds = make()
    sub = ds.subset([5, 0, -1], split="val")
    assert sub.extras["idx"].tolist() == [5, 0, 11]
    assert sub.split == "val"
    sliced = ds.subset(slice(0, 3))
    sliced.x.zero_()
    assert ds.x[:3].sum() > 0  # a copy, not a view of the parent
    assert len(ds.subset([])) == 0


@pytest.mark.parametrize(
    ("index", "message"),
    [([12], "[-12, 12)"), ([-13], "[-12, 12)"), (np.array([0.5]), "integers"),
     (np.ones(5, bool), "length 5"), (3, "[i]"), (np.zeros((2, 2), int), "1-D")],
)
def test_subset_errors(index: object, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace(")", r"\)")):
        make().subset(index)


def test_to_moves_everything() -> None:
    ds = make()
    moved = ds.to("cpu")
    assert moved is not ds
    assert moved.x.device.type == "cpu" and moved.extras["idx"].device.type == "cpu"
    assert torch.equal(moved.x, ds.x)
    if torch.cuda.is_available():  # pragma: no cover - depends on the machine
        gpu = ds.to("cuda")
        assert gpu.x.is_cuda and gpu.y.is_cuda and gpu.extras["idx"].is_cuda
        assert gpu.subset([0, 1]).x.is_cuda


def test_from_arrays_uint8_hw_scaled_and_channel_added() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    ds = from_arrays(x, np.array([1, 0]))
    assert ds.x.shape == (2, 1, 3, 4) and ds.x.dtype == torch.float32
    assert ds.x[1, 0, 2, 3].item() == pytest.approx(x[1, 2, 3] / 255.0)
    assert ds.classes == ("0", "1")
    assert ds.y.dtype == torch.int64
    x[0, 0, 0] = 255  # the dataset does not alias the caller's array
    assert ds.x[0, 0, 0, 0] == 0


def test_from_arrays_channels_last_rgb() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 5, 6, 3), dtype=np.uint8)
    ds = from_arrays(x, [0, 1, 2], classes=["a", "b", "c"], name="n", split="s")
    assert ds.x.shape == (3, 3, 5, 6)
    # pixel (i, row, col, channel) lands at (i, channel, row, col)
    assert ds.x[2, 1, 4, 5].item() == pytest.approx(x[2, 4, 5, 1] / 255.0)
    assert (ds.name, ds.split, ds.classes) == ("n", "s", ("a", "b", "c"))


def test_from_arrays_channels_last_grey_and_channels_first_float() -> None:
    x = np.zeros((2, 7, 8, 1), np.uint8)
    assert from_arrays(x, [0, 0]).x.shape == (2, 1, 7, 8)
    xf = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    ds = from_arrays(xf, torch.tensor([[0], [1], [1], [0]]))  # y as N×1 is flattened
    assert ds.x.shape == (4, 3, 8, 8) and ds.x.dtype == torch.float32
    assert ds.y.tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("shape", [(2, 4, 4, 5), (2, 16), (1, 2, 1, 4, 4), (3,)])
def test_from_arrays_bad_shapes_name_the_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        from_arrays(np.zeros(shape, np.uint8), np.zeros(shape[0], np.int64))


def test_from_arrays_rejects_ambiguous_or_wrong_values() -> None:
    with pytest.raises(InputError, match="ambiguous"):
        from_arrays(np.zeros((2, 4, 4), np.int32), [0, 1])
    with pytest.raises(InputError, match="integers"):
        from_arrays(np.zeros((2, 4, 4), np.uint8), [0.0, 1.0])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        from_arrays(np.full((2, 4, 4), 3.0), [0, 1])
    with pytest.raises(InputError, match=r"\[0, 2\)"):
        from_arrays(np.zeros((2, 4, 4), np.uint8), [0, 2], classes=["a", "b"])
    with pytest.raises(InputError, match="numpy array or torch tensor"):
        from_arrays("images", [0])
