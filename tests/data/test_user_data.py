"""Bring your own data: deepscope.data.user.load_data and audit_split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepscope.data import Dataset, audit_split, load_data
from deepscope.data.user import (
    ImageShapeError,
    LabelError,
    UnsupportedFormatError,
    UserDataError,
)
from deepscope.errors import DataCorruptError, DataMissingError, DeepscopeError, InputError


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _folder(root: Path, classes=("0", "1", "2"), n=4, size=(6, 5), seed=0, mode="L") -> Path:
    rng = np.random.default_rng(seed)
    for c in classes:
        for i in range(n):
            shape = size if mode == "L" else (*size, 3)
            _png(root / c / f"img{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and isinstance(exc.value, DeepscopeError)
    return text


# ---------------------------------------------------------------------------------------------
# image folders


def test_image_folder_pixels_labels_and_natural_class_order(tmp_path):
    root = _folder(tmp_path / "imgs", classes=("10", "2", "1"), n=2)
    ds = load_data(root)
    assert isinstance(ds, Dataset) and ds.classes == ("1", "2", "10")
    assert ds.input_shape == (1, 6, 5) and ds.x.dtype == torch.float32 and len(ds) == 6
    assert ds.y.tolist() == [0, 0, 1, 1, 2, 2]
    expected = np.asarray(Image.open(root / "2" / "img1.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(ds.x[3, 0].numpy(), expected, rtol=0, atol=1e-7)
    assert ds.info["format"] == "image-folder" and ds.info["conversions"] == []


def test_image_folder_follows_given_class_names(tmp_path):
    root = _folder(tmp_path / "imgs", classes=("cat", "dog"), n=2)
    ds = load_data(root, classes=("dog", "bird", "cat"))
    assert ds.classes == ("dog", "bird", "cat") and ds.y.tolist() == [2, 2, 0, 0]
    with pytest.raises(LabelError, match="not among classes") as info:
        load_data(root, classes=("dog", "bird"))
    _one_line(info)


def test_mixed_sizes_are_an_error_unless_resized(tmp_path):
    root = _folder(tmp_path / "imgs", n=3, size=(6, 5))
    _png(root / "1" / "big.png", np.zeros((9, 9), np.uint8))
    with pytest.raises(ImageShapeError, match=r"2 sizes.*resize=True") as info:
        load_data(root)
    assert "big.png" in _one_line(info)
    ds = load_data(root, resize=True)  # to the most common size
    assert ds.input_shape == (1, 6, 5)
    assert any("resized bilinear" in c and "(1 image)" in c for c in ds.info["conversions"])
    ds = load_data(root, resize=True, input_shape=(1, 4, 4))
    assert ds.input_shape == (1, 4, 4) and float(ds.x.max()) <= 1.0


def test_size_other_than_input_shape_says_resize(tmp_path):
    root = _folder(tmp_path / "imgs")
    with pytest.raises(ImageShapeError, match="resize=True") as info:
        load_data(root, input_shape=(1, 28, 28))
    assert "28×28" in _one_line(info)


def test_channels_are_converted_only_when_asked(tmp_path):
    root = _folder(tmp_path / "rgb", mode="RGB", n=2)
    with pytest.raises(ImageShapeError, match="grayscale=True") as info:
        load_data(root, input_shape=(1, 6, 5))
    _one_line(info)
    ds = load_data(root, grayscale=True)
    rgb = np.asarray(Image.open(root / "0" / "img0.png"), dtype=np.float64) / 255
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(ds.x[0, 0].numpy(), luma, atol=1e-6)
    assert ds.input_shape == (1, 6, 5)
    gray = load_data(_folder(tmp_path / "gray", n=2), grayscale=False)
    assert gray.input_shape == (3, 6, 5) and torch.equal(gray.x[:, 0], gray.x[:, 2])


def test_mixed_gray_and_colour_needs_a_choice(tmp_path):
    root = _folder(tmp_path / "imgs", n=2)
    _png(root / "0" / "colour.png", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(ImageShapeError, match="mixes grayscale and colour"):
        load_data(root)
    assert load_data(root, grayscale=True).input_shape == (1, 6, 5)


def test_rgba_and_jpeg_are_read_and_the_conversion_is_stated(tmp_path):
    root = _folder(tmp_path / "imgs", mode="RGB", n=2)
    Image.fromarray(np.full((6, 5, 4), 200, np.uint8), "RGBA").save(root / "1" / "alpha.png")
    Image.fromarray(np.full((6, 5, 3), 10, np.uint8)).save(root / "2" / "photo.JPG")
    ds = load_data(root)
    assert len(ds) == 8 and ds.input_shape == (3, 6, 5)
    assert any("RGBA converted to RGB" in c for c in ds.info["conversions"])


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda r: r.mkdir(), UserDataError, "is empty"),
        (lambda r: _png(r / "a.png", np.zeros((4, 4), np.uint8)), UserDataError,
         "no class folders"),
        (lambda r: (_folder(r), (r / "3").mkdir()), UserDataError, "class folder .* is empty"),
        (lambda r: _folder(r, classes=("only",)), LabelError, "one class only"),
        (lambda r: (_folder(r), (r / "1" / "notes.txt").write_text("x")),
         UnsupportedFormatError, "not a PNG or JPEG"),
        (lambda r: (_folder(r), (r / "1" / "bad.png").write_bytes(b"not a png")),
         DataCorruptError, "bad.png"),
        (lambda r: (_folder(r), (r / "1" / "sub").mkdir()), UnsupportedFormatError, "sub"),
    ],
    ids=["empty-folder", "no-class-folders", "empty-class", "one-class", "unsupported-file",
         "corrupt-image", "nested-folder"],
)
def test_bad_image_folders(tmp_path, make, error, match):
    root = tmp_path / "imgs"
    make(root)
    with pytest.raises(error, match=match) as info:
        load_data(root)
    _one_line(info)


def test_truncated_png_is_corrupt(tmp_path):
    root = _folder(tmp_path / "imgs", size=(40, 40))
    target = root / "0" / "img0.png"
    target.write_bytes(target.read_bytes()[:60])
    with pytest.raises(DataCorruptError, match=r"img0\.png"):
        load_data(root)


def test_hidden_entries_are_skipped(tmp_path):
    root = _folder(tmp_path / "imgs", n=2)
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "0" / ".thumbs").write_bytes(b"\0")
    (root / ".ipynb_checkpoints").mkdir()
    assert len(load_data(root)) == 6


def test_max_samples_is_seeded_and_stratified(tmp_path):
    root = _folder(tmp_path / "imgs", n=10)
    a = load_data(root, max_samples=12, seed=1)
    b = load_data(root, max_samples=12, seed=1)
    c = load_data(root, max_samples=12, seed=2)
    assert len(a) == 12 and a.class_counts().tolist() == [4, 4, 4]
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)


# ---------------------------------------------------------------------------------------------
# .npz


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("layout", ["NHW", "NCHW", "NHWC"])
def test_npz_uint8_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 7, 5), dtype=np.uint8)
    stored = {"NHW": x, "NCHW": x[:, None], "NHWC": x[..., None]}[layout]
    ds = load_data(_npz(tmp_path / "d.npz", x=stored, y=np.arange(6) % 2))
    assert ds.input_shape == (1, 7, 5) and ds.classes == ("0", "1")
    np.testing.assert_allclose(ds.x[:, 0].numpy(), x / 255, atol=1e-7)


def test_npz_float_images_classes_and_boxes(tmp_path):
    x = np.random.default_rng(0).random((4, 3, 8, 8)).astype(np.float32)
    boxes = np.tile(np.array([[0, 0, 4, 4], [4, 4, 8, 8]]), (4, 1, 1))
    path = _npz(tmp_path / "d.npz", x=x, y=np.array([1, 0, 1, 0]),
                classes=np.array(["neg", "pos"]), boxes=boxes,
                box_names=np.array(["eye", "mouth"]))
    ds = load_data(path)
    assert ds.classes == ("neg", "pos") and ds.input_shape == (3, 8, 8)
    assert ds.extras["boxes"].shape == (4, 2, 4) and ds.info["box_names"] == ["eye", "mouth"]
    torch.testing.assert_close(ds.x, torch.from_numpy(x))
    small = load_data(path, resize=True, input_shape=(3, 4, 4))
    assert small.extras["boxes"][0].tolist() == [[0, 0, 2, 2], [2, 2, 4, 4]]
    mapped = load_data(path, classes=("pos", "neg"))
    assert mapped.y.tolist() == [0, 1, 0, 1]


def test_npz_token_ids_make_a_sequence_dataset(tmp_path):
    ids = np.array([[3, 4, 0], [5, 0, 0], [2, 2, 2]], dtype=np.int64)
    ds = load_data(_npz(tmp_path / "t.npz", x=ids, y=np.array([0, 1, 1])))
    assert ds.modality == "sequence" and ds.input_shape == (3,)


_X = np.zeros((4, 5, 5), np.uint8)


@pytest.mark.parametrize(
    ("arrays", "error", "match"),
    [
        ({"x": _X}, LabelError, "no 'y'"),
        ({"y": np.arange(4) % 2}, UserDataError, "no 'x'"),
        ({"x": _X, "y": np.array([0, 1, 0])}, LabelError, "4 samples but y has 3"),
        ({"x": _X, "y": np.array([0, 1, -1, 0])}, LabelError, "negative"),
        ({"x": _X, "y": np.array([0, 1, 0.5, 0])}, LabelError, "non-integer"),
        ({"x": _X, "y": np.array([0, 1, np.nan, 0])}, LabelError, "non-integer"),
        ({"x": _X, "y": np.array(["a", "b", "a", "b"])}, LabelError, "integer labels"),
        ({"x": _X, "y": np.zeros(4, np.int64)}, LabelError, "one class only"),
        ({"x": _X, "y": np.array([0, 1, 5, 0]), "classes": np.array(["a", "b"])}, LabelError,
         "out of range"),
        ({"x": _X.astype(np.int32), "y": np.arange(4) % 2}, UserDataError, "dtype int32"),
        ({"x": _X.astype(np.float32) + 2, "y": np.arange(4) % 2}, UserDataError,
         r"\[0, 1\]"),
        ({"x": np.full((4, 5, 5), np.nan, np.float32), "y": np.arange(4) % 2}, UserDataError,
         "NaN"),
        ({"x": np.zeros((4, 5, 5, 7), np.uint8), "y": np.arange(4) % 2}, UserDataError,
         "as images"),
        ({"x": _X, "y": np.arange(4) % 2, "boxes": np.zeros((4, 2), np.int64)},
         UserDataError, "N×A×4"),
        ({"x": _X, "y": np.arange(4) % 2, "boxes": np.tile([[0, 0, 9, 9]], (4, 1, 1))},
         UserDataError, "outside"),
    ],
    ids=["no-y", "no-x", "length-mismatch", "negative", "non-integer", "nan-label",
         "string-labels", "one-class", "out-of-range", "int32-images", "out-of-[0,1]",
         "nan-pixels", "bad-layout", "bad-boxes", "boxes-outside"],
)
def test_bad_npz(tmp_path, arrays, error, match):
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(error, match=match) as info:
        load_data(path)
    _one_line(info)


def test_npz_with_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4) % 2)
    with pytest.raises(UserDataError, match="pickle"):
        load_data(path)


def test_corrupt_npz(tmp_path):
    path = _npz(tmp_path / "d.npz", x=_X, y=np.arange(4) % 2)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataCorruptError, match="corrupt") as info:
        load_data(path)
    _one_line(info)


# ---------------------------------------------------------------------------------------------
# paths and options


def test_missing_empty_and_unsupported_paths(tmp_path):
    with pytest.raises(DataMissingError, match="does not exist"):
        load_data(tmp_path / "nope.npz")
    (tmp_path / "d.h5").write_bytes(b"x")
    with pytest.raises(UnsupportedFormatError, match=r"'\.h5'") as info:
        load_data(tmp_path / "d.h5")
    _one_line(info)
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(UserDataError, match="is empty"):
        load_data(tmp_path / "e.npz")


@pytest.mark.parametrize(
    "kwargs",
    [{"input_shape": (0, 2, 2)}, {"resize": "yes"}, {"grayscale": 1}, {"classes": "abc"},
     {"classes": ["a"]}, {"max_samples": 1}, {"seed": -1}, {"label_column": ""}],
)
def test_bad_options(tmp_path, kwargs):
    path = _npz(tmp_path / "d.npz", x=_X, y=np.arange(4) % 2)
    with pytest.raises(InputError):
        load_data(path, **kwargs)


# ---------------------------------------------------------------------------------------------
# audit_split


def _labelled(n: int, k: int = 2, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset(torch.rand(n, 1, 4, 4, generator=g), torch.arange(n) % k,
                   tuple(str(i) for i in range(k)))


def _keys(ds: Dataset) -> set[bytes]:
    return {row.numpy().tobytes() for row in ds.x}


def test_audit_split_from_data_only_is_disjoint_seeded_and_says_so():
    data = _labelled(100)
    split = audit_split(data, seed=3, train_like=0.3, repair_pool=0.3)
    assert split.sizes() == {"reference": 30, "test": 40, "pool": 30}
    parts = [_keys(split.reference), _keys(split.test), _keys(split.pool)]
    assert sum(map(len, parts)) == 100 and len(set.union(*parts)) == 100
    assert not split.reference_is_training and "over-fitting" in split.notes[0]
    again = audit_split(data, seed=3, train_like=0.3, repair_pool=0.3)
    assert torch.equal(split.test.x, again.test.x)
    assert not torch.equal(audit_split(data, seed=4).test.x, split.test.x)
    assert "test 40" in split.describe() and split.to_dict()["counts"]["test"] == [20, 20]


def test_audit_split_with_train_data_takes_the_pool_from_the_heldout_data():
    data, train = _labelled(40, seed=1), _labelled(100, seed=2)
    split = audit_split(data, train_data=train, repair_pool=0.25, max_samples=50)
    assert split.reference_is_training
    assert split.sizes() == {"reference": 50, "test": 30, "pool": 10}
    assert _keys(split.reference) <= _keys(train)
    # the pool is new inputs (MODE adds them to training): never what the model was trained on
    assert _keys(split.test) | _keys(split.pool) == _keys(data)
    assert not (_keys(split.test) & _keys(split.pool))
    assert not (_keys(split.pool) & _keys(train))


def test_audit_split_errors():
    data = _labelled(20)
    with pytest.raises(InputError, match="leave a test share"):
        audit_split(data, train_like=0.5, repair_pool=0.5)
    with pytest.raises(InputError, match="train_like"):
        audit_split(data, train_like=1.5)
    with pytest.raises(InputError, match="--train-data has classes"):
        audit_split(data, train_data=_labelled(20, k=4))
    with pytest.raises(InputError, match="is empty"):
        audit_split(_labelled(2), train_like=0.1, repair_pool=0.1)


# ---------------------------------------------------------------------------------------------
# CSV


def _csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_features_and_named_labels(tmp_path):
    path = _csv(tmp_path / "t.csv", "\ufeffage,label,height\n30,dog,1.5\n-2,cat,0\n7,dog,1e3\n")
    ds = load_data(path)
    assert ds.modality == "tabular" and ds.input_shape == (2,)
    assert ds.classes == ("cat", "dog") and ds.y.tolist() == [1, 0, 1]
    assert ds.x.tolist() == [[30.0, 1.5], [-2.0, 0.0], [7.0, 1000.0]]
    assert ds.info["feature_names"] == ["age", "height"]
    assert load_data(path, classes=("dog", "cat")).y.tolist() == [0, 1, 0]
    assert load_data(path, input_shape=(2,)).input_shape == (2,)


def test_csv_integer_labels_and_other_label_column(tmp_path):
    path = _csv(tmp_path / "t.csv", "a,b,target\n1,2,0\n3,4,2\n5,6,1\n7,8,2\n")
    ds = load_data(path, label_column="target", max_samples=3, seed=0)
    assert ds.classes == ("0", "1", "2") and len(ds) == 3


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "match"),
    [
        ("a,b\n1,2\n", {}, LabelError, "no column 'label'"),
        ("a,label\n1,0\nnan,1\n", {}, UserDataError, "NaN or infinite"),
        ("a,label\n1,0\n,1\n", {}, UserDataError, "empty cell"),
        ("a,label\n1,0\nParis,1\n", {}, UserDataError, "not a number"),
        ("a,b,label\n1,2,0\n1,1\n", {}, UserDataError, "2 cells but the header has 3"),
        ("a,label\n1,0\n2,0\n", {}, LabelError, "one class only"),
        ("a,label\n1,0\n2,-1\n", {}, LabelError, "negative"),
        ("a,label\n1,0\n2,1.5\n", {}, LabelError, "mixes numbers"),
        ("a,label\n1,0\n2,5\n", {"classes": ("x", "y")}, LabelError, "out of range"),
        ("a,label\n1,cat\n2,emu\n", {"classes": ("cat", "dog")}, LabelError, "not among"),
        ("a,label\n", {}, UserDataError, "no rows"),
        ("label\n1\n0\n", {}, UserDataError, "no feature columns"),
        ("a,b,label\n1,2,0\n3,4,1\n", {"input_shape": (3,)}, InputError, "2 feature columns"),
    ],
    ids=["no-label-column", "nan", "empty-cell", "text-cell", "ragged", "one-class",
         "negative", "mixed-labels", "out-of-range", "unknown-name", "no-rows",
         "no-features", "wrong-width"],
)
def test_bad_csv(tmp_path, text, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        load_data(_csv(tmp_path / "t.csv", text), **kwargs)
    _one_line(info)


def test_csv_that_is_not_utf8(tmp_path):
    path = _csv(tmp_path / "t.csv", "a,label\n1,café\n2,thé\n", encoding="latin-1")
    with pytest.raises(UserDataError, match=r"not UTF-8.*line 2") as info:
        load_data(path)
    _one_line(info)


# ---------------------------------------------------------------------------------------------
# TSV


@pytest.fixture
def vocab():
    pytest.importorskip("tokenizers")
    from deepscope.data import build_vocabulary

    return build_vocabulary(["a good film", "a bad film", "good good", "bad bad"],
                            min_frequency=1, max_length=6)


def test_tsv_is_encoded_with_the_vocabulary(tmp_path, vocab):
    path = _csv(tmp_path / "s.tsv", "text\tlabel\na good film\t1\n\nbad\tbad film\t0\n")
    ds = load_data(path, vocabulary=vocab, classes=("negative", "positive"))
    assert ds.modality == "sequence" and ds.input_shape == (6,)
    assert ds.texts == ["a good film", "bad\tbad film"] and ds.y.tolist() == [1, 0]
    assert torch.equal(ds.x, vocab.encode(ds.texts)) and ds.vocab is vocab
    assert ds.classes == ("negative", "positive")


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "match"),
    [
        ("a good film 1\nbad film\t0\n", {}, UserDataError, "no tab"),
        ("\t1\nbad\t0\n", {}, UserDataError, "empty text"),
        ("good\t1\nbad\t1\n", {}, LabelError, "one class only"),
        ("good\t1\nbad\t0.5\n", {}, LabelError, "mixes numbers"),
        ("text\tlabel\n", {}, UserDataError, "no text<TAB>label"),
        ("good\t1\nbad\t0\n", {"input_shape": (9,)}, InputError, "6 tokens"),
    ],
    ids=["no-tab", "empty-text", "one-class", "non-integer", "header-only", "wrong-length"],
)
def test_bad_tsv(tmp_path, vocab, text, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        load_data(_csv(tmp_path / "s.tsv", text), vocabulary=vocab, **kwargs)
    _one_line(info)


def test_tsv_needs_utf8_and_a_vocabulary(tmp_path, vocab):
    latin = _csv(tmp_path / "l.tsv", "très bon\t1\nmauvais\t0\n", encoding="latin-1")
    with pytest.raises(UserDataError, match="not UTF-8") as info:
        load_data(latin, vocabulary=vocab)
    _one_line(info)
    ok = _csv(tmp_path / "s.tsv", "good\t1\nbad\t0\n")
    with pytest.raises(UserDataError, match="vocabulary"):
        load_data(ok)
    with pytest.raises(InputError, match="Vocabulary"):
        load_data(ok, vocabulary={"a": 1})


def test_tabular_rows_in_a_dataset():
    ds = Dataset(torch.tensor([[1.0, -5.0], [2.0, 300.0]]), torch.tensor([0, 1]), ("a", "b"))
    assert ds.modality == "tabular" and ds.input_shape == (2,)
    assert ds.subset([1]).x.tolist() == [[2.0, 300.0]]
    with pytest.raises(InputError, match="NaN"):
        Dataset(torch.tensor([[1.0, float("nan")]]), torch.tensor([0]), ("a", "b"))
    with pytest.raises(InputError, match="4-D"):
        Dataset(torch.zeros(2, 3, 3), torch.tensor([0, 1]), ("a", "b"))


def test_npz_rows_are_tabular(tmp_path):
    rows = np.array([[1.5, -200.0], [0.0, 3.0], [2.0, 2.0]])
    ds = load_data(_npz(tmp_path / "r.npz", x=rows, y=np.array([0, 1, 0])))
    assert ds.modality == "tabular" and ds.x.tolist() == rows.tolist()
    rows[1, 1] = np.inf
    with pytest.raises(UserDataError, match="NaN or infinite"):
        load_data(_npz(tmp_path / "bad.npz", x=rows, y=np.array([0, 1, 0])))
    with pytest.raises(UserDataError, match="2-D x has dtype bool"):
        load_data(_npz(tmp_path / "b.npz", x=np.zeros((3, 2), bool), y=np.array([0, 1, 0])))


def test_npz_masks_for_ami(tmp_path):
    masks = np.zeros((4, 2, 8, 8), bool)
    masks[:, 0, :4, :4] = True
    masks[:, 1, 4:, 4:] = True
    path = _npz(tmp_path / "m.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4) % 2,
                masks=masks, mask_names=np.array(["eye", "mouth"]))
    ds = load_data(path)
    assert ds.extras["masks"].dtype == torch.float32 and ds.extras["masks"].shape == (4, 2, 8, 8)
    assert ds.info["mask_names"] == ["eye", "mouth"]
    small = load_data(path, resize=True, input_shape=(1, 4, 4))
    assert small.extras["masks"].shape == (4, 2, 4, 4)
    assert small.extras["masks"][0, 0, 0, 0] == 1.0 and small.extras["masks"][0, 0, 3, 3] == 0.0
    assert small.extras["masks"][0, 1, 3, 3] == 1.0 and small.extras["masks"][0, 1, 0, 0] == 0.0


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"masks": np.zeros((4, 1, 3, 3), bool)}, "masks are 3×3"),
        ({"masks": np.full((4, 1, 5, 5), 2.0)}, r"\[0, 1\]"),
        ({"masks": np.zeros((4, 1, 5, 5)), "boxes": np.zeros((4, 1, 4))}, "both boxes and masks"),
        ({"boxes": np.tile([[0, 0, 2, 2]], (4, 1, 1)), "box_names": np.array(["a", "b"])},
         "2 box_names for 1"),
    ],
    ids=["mask-size", "mask-range", "boxes-and-masks", "box-names"],
)
def test_bad_attribute_regions(tmp_path, extra, match):
    path = _npz(tmp_path / "d.npz", x=_X, y=np.arange(4) % 2, **extra)
    with pytest.raises(UserDataError, match=match) as info:
        load_data(path)
    _one_line(info)
