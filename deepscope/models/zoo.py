"""Reference networks of several sizes ("the zoo").

Image models take pixels in ``[0, 1]`` (N×C×H×W) and return logits; sequence models (byte
taggers, text classifiers) take int64 ids N×T (0 = padding). Each architecture is described by an
:class:`~deepscope.models.arch_spec.ArchSpec`. In image models normalisation is the first
layer (:class:`~deepscope.models.layers.Normalize`, buffers ``mean``/``std``), and the model is a
tree of :class:`torch.nn.Sequential` with named children, so layers read as ``block1.conv1``,
``block2.pool``, ``fc1.relu``, ``head`` and :func:`deepscope.models.hooks.split` works on them.

Names are honest: the suffix is the parameter count (``cnn-8k`` has about 8 thousand
parameters; a test checks every name within ±10 %).

Example
-------
>>> from deepscope.models import zoo
>>> model = zoo.build("cnn-8k", seed=0)
>>> zoo.spec("cnn-8k").hidden_layers
('block1', 'block2', 'block3')
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from deepscope.errors import InputError, ModelError
from deepscope.models import taggers, text_nets
from deepscope.models.arch_spec import ArchSpec, TrainingDefaults
from deepscope.models.layers import Normalize, conv_block, dense_block
from deepscope.registry import Registry

__all__ = [
    "ArchSpec",
    "TrainingDefaults",
    "arch_of",
    "build",
    "count_parameters",
    "example_input",
    "hidden_layers",
    "names",
    "spec",
    "training_defaults",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
FACES_MEAN, FACES_STD = 0.4417, 0.1958  # AT&T faces, all 400 images

_ARCH_ATTR = "_deepscope_arch"


@dataclass(frozen=True)
class _Entry:
    spec: ArchSpec
    builder: Callable[..., nn.Sequential]


_ARCHS: Registry[_Entry] = Registry("architecture")


Builder = Callable[..., nn.Sequential]


def _register(spec: ArchSpec) -> Callable[[Builder], Builder]:
    spec = replace(spec, training=_TRAINING.get(spec.name, spec.training))

    def decorator(builder: Builder) -> Builder:
        _ARCHS.register(spec.name)(_Entry(spec, builder))
        return builder

    return decorator


# ----------------------------------------------------------------------------------------------
# public functions


def names() -> list[str]:
    """Names of all zoo architectures, in registration order."""
    return _ARCHS.names()


def spec(name: str) -> ArchSpec:
    """The :class:`ArchSpec` of architecture ``name`` (``RegistryError`` if unknown)."""
    return _ARCHS.get(name).spec


def training_defaults(name: str) -> TrainingDefaults:
    """The recommended :class:`TrainingDefaults` of architecture ``name``."""
    return spec(name).training


def build(
    name: str, *, num_classes: int | None = None, seed: int | None = 0, **kw: Any
) -> nn.Module:
    """Build a freshly initialised zoo model.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    num_classes : int, optional
        Number of outputs; defaults to ``spec(name).num_classes``.
    seed : int or None
        Seed of the weight initialisation (default 0, so the same call builds the same model
        in every process); the global RNG state is left untouched. ``None`` draws the
        initialisation from the global RNG instead.
    **kw
        Architecture options: every model accepts ``dropout`` (float in [0, 1)); image models
        ``mean`` / ``std`` (normalisation, one value or one per channel); sequence models
        ``vocab_size`` (number of ids, default ``spec(name).vocab_size``).

    Returns
    -------
    torch.nn.Module
        An ``nn.Sequential`` in eval mode, on the CPU, in float32.
    """
    entry = _ARCHS.get(name)
    k = entry.spec.num_classes if num_classes is None else num_classes
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise InputError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    accepted = set(inspect.signature(entry.builder).parameters) - {"num_classes"}
    unknown = sorted(set(kw) - accepted)
    if unknown:
        raise InputError(
            f"architecture {name!r} does not accept {unknown}; its options are {sorted(accepted)}"
        )
    if "dropout" in kw and not 0.0 <= float(kw["dropout"]) < 1.0:
        raise InputError(f"dropout must be in [0, 1), got {kw['dropout']!r}")
    if seed is None:
        model = entry.builder(k, **kw)
    else:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InputError(f"seed must be an int or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(k, **kw)
    setattr(model, _ARCH_ATTR, name)
    return model.eval()


def example_input(name: str, n: int = 2, *, seed: int = 0) -> torch.Tensor:
    """A seeded random batch of ``n`` inputs architecture ``name`` takes: uniform pixels
    (float32 N×C×H×W) or uniform ids in ``[1, vocab_size)`` (int64 N×T)."""
    return spec(name).example_input(n, seed=seed)


def arch_of(model: nn.Module) -> str | None:
    """The zoo name a model was built from, or ``None`` for models not built by :func:`build`."""
    value = getattr(model, _ARCH_ATTR, None)
    return value if isinstance(value, str) else None


def hidden_layers(model: nn.Module) -> list[str]:
    """Analysable hidden layers of a zoo model (block outputs and dense hidden layers).

    Raises
    ------
    InputError
        If ``model`` was not built by :func:`build` (pass layer names explicitly then).
    """
    name = arch_of(model)
    if name is None or name not in _ARCHS:
        available = [n for n, _ in model.named_modules() if n]
        raise InputError(
            "hidden_layers() only knows zoo models (built by deepscope.models.zoo.build); "
            f"pass layer names explicitly, e.g. from: {available[:30]}"
        )
    return list(spec(name).hidden_layers)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def nominal_size(name: str) -> int:
    """The parameter count a zoo name advertises (``"cnn-1.2m"`` → 1,200,000)."""
    m = re.search(r"-(\d+(?:\.\d+)?)([km])$", name)
    if m is None:
        raise ModelError(f"zoo name {name!r} does not end in a size such as '-8k' or '-1.2m'")
    return round(float(m.group(1)) * (1_000 if m.group(2) == "k" else 1_000_000))


# ----------------------------------------------------------------------------------------------
# architectures


def _mlp(
    widths: tuple[int, ...], num_classes: int, dropout: float, mean: Any, std: Any
) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        normalize=Normalize(mean, std, 1), flatten=nn.Flatten()
    )
    for i, (a, b) in enumerate(itertools.pairwise(widths), start=1):
        layers[f"fc{i}"] = dense_block(a, b, dropout=dropout)
    layers["head"] = nn.Linear(widths[-1], num_classes)
    return nn.Sequential(layers)


@dataclass(frozen=True)
class _ConvLayout:
    """The layers of a convolutional zoo model, in order (module names in brackets).

    ``[normalize]`` → ``[shrink]`` (a 2×2 average pool, when ``shrink``) → ``[block1..]`` (one
    :func:`conv_block` per entry of ``blocks``) → ``[gap]`` (when ``gap``) → ``[flatten]`` →
    ``[dropout]`` (``dropout_layer``: True = always, None = only when the dropout is > 0,
    False = never) → ``[fc1..]`` (dense layers of widths ``dense`` with dropout) → ``[head]``.
    ``features`` is the flattened width entering the dense layers / the head.
    """

    blocks: tuple[tuple[int, ...], ...]
    features: int
    dense: tuple[int, ...] = ()
    gap: bool = False
    shrink: bool = False
    dropout_layer: bool | None = False


def _conv_net(layout: _ConvLayout, num_classes: int, dropout: float, mean: Any, std: Any
              ) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        normalize=Normalize(mean, std, layout.blocks[0][0]))
    if layout.shrink:
        layers["shrink"] = nn.AvgPool2d(2)
    for i, channels in enumerate(layout.blocks, start=1):
        layers[f"block{i}"] = conv_block(channels)
    if layout.gap:
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    if layout.dropout_layer or (layout.dropout_layer is None and dropout > 0):
        layers["dropout"] = nn.Dropout(dropout)
    width = layout.features
    for i, out in enumerate(layout.dense, start=1):
        layers[f"fc{i}"] = dense_block(width, out, dropout=dropout)
        width = out
    layers["head"] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)


def _register_conv(spec: ArchSpec, layout: _ConvLayout, *, dropout: float, mean: Any,
                   std: Any) -> None:
    """Register a convolutional architecture; its options default to ``dropout/mean/std``."""

    def builder(num_classes: int, *, dropout: float = dropout, mean: Any = mean,
                std: Any = std) -> nn.Sequential:
        return _conv_net(layout, num_classes, dropout, mean, std)

    _register(spec)(builder)


#: Recommended training of each architecture (see bench/results/train_zoo.md: MNIST
#: ≥ 98-99 %, faces 100 %). Face models: small batches, no validation split, fixed epochs, flips
#: and shifts — face-cnn-26k reaches 100 % held-out accuracy in about 30 s on 2 CPU cores.
_TRAINING: dict[str, TrainingDefaults] = {
    "mlp-100k": TrainingDefaults(epochs=15, lr=2e-3, patience=5, augment="digits"),
    "mlp-270k": TrainingDefaults(epochs=15, lr=2e-3, patience=5, augment="digits"),
    "cnn-8k": TrainingDefaults(epochs=6, lr=5e-3),
    "cnn-100k": TrainingDefaults(epochs=4, lr=3e-3),
    "cnn-1.2m": TrainingDefaults(epochs=3, lr=2e-3),
    "cnn-3.2m": TrainingDefaults(epochs=3, lr=2e-3),
    "cifar-cnn-60k": TrainingDefaults(epochs=6, lr=3e-3, patience=None),
    "cifar-cnn-1m": TrainingDefaults(epochs=5, lr=2e-3, patience=None),
    "face-vgg-1.2m": TrainingDefaults(epochs=30, lr=2e-3, batch_size=32, val_fraction=0.0,
                                      patience=None, augment="faces"),
    "face-cnn-26k": TrainingDefaults(epochs=60, lr=5e-3, batch_size=32, val_fraction=0.0,
                                     patience=None, augment="faces"),
    # text: see bench/results/train_zoo_text.md (SST-2 with 10 % of train held out)
    "text-cnn-1.9m": TrainingDefaults(epochs=5, lr=1e-3, batch_size=64, patience=2),
    "text-bigru-1.9m": TrainingDefaults(epochs=5, lr=2e-3, batch_size=64, patience=2),
}

_MNIST = {"mean": MNIST_MEAN, "std": MNIST_STD}
_CIFAR = {"mean": CIFAR_MEAN, "std": CIFAR_STD}
_FACES = {"mean": FACES_MEAN, "std": FACES_STD}


def _register_mlp(spec: ArchSpec, widths: tuple[int, ...], *, dropout: float) -> None:
    """Register an MNIST MLP with hidden ``widths`` (the first one is the input width)."""

    def builder(num_classes: int, *, dropout: float = dropout, mean: Any = MNIST_MEAN,
                std: Any = MNIST_STD) -> nn.Sequential:
        return _mlp(widths, num_classes, dropout, mean, std)

    _register(spec)(builder)


_register_mlp(ArchSpec("mlp-100k", "mlp", (1, 28, 28), 10, "MLP 784-128-64-10, ReLU, dropout",
                       ("fc1", "fc2")), (784, 128, 64), dropout=0.1)
_register_mlp(ArchSpec("mlp-270k", "mlp", (1, 28, 28), 10, "MLP 784-300-100-10, ReLU, dropout",
                       ("fc1", "fc2")), (784, 300, 100), dropout=0.2)

#: (spec, layout, default options) of every convolutional architecture, in registration order.
_CONV_ARCHS: tuple[tuple[ArchSpec, _ConvLayout, dict[str, Any]], ...] = (
    (ArchSpec("cnn-8k", "cnn", (1, 28, 28), 10,
              "3 BN conv blocks (8,8 | 16,16 | 16; 2×2 max-pools), linear on the 16×3×3 map",
              ("block1", "block2", "block3")),
     # 28 → 14 → 7 → 3
     _ConvLayout(((1, 8, 8), (8, 16, 16), (16, 16)), 16 * 3 * 3, dropout_layer=True),
     {"dropout": 0.0, **_MNIST}),
    (ArchSpec("cnn-100k", "cnn", (1, 28, 28), 10,
              "3 BN conv blocks (16 | 32 | 64; 2×2 max-pools), dense 128 with dropout, linear",
              ("block1", "block2", "block3", "fc1")),
     _ConvLayout(((1, 16), (16, 32), (32, 64)), 64 * 3 * 3, dense=(128,)),
     {"dropout": 0.3, **_MNIST}),
    (ArchSpec("cnn-1.2m", "cnn", (1, 28, 28), 10,
              "2 BN conv blocks (32 | 64; 2×2 max-pools), dense 384 with dropout, linear",
              ("block1", "block2", "fc1")),
     _ConvLayout(((1, 32), (32, 64)), 64 * 7 * 7, dense=(384,)),  # 28 → 14 → 7
     {"dropout": 0.4, **_MNIST}),
    (ArchSpec("cnn-3.2m", "cnn", (1, 28, 28), 10,
              "3 BN conv blocks (32 | 64 | 128; 2×2 max-pools), dense 2048-384 with dropout, "
              "linear", ("block1", "block2", "block3", "fc1", "fc2")),
     _ConvLayout(((1, 32), (32, 64), (64, 128)), 128 * 3 * 3, dense=(2048, 384)),
     {"dropout": 0.5, **_MNIST}),
    (ArchSpec("cifar-cnn-60k", "cnn", (3, 32, 32), 10,
              "3 BN conv blocks (16 | 32,64 | 64; 2×2 max-pools), global average pool, linear",
              ("block1", "block2", "block3")),
     # 32 → 16 → 8 → 4
     _ConvLayout(((3, 16), (16, 32, 64), (64, 64)), 64, gap=True, dropout_layer=True),
     {"dropout": 0.1, **_CIFAR}),
    (ArchSpec("cifar-cnn-1m", "vgg", (3, 32, 32), 10,
              "3 VGG blocks (32,32 | 64,64 | 128,128; 2×2 max-pools), dense 352 with dropout, "
              "linear", ("block1", "block2", "block3", "fc1")),
     _ConvLayout(((3, 32, 32), (32, 64, 64), (64, 128, 128)), 128 * 4 * 4, dense=(352,)),
     {"dropout": 0.5, **_CIFAR}),
    (ArchSpec("face-vgg-1.2m", "vgg", (1, 112, 92), 40,
              "4 VGG blocks (32,32 | 64,64 | 128,128 | 256,256; 2×2 max-pools), global average "
              "pool, dropout, linear", ("block1", "block2", "block3", "block4")),
     # 112×92 → 56×46 → 28×23 → 14×11 → 7×5
     _ConvLayout(((1, 32, 32), (32, 64, 64), (64, 128, 128), (128, 256, 256)), 256, gap=True,
                 dropout_layer=True),
     {"dropout": 0.5, **_FACES}),
    # the demo's face model: small enough to train in the demo (seconds per epoch on a CPU)
    (ArchSpec("face-cnn-26k", "cnn", (1, 112, 92), 40,
              "2× average-pool downsampling, 3 BN conv blocks (16 | 32 | 64; 2×2 max-pools), "
              "global average pool, linear (dropout layer only when dropout > 0)",
              ("block1", "block2", "block3")),
     # 112×92 → 56×46 → 28×23 → 14×11 → 7×5
     _ConvLayout(((1, 16), (16, 32), (32, 64)), 64, gap=True, shrink=True, dropout_layer=None),
     {"dropout": 0.0, **_FACES}),
)

for _spec, _layout, _defaults in _CONV_ARCHS:
    _register_conv(_spec, _layout, **_defaults)
del _spec, _layout, _defaults


# ----------------------------------------------------------------------------------------------
# sequence taggers (function starts over raw bytes; deepscope.models.taggers)

#: Bytes are stored as value + 1 (0 = padding): 257 ids.
BYTE_VOCAB = 257


def _register_tagger(spec: ArchSpec, make: Callable[..., nn.Sequential], **layout: Any) -> None:
    def builder(num_classes: int, *, vocab_size: int = BYTE_VOCAB, dropout: float = 0.0
                ) -> nn.Sequential:
        return make(num_classes, vocab_size=vocab_size, dropout=dropout, **layout)

    _register(replace(spec, modality="sequence", vocab_size=BYTE_VOCAB))(builder)


_register_tagger(
    ArchSpec("lemna-bigru-14k", "tagger", (200,), 2,
             "LEMNA's shape: byte embedding 257→16, bidirectional GRU (32 per direction), "
             "per-position linear head (N×T×2)", ("rnn1",),
             training=TrainingDefaults(epochs=2, lr=3e-3, batch_size=64, patience=None,
                                       class_weight=(1.0, 3.0))),
    taggers.bigru_tagger, embed=16, hidden=32)
_register_tagger(
    ArchSpec("byte-cnn-80k", "tagger", (200,), 2,
             "byte embedding 257→32, 1×1 stem to 48 channels, 10 dilated residual conv blocks "
             "(kernel 3, dilations 1-32 then 1-8, BN, GELU; ±126-byte receptive field), "
             "per-position 1×1 head (N×T×2)",
             ("block2", "block4", "block6", "block8", "block10"),
             # 4 epochs: validation F1 0.9176 vs 0.9136 with 3 (8.5 min on 2 idle cores)
             training=TrainingDefaults(epochs=4, lr=3e-3, batch_size=64, patience=None,
                                       class_weight=(1.0, 3.0))),
    taggers.cnn_tagger, embed=32, channels=48, dilations=(1, 2, 4, 8, 16, 32, 1, 2, 4, 8))

# ----------------------------------------------------------------------------------------------
# text classifiers (token ids N×T → N×K; built with the data's vocab_size, see text_nets)
_register(ArchSpec(
    "text-cnn-1.9m", "text-cnn", (0,), 2,
    "Kim's CNN: embedding 128, convolutions of widths 3/4/5 with 100 filters each (ReLU), max "
    "over time, dropout 0.5, linear (size with SST-2's 13,395-token vocabulary)",
    ("embed", "convs"), modality="sequence"))(text_nets.kim_cnn)
_register(ArchSpec(
    "text-bigru-1.9m", "text-rnn", (0,), 2,
    "embedding 128, dropout 0.25, bidirectional GRU 128 (last states), dropout 0.5, linear "
    "(size with SST-2's 13,395-token vocabulary)",
    ("embed", "rnn"), modality="sequence"))(text_nets.bigru)
