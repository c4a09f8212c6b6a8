"""Bring your own model: deepscope.models.external.load_model and LoadedModel.check_against."""

from __future__ import annotations

import builtins
import io as pyio
import json
import os
import pickle
import zipfile

import pytest
import torch

from deepscope.data import Dataset
from deepscope.errors import CheckpointError, DeepscopeError, InputError, ModelError
from deepscope.models import LoadedModel, load_model, save_checkpoint, zoo
from deepscope.models.external import MissingExtraError, ModelInputError, UnsafeModelError
from deepscope.testing.models import tiny_cnn

FACTORY = "deepscope.testing.models:tiny_cnn"


def _data(n: int = 6, shape=(1, 8, 8), k: int = 3, classes=None) -> Dataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % k
    names = classes or tuple(str(i) for i in range(k))
    return Dataset(torch.rand((n, *shape), generator=g), y, names)


def _script(tmp_path, model=None, extra=None, name="model.pt"):
    model = model if model is not None else tiny_cnn(num_classes=3, seed=1)
    scripted = torch.jit.trace(model, torch.rand(2, 1, 8, 8))
    path = tmp_path / name
    files = {} if extra is None else {"deepscope.json": json.dumps(extra)}
    torch.jit.save(scripted, str(path), _extra_files=files)
    return path, model


def test_torchscript_loads_by_content_and_matches_the_original(tmp_path):
    path, model = _script(tmp_path, name="model.bin")  # the extension says nothing
    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel)
    assert loaded.kind == "torchscript" and loaded.checkpoint is None
    assert loaded.input_shape is None and loaded.num_classes is None  # not known before data
    assert not loaded.module.training
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x))
    checked = loaded.check_against(_data())
    assert checked.input_shape == (1, 8, 8) and checked.num_classes == 3
    assert checked.class_names == ("0", "1", "2") and checked.differentiable
    card = checked.to_dict()
    assert card["kind"] == "torchscript" and card["parameters"] == zoo.count_parameters(model)
    assert card["input_shape"] == [1, 8, 8] and card["classes"] == ["0", "1", "2"]
    json.dumps(card)


def test_torchscript_with_input_shape_probes_the_number_of_classes(tmp_path):
    path, _ = _script(tmp_path)
    loaded = load_model(path, input_shape=(1, 8, 8), class_names=("a", "b", "c"))
    assert loaded.num_classes == 3 and loaded.differentiable
    assert loaded.class_names == ("a", "b", "c")


def test_torchscript_metadata_file_gives_shape_and_classes(tmp_path):
    path, _ = _script(tmp_path, extra={"input_shape": [1, 8, 8], "classes": ["x", "y", "z"]})
    loaded = load_model(path)
    assert loaded.input_shape == (1, 8, 8) and loaded.class_names == ("x", "y", "z")
    assert loaded.num_classes == 3


def test_torchscript_of_another_input_shape_than_the_data_is_one_line(tmp_path):
    path, _ = _script(tmp_path)
    with pytest.raises(ModelInputError, match="cannot take inputs of shape") as info:
        load_model(path).check_against(_data(shape=(3, 32, 32)))
    assert "\n" not in str(info.value) and "input_shape" in str(info.value)
    loaded = load_model(path, input_shape=(1, 8, 8))
    with pytest.raises(ModelInputError, match=r"resize=True") as info:
        loaded.check_against(_data(shape=(1, 16, 16)))
    assert "(1, 8, 8)" in str(info.value) and "(1, 16, 16)" in str(info.value)
    with pytest.raises(ModelInputError, match="cannot take inputs"):
        load_model(path, input_shape=(3, 32, 32))


