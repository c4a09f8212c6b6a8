from __future__ import annotations

import pytest
import torch

from deepscope.errors import InputError, RegistryError
from deepscope.models import hooks, zoo

NAMES = zoo.names()


def test_zoo_has_the_briefed_families():
    assert {"mlp-100k", "mlp-270k", "cnn-8k", "cnn-100k", "cnn-1.2m", "cnn-3.2m"} <= set(NAMES)
    assert {"cifar-cnn-60k", "cifar-cnn-1m"} <= set(NAMES)
    assert any(n.startswith("face-vgg-") for n in NAMES)
    assert {zoo.spec(n).family for n in NAMES} >= {"mlp", "cnn", "vgg", "tagger", "text-cnn",
                                                   "text-rnn"}


@pytest.mark.parametrize("name", NAMES)
def test_build_forward_and_honest_name(name):
    spec = zoo.spec(name)
    model = zoo.build(name, seed=0)
    assert not model.training
    x = zoo.example_input(name, 2)
    per_position = tuple(x.shape[1:]) if spec.family == "tagger" else ()
    assert model(x).shape == (2, *per_position, spec.num_classes)
    count = zoo.count_parameters(model)
    nominal = zoo.nominal_size(name)
    assert abs(count - nominal) <= 0.10 * nominal, f"{name} has {count:,} parameters"
    assert zoo.arch_of(model) == name
    assert zoo.hidden_layers(model) == list(spec.hidden_layers)


@pytest.mark.parametrize("name", NAMES)
def test_hidden_layers_resolve_and_split_is_exact(name):
    spec = zoo.spec(name)
    model = zoo.build(name, seed=1, num_classes=5)
    n = 1 if spec.input_shape[-1] > 32 and spec.modality == "image" else 3  # face model: cheap
    x = zoo.example_input(name, n, seed=1)
    with torch.no_grad():
        expected = model(x)
        for layer in spec.hidden_layers:
            model.get_submodule(layer)  # resolves
            prefix, suffix = hooks.split(model, layer)
            features = prefix(x)
            assert torch.equal(suffix(features), expected), layer
    assert expected.shape[0] == n and expected.shape[-1] == 5
    # hidden layers are ordered input → output: each one's index in named_modules grows
    order = [n for n, _ in model.named_modules()]
    positions = [order.index(layer) for layer in spec.hidden_layers]
    assert positions == sorted(positions)


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = zoo.build("cnn-8k", seed=3).state_dict()
    b = zoo.build("cnn-8k", seed=3).state_dict()
    c = zoo.build("cnn-8k", seed=4).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_normalisation_is_the_first_layer_and_in_the_state_dict():
    model = zoo.build("cnn-8k", mean=0.5, std=0.25)
    first_name, first = next(iter(model.named_children()))
    assert first_name == "normalize"
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(first(x), (x - 0.5) / 0.25)
    assert "normalize.mean" in model.state_dict() and "normalize.std" in model.state_dict()


def test_build_rejects_bad_arguments():
    with pytest.raises(RegistryError, match="unknown architecture"):
        zoo.build("cnn-9000")
    with pytest.raises(InputError, match="does not accept"):
        zoo.build("cnn-8k", width=3)
    with pytest.raises(InputError, match="num_classes"):
        zoo.build("cnn-8k", num_classes=1)
    with pytest.raises(InputError, match="dropout"):
        zoo.build("mlp-100k", dropout=1.5)
    with pytest.raises(InputError, match="std"):
        zoo.build("mlp-100k", std=0.0)


def test_hidden_layers_of_a_foreign_model_is_a_clear_error():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with pytest.raises(InputError, match="zoo models"):
        zoo.hidden_layers(model)


def test_spec_to_dict_is_plain():
    d = zoo.spec("cnn-8k").to_dict()
    assert d["input_shape"] == [1, 28, 28] and d["hidden_layers"][0] == "block1"


def test_face_cnn_26k_is_the_demo_face_model_layer_for_layer():
    # the architecture that lived in report/detect_section.py, built by hand with its seed
    from collections import OrderedDict

    from deepscope.models.layers import Normalize, conv_block

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ref = torch.nn.Sequential(OrderedDict(
            normalize=Normalize(0.4, 0.2, 1), shrink=torch.nn.AvgPool2d(2),
            block1=conv_block((1, 16)), block2=conv_block((16, 32)),
            block3=conv_block((32, 64)), gap=torch.nn.AdaptiveAvgPool2d(1),
            flatten=torch.nn.Flatten(), head=torch.nn.Linear(64, 40)))
    model = zoo.build("face-cnn-26k", seed=5, mean=0.4, std=0.2)
    got, want = model.state_dict(), ref.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert [n for n, _ in model.named_modules()] == [n for n, _ in ref.named_modules()]
    assert "dropout" in dict(zoo.build("face-cnn-26k", dropout=0.2).named_children())
