"""The four settings of the explanation benchmark: what is explained, by which model, how.

Each setting is a :class:`Setting`: the model, its black box, a list of :class:`Group` (inputs
explained together: one target class, one feature space; LIME / KernelSHAP explain each input
on its own anyway, DMM-MEN's global mode fits one mixture per group) and the negatives of the
augmentation test. Nothing here explains or scores; :mod:`bench.explain_run` does.

* **function starts** — ``lemna-bigru-14k`` (bi-GRU tagger, trained by
  :mod:`bench.train_taggers` on the train libraries; the test split is held-out libraries).
  Explained: true function starts the tagger also finds from LEMNA's 41-byte window around
  them (true positives), drawn at random over the test split; the black box reads the
  tagger's decision at the window's centre (:func:`deepscope.explain.tagger_proba`).
  Negatives: windows around non-start bytes it classifies as non-starts.
* **SST-2** — ``text-cnn-1.9m``; explained: dev sentences of >= 26 tokens (so that the top 25
  never cover a whole sentence), target = the model's predicted class; each sentence cropped to
  its length (features = its token positions; the model ignores trailing padding) and grouped
  by (length, class). Negatives: the other class's sentences cropped / padded to that length.
* **MNIST / MLP** and **Fashion-MNIST / CNN** — the classes with the lowest noise base rate
  (as before), test images predicted as the class; 2×2-pixel cells (196 features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from bench import zoo as bench_zoo
from deepscope import data, models
from deepscope.explain import GridSpace, SequenceSpace, TaggerAt, model_proba, windows
from deepscope.explain.features import FeatureSpace
from deepscope.explain.sequence import LEMNA_RADIUS

TAGGER = "lemna-bigru-14k"
TEXT_MODEL = "text-cnn-1.9m"
MIN_TOKENS = 26  # longer than the largest k (25)
N_NEGATIVES = 256  # negatives per group the augmentation test draws from
NOISE = (0.0, 0.5)  # uniform pixels of the image synthetic test and of the noise base rate


@dataclass
class Group:
    """Inputs explained together: one target, one feature space, one set of negatives."""

    target: int
    x: np.ndarray
    space: Callable[[], FeatureSpace]
    negatives: np.ndarray
    index: np.ndarray  # position of each input in the setting's list of explained inputs


@dataclass
class Setting:
    """A model, its black box and the groups of inputs to explain."""

    key: str
    modality: str  # "bytes", "text" or "image"
    model: nn.Module  # what the white-box reference differentiates (N×K outputs)
    proba: Callable[[np.ndarray], np.ndarray]
    groups: list[Group]
    info: dict[str, Any] = field(default_factory=dict)
    decode: Callable[[np.ndarray], list[str]] | None = None  # text: ids → tokens
    reference: np.ndarray | None = None  # images: the "mean" fill

    @property
    def n_explained(self) -> int:
        return sum(len(g.x) for g in self.groups)


def _tagger() -> nn.Module:
    path = bench_zoo.CACHE_DIR / f"{TAGGER}__function-starts__seed0.pt"
    if not path.exists():  # ~10 min on 2 cores
        from bench import train_taggers

        train_taggers.train(TAGGER, seed=0)
        path = train_taggers.CACHE / "zoo" / path.name
    return models.load_checkpoint(path).model.eval()


def function_starts(n: int, seed: int = 0) -> Setting:
    """Function starts (see the module docstring): ``n`` true positives, one group."""
    tagger = _tagger()
    test = data.load("function-starts", "test")
    x, y = np.asarray(test.x, dtype=np.int64), np.asarray(test.y)
    at_centre = TaggerAt(tagger, LEMNA_RADIUS)
    proba = model_proba(at_centre)
    rng = np.random.default_rng(seed)
    starts = np.argwhere(y == 1)
    starts = starts[rng.permutation(len(starts))[: 4 * n]]
    w = windows(x, starts[:, 0], starts[:, 1])
    hit = proba(w)[:, 1] > 0.5
    chosen = np.flatnonzero(hit)[:n]
    others = np.argwhere((y == 0) & (x != 0))
    others = others[rng.permutation(len(others))[: 2 * N_NEGATIVES]]
    wn = windows(x, others[:, 0], others[:, 1])
    neg = wn[proba(wn)[:, 1] <= 0.5][:N_NEGATIVES]
    info = {"model": TAGGER, "recall_of_windows": float(hit.mean()),
            "test_windows": len(x), "test_starts": int(y.sum()),
            "libraries": sorted(set(np.asarray(test.groups)[starts[chosen, 0]].tolist())),
            "explained_at": starts[chosen].tolist()}
    group = Group(1, w[chosen], SequenceSpace, neg, np.arange(len(chosen)))
    return Setting("function starts / " + TAGGER, "bytes", at_centre, proba, [group], info)


def _text_model() -> tuple[nn.Module, Any]:
    model = bench_zoo.get_trained(TEXT_MODEL, "sst2")
    ckpt = bench_zoo.cached_checkpoint(TEXT_MODEL, "sst2")
    return model.eval(), ckpt


def _crop(x: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((len(x), length), dtype=np.int64)
    width = min(length, x.shape[1])
    out[:, :width] = x[:, :width]
    return out


def sst2(n: int, seed: int = 0) -> Setting:
    """SST-2 sentences of >= 26 tokens (see the module docstring), up to ``n``."""
    model, ckpt = _text_model()
    test = data.load("sst2", "test")
    x = models.encode_texts(ckpt, list(test.texts)).numpy().astype(np.int64)
    proba = model_proba(model)
    pred = proba(x).argmax(axis=1)
    length = (x != 0).sum(axis=1)
    pool = np.flatnonzero(length >= MIN_TOKENS)
    chosen = np.sort(np.random.default_rng(seed).permutation(pool)[:n])
    groups = []
    order = sorted({(int(length[i]), int(pred[i])) for i in chosen})
    for L, c in order:
        rows = chosen[(length[chosen] == L) & (pred[chosen] == c)]
        others = np.flatnonzero(pred != c)[:N_NEGATIVES]
        groups.append(Group(c, _crop(x[rows], L), SequenceSpace, _crop(x[others], L),
                            np.searchsorted(chosen, rows)))
    vocab = models.vocabulary_of(ckpt)
    info = {"model": TEXT_MODEL, "test_accuracy": float((pred == np.asarray(test.y)).mean()),
            "sentences_with_26_tokens": len(pool), "groups": len(groups),
            "texts": [test.texts[i] for i in chosen]}
    return Setting("SST-2 / " + TEXT_MODEL, "text", model, proba, groups, info,
                   decode=lambda ids: [vocab.tokens[i] for i in ids])


def images(dataset: str, arch: str, n: int, n_classes: int) -> Setting:
    """Test images of the ``n_classes`` lowest-noise-base-rate classes, ``n`` in all."""
    model = bench_zoo.get_trained(arch, dataset, seed=0).eval()
    test = data.load(dataset, "test")
    x = np.asarray(test.x, dtype=np.float32)
    proba = model_proba(model)
    pred = proba(x).argmax(axis=1)
    noise = np.random.default_rng(0).uniform(*NOISE, size=(1000, *x.shape[1:]))
    base_rate = np.bincount(proba(noise.astype(np.float32)).argmax(axis=1), minlength=10) / 1000
    classes = [int(c) for c in np.argsort(base_rate, kind="stable")[:n_classes]]
    per = -(-n // n_classes)
    groups = []
    for j, c in enumerate(classes):
        pos = x[pred == c][:per]
        groups.append(Group(c, pos, lambda: GridSpace(2), x[pred != c][:300],
                            np.arange(j * per, j * per + len(pos))))
    train = data.load(dataset, "train")
    info = {"model": arch, "test_accuracy": float((pred == np.asarray(test.y)).mean()),
            "classes": classes, "noise_base_rate": base_rate.round(3).tolist()}
    return Setting(f"{dataset} / {arch}", "image", model, proba, groups, info,
                   reference=np.asarray(train.x[:2000], dtype=np.float32))


BUILDERS: dict[str, Callable[[int, int], Setting]] = {
    "function-starts": lambda n, _classes: function_starts(n),
    "sst2": lambda n, _classes: sst2(n),
    "mnist": lambda n, classes: images("mnist", "mlp-100k", n, classes),
    "fashion-mnist": lambda n, classes: images("fashion-mnist", "cnn-100k", n, classes),
}
SETTINGS = tuple(BUILDERS)


def build(name: str, n: int, *, n_classes: int = 3) -> Setting:
    """One setting by name (:data:`SETTINGS`) with ``n`` explained inputs."""
    return BUILDERS[name](n, n_classes)