def test_deepscope_checkpoint_gives_everything(tmp_path):
    model = zoo.build("cnn-8k", seed=0)
    path = save_checkpoint(tmp_path / "c.pt", model, arch="cnn-8k",
                           classes=[f"digit{i}" for i in range(10)])
    loaded = load_model(path)
    assert loaded.kind == "deepscope" and loaded.arch == "cnn-8k"
    assert loaded.input_shape == (1, 28, 28) and loaded.num_classes == 10
    assert loaded.class_names[3] == "digit3" and loaded.checkpoint is not None
    assert loaded.differentiable
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x))
    # labels must follow the model's class names, in order
    data = _data(shape=(1, 28, 28), k=10, n=10, classes=tuple(f"digit{i}" for i in range(10)))
    assert loaded.check_against(data).num_classes == 10
    shuffled = tuple(f"digit{i}" for i in (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(ModelInputError, match=r"classes=model\.class_names"):
        loaded.check_against(_data(shape=(1, 28, 28), k=10, n=10, classes=shuffled))
    with pytest.raises(ModelInputError, match="num_classes=10"):
        load_model(path, num_classes=4)


def test_state_dict_needs_an_explicit_arch(tmp_path):
    model = tiny_cnn(num_classes=4, seed=2)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match=r"arch='pkg.module:factory'"):
        load_model(tmp_path / "sd.pt")
    loaded = load_model(tmp_path / "sd.pt", arch=FACTORY, num_classes=4, input_shape=(1, 8, 8))
    assert loaded.kind == "state-dict" and loaded.num_classes == 4
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x))


def test_custom_checkpoint_runs_its_factory_only_when_named(tmp_path):
    model = tiny_cnn(num_classes=3, seed=2)
    path = save_checkpoint(tmp_path / "c.pt", model, arch="custom:" + FACTORY,
                           classes=["a", "b", "c"])
    with pytest.raises(CheckpointError, match=r"--arch"):
        load_model(path)
    loaded = load_model(path, arch=FACTORY, input_shape=(1, 8, 8))
    assert loaded.kind == "deepscope" and loaded.class_names == ("a", "b", "c")
    with pytest.raises(InputError, match="drop arch="):
        load_model(save_checkpoint(tmp_path / "z.pt", zoo.build("cnn-8k", seed=0),
                                   arch="cnn-8k", classes=[str(i) for i in range(10)]),
                   arch=FACTORY)


def test_arch_with_a_torchscript_file_is_refused(tmp_path):
    path, _ = _script(tmp_path)
    with pytest.raises(InputError, match="carries its own code"):
        load_model(path, arch=FACTORY)


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.open, (self.target, "w"))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, legacy):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    if legacy:  # a plain pickle, as the pre-zip torch.save wrote
        path.write_bytes(pickle.dumps({"state": _Evil(str(marker))}, protocol=2))
    else:
        torch.save({"state": _Evil(str(marker))}, path)
    # unpickled unsafely this would create the file: prove the payload works
    if legacy:
        pickle.loads(path.read_bytes())
        assert marker.exists()
        marker.unlink()
    with pytest.raises(UnsafeModelError, match="refused") as info:
        load_model(path, arch=FACTORY)
    assert "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"hello, this is not a model", "not a model file"),
        (b"\x80\x04garbage", "corrupt"),
    ],
)
def test_missing_empty_and_corrupt_files(tmp_path, content, match):
    path = tmp_path / "m.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_a_folder_is_not_a_model(tmp_path):
    with pytest.raises(CheckpointError, match="not a file"):
        load_model(tmp_path)


def test_truncated_torchscript_is_corrupt(tmp_path):
    path, _ = _script(tmp_path)
    data = path.read_bytes()
    broken = tmp_path / "broken.pt"
    # keep the zip directory readable but break an entry's bytes
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                payload = payload[: len(payload) // 2]
            dst.writestr(item, payload)
    assert broken.read_bytes() != data
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_model(broken)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_model(cut)


def test_onnx_without_the_extra_names_it(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch")
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name in ("onnx", "onnx2torch"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(MissingExtraError, match=r"deepscope\[onnx\]") as info:
        load_model(path)
    assert isinstance(info.value, ModelError) and "\n" not in str(info.value)


def test_flags_are_checked(tmp_path):
    path, _ = _script(tmp_path)
    for kwargs, match in [
        ({"input_shape": (1, -8, 8)}, "input_shape"),
        ({"input_shape": "abc"}, "input_shape"),
        ({"num_classes": 1}, "num_classes"),
        ({"class_names": "abc"}, "class_names"),
        ({"class_names": ("a", "a")}, "distinct"),
        ({"class_names": ("a", "b"), "num_classes": 3}, "one name per output"),
        ({"arch": 3}, "arch"),
    ]:
        with pytest.raises(InputError, match=match):
            load_model(path, **kwargs)
    with pytest.raises(ModelInputError, match="2 class names for a model with 3 outputs"):
        load_model(path, input_shape=(1, 8, 8), class_names=("a", "b"))
    with pytest.raises(ModelInputError, match="num_classes=3"):
        load_model(path, input_shape=(1, 8, 8), num_classes=5)


def test_data_with_more_classes_than_outputs(tmp_path):
    path, _ = _script(tmp_path)
    with pytest.raises(ModelInputError, match="outputs only 3 scores") as info:
        load_model(path).check_against(_data(k=5, n=10))
    assert "\n" not in str(info.value)


def test_every_error_is_a_deepscope_error(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(DeepscopeError):
        load_model(path)


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path):
    scripted = torch.jit.trace(torch.nn.Flatten(), torch.rand(2, 1, 8, 8))
    path = tmp_path / "flat.pt"
    buf = pyio.BytesIO()
    torch.jit.save(scripted, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(ModelInputError, match="classifiers"):
        load_model(path, input_shape=(1, 1, 1))
    assert os.path.getsize(path) > 0


# ---------------------------------------------------------------------------------------------
# ONNX (the optional `onnx` extra; skipped when it is not installed)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        pytest.skip("the onnx extra is not installed")
    return onnx


@pytest.fixture
def onnx_tools(monkeypatch):
    """``onnx`` and a working ``onnx2torch``; skip without the extra.

    onnx2torch imports torchvision at import time for its NMS / RoiAlign converters only. The
    CPU torch of the development machines has no matching torchvision wheel, so when torchvision
    is absent it is replaced by an empty stand-in here: classifiers use neither operator, and
    every conversion below is onnx2torch's own.
    """
    import importlib.util
    import sys
    import types

    onnx = _require_onnx()
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("the onnx extra (onnx2torch) is not installed")
    if importlib.util.find_spec("torchvision") is None:
        stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        ops.roi_align = None
        stub.ops = ops
        monkeypatch.setitem(sys.modules, "torchvision", stub)
        monkeypatch.setitem(sys.modules, "torchvision.ops", ops)
    try:
        import onnx2torch  # noqa: F401
    except Exception as exc:  # e.g. a torchvision built for another torch
        pytest.skip(f"onnx2torch cannot be imported here ({type(exc).__name__}: {exc})")
    return onnx


def _gemm_onnx(onnx, path, *, dims=("N", 1, 4, 4), inputs=1):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 16)).astype(np.float32)
    b = np.arange(3, dtype=np.float32)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "W", "B"], ["y"], transB=1)]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))]
    if inputs == 2:
        ins.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, list(dims)))
    graph = helper.make_graph(
        nodes, "tiny", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w, b


def test_onnx_graph_is_converted_with_its_input_shape(tmp_path, onnx_tools):
    w, b = _gemm_onnx(onnx_tools, tmp_path / "tiny.model")  # no .onnx suffix: read by content
    loaded = load_model(tmp_path / "tiny.model")
    assert loaded.kind == "onnx" and loaded.input_shape == (1, 4, 4)
    assert loaded.num_classes == 3 and loaded.differentiable
    x = torch.rand(5, 1, 4, 4)
    with torch.no_grad():
        out = loaded.module(x)
    expected = x.reshape(5, -1).numpy() @ w.T + b
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelInputError, match="resize=True"):
        loaded.check_against(_data(shape=(1, 8, 8)))


def test_onnx_with_symbolic_sizes_is_probed_with_the_data(tmp_path, onnx_tools):
    _gemm_onnx(onnx_tools, tmp_path / "m.onnx", dims=("N", "C", "H", "W"))
    loaded = load_model(tmp_path / "m.onnx")
    assert loaded.input_shape is None
    assert loaded.check_against(_data(shape=(1, 4, 4))).input_shape == (1, 4, 4)


def test_onnx_export_of_a_zoo_cnn_matches_it(tmp_path, onnx_tools):
    model = zoo.build("cnn-8k", seed=0)
    path = tmp_path / "cnn.onnx"
    try:
        torch.onnx.export(model, (torch.rand(2, 1, 28, 28),), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}})
    except Exception as exc:  # an exporter that needs packages this machine lacks
        pytest.skip(f"torch.onnx.export is unavailable here ({type(exc).__name__})")
    loaded = load_model(path)
    assert loaded.input_shape == (1, 28, 28) and loaded.num_classes == 10
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x), rtol=1e-4, atol=1e-5)


def test_bad_onnx_files(tmp_path, onnx_tools):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage that is not protobuf")
    with pytest.raises(CheckpointError, match="cannot read ONNX") as info:
        load_model(path)
    assert "\n" not in str(info.value)
    _gemm_onnx(onnx_tools, tmp_path / "two.onnx", inputs=2)
    with pytest.raises(ModelError, match="2 inputs"):
        load_model(tmp_path / "two.onnx")


def test_a_broken_onnx2torch_import_is_one_line(tmp_path, monkeypatch):
    _require_onnx()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch")
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "onnx2torch":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(MissingExtraError, match="torchvision built for your torch") as info:
        load_model(path)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# other modalities


def test_text_checkpoint_with_its_vocabulary_reads_a_tsv(tmp_path):
    pytest.importorskip("tokenizers")
    from deepscope.data import build_vocabulary, load_data
    from deepscope.models import vocabulary_metadata

    vocab = build_vocabulary(["a good film", "a bad film", "good", "bad"], min_frequency=1,
                             max_length=8)
    model = zoo.build("text-cnn-1.9m", vocab_size=len(vocab), seed=0)
    path = save_checkpoint(tmp_path / "text.pt", model, arch="text-cnn-1.9m",
                           classes=["negative", "positive"],
                           config={"vocab_size": len(vocab)},
                           metadata=vocabulary_metadata(vocab))
    loaded = load_model(path)
    assert loaded.input_shape == (8,) and loaded.input_dtype == "int64"
    assert loaded.num_classes == 2 and not loaded.differentiable  # ids carry no gradient
    tsv = tmp_path / "s.tsv"
    tsv.write_text("a good film\tpositive\nbad\tnegative\n", encoding="utf-8")
    from deepscope.models import vocabulary_of

    data = load_data(tsv, vocabulary=vocabulary_of(loaded.checkpoint),
                     classes=loaded.class_names)
    checked = loaded.check_against(data)
    assert checked.input_shape == (8,) and checked.class_names == ("negative", "positive")
    with pytest.raises(ModelInputError, match="int64"):
        loaded.check_against(_data(shape=(1, 8, 8), k=2))


def test_torchscript_token_model_is_probed_with_ids(tmp_path):
    model = zoo.build("text-cnn-1.9m", vocab_size=20, seed=0)
    scripted = torch.jit.trace(model, torch.ones(2, 8, dtype=torch.int64))
    torch.jit.save(scripted, str(tmp_path / "t.pt"))
    loaded = load_model(tmp_path / "t.pt", input_shape=(8,))
    assert loaded.input_dtype == "int64" and loaded.num_classes == 2


def test_torchscript_mlp_on_tabular_rows(tmp_path):
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    torch.jit.save(torch.jit.script(mlp), str(tmp_path / "mlp.pt"))
    rows = Dataset(torch.randn(6, 4) * 50, torch.arange(6) % 3, ("a", "b", "c"))
    checked = load_model(tmp_path / "mlp.pt").check_against(rows)
    assert checked.input_shape == (4,) and checked.num_classes == 3 and checked.differentiable
    with pytest.raises(ModelInputError, match="cannot take inputs"):
        load_model(tmp_path / "mlp.pt").check_against(
            Dataset(torch.randn(6, 5), torch.arange(6) % 3, ("a", "b", "c")))


# ---------------------------------------------------------------------------------------------
# held out means held out


def test_training_samples_are_left_out_of_the_test_data():
    from deepscope.models import check_held_out

    train = _data(n=12, shape=(1, 4, 4))
    fresh = Dataset(torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(9)),
                    torch.tensor([0, 1, 2, 0, 1]), ("0", "1", "2"))
    mixed = Dataset(torch.cat([fresh.x, train.x[:3]]), torch.cat([fresh.y, train.y[:3]]),
                    fresh.classes)
    check = check_held_out(mixed, train_data=train)
    assert check.removed == 3 and check.verified and len(check.test) == 5
    assert torch.equal(check.test.x, fresh.x) and "3 of 8" in check.notes[0]
    clean = check_held_out(fresh, train_data=train)
    assert clean.removed == 0 and clean.notes == () and clean.verified
    with pytest.raises(InputError, match="all 12 samples"):
        check_held_out(train, train_data=train)
    unknown = check_held_out(fresh)
    assert not unknown.verified and "optimistic" in unknown.notes[0]


def test_the_recorded_training_set_is_refused_as_test_data():
    from deepscope.models import TrainingData, check_held_out

    train = _data(n=12, shape=(1, 4, 4))
    record = TrainingData.of(train, dataset="mine", protocol="custom", seed=0)
    with pytest.raises(InputError, match="exactly the model's training set"):
        check_held_out(train, training_data=record)
    other = _data(n=6, shape=(1, 4, 4), k=3)
    other = Dataset(other.x * 0.5, other.y, other.classes)
    check = check_held_out(other, training_data=record)
    assert not check.verified and "--train-data to check" in check.notes[0]
    noted = check_held_out(other, train_data=train.subset(slice(0, 6)), training_data=record)
    assert "not the training set the checkpoint records" in noted.notes[0]


def test_a_whole_pickled_model_is_refused_and_says_what_to_save(tmp_path):
    torch.save(tiny_cnn(), tmp_path / "whole.pt")  # torch.save(model): a pickle of the class
    with pytest.raises(UnsafeModelError, match=r"torch\.jit\.save.*state_dict") as info:
        load_model(tmp_path / "whole.pt")
    assert "\n" not in str(info.value)


def test_state_dict_that_does_not_fit_the_factory(tmp_path):
    torch.save(tiny_cnn(num_classes=4).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_model(tmp_path / "sd.pt", arch=FACTORY, num_classes=5)
    with pytest.raises(InputError, match="cannot import module"):
        load_model(tmp_path / "sd.pt", arch="no_such_package.models:net")


def test_unavailable_device_is_one_line(tmp_path):
    path, _ = _script(tmp_path)
    with pytest.raises(InputError, match="device"):
        load_model(path, device="gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            load_model(path, device="cuda")


def test_numbered_classes_that_are_not_label_ids_need_class_names(tmp_path):
    path, _ = _script(tmp_path)
    with pytest.raises(ModelInputError, match="--classes") as info:
        load_model(path).check_against(_data(classes=("3", "5", "7")))
    assert "\n" not in str(info.value)
    named = load_model(path, class_names=("3", "5", "7")).check_against(
        _data(classes=("3", "5", "7")))
    assert named.class_names == ("3", "5", "7")


def test_model_card_names_the_recorded_training_data(tmp_path):
    from deepscope.models import TrainingData

    model = tiny_cnn(num_classes=3, seed=0)
    record = TrainingData.of(_data(n=9), dataset="my-photos", protocol="custom", seed=4)
    path = save_checkpoint(tmp_path / "c.pt", model, arch="custom:" + FACTORY,
                           classes=["a", "b", "c"], metadata={"training_data": record})
    loaded = load_model(path, arch=FACTORY, input_shape=(1, 8, 8))
    assert loaded.checkpoint.training_data == record
    card = loaded.to_dict()
    assert "my-photos" in card["training_data"] and "9 samples" in card["training_data"]
    assert card["arch"] == "custom:" + FACTORY
