"""Function-start taggers: the zoo contract, masked loss/metrics, fit, threshold, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepscope import models
from deepscope.data import Dataset
from deepscope.errors import InputError
from deepscope.models import tagging, zoo

TAGGERS = [n for n in zoo.names() if zoo.spec(n).family == "tagger"]
RET = 0xC3 + 1  # byte 0xC3 ('ret') stored as value + 1


class Fixed(nn.Module):
    """Returns preset logits (for exact metric checks)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(x)] + self.w


def ret_pattern(n: int, t: int = 48, seed: int = 0) -> Dataset:
    """Random bytes; a function starts right after every 'ret'; the tail of odd rows is padding
    whose labels say 'start' (they must be ignored)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 257, (n, t), generator=g)
    x[torch.rand(n, t, generator=g) < 0.08] = RET
    y = torch.zeros_like(x)
    y[:, 1:] = (x[:, :-1] == RET).long()
    x[1::2, t - 8:] = 0
    y[1::2, t - 8:] = 1  # padding labelled 1: ignored by loss and metrics
    return Dataset(x=x, y=y, classes=("other", "function start"), name="ret", split="train")


def test_the_zoo_lists_a_lemna_shape_tagger_and_a_larger_one():
    assert "lemna-bigru-14k" in TAGGERS and len(TAGGERS) >= 2
    lemna = zoo.build("lemna-bigru-14k", seed=0)
    assert lemna.embed.embedding.num_embeddings == 257 and lemna.embed.embedding.embedding_dim == 16
    assert isinstance(lemna.rnn1.gru, nn.GRU) and lemna.rnn1.gru.bidirectional


@pytest.mark.parametrize("name", TAGGERS)
def test_tagger_maps_int64_nxt_to_float_nxtx2(name):
    spec = zoo.spec(name)
    assert spec.modality == "sequence" and spec.vocab_size == 257
    model = zoo.build(name, seed=0)
    for t in (200, 37):
        x = torch.randint(0, 257, (3, t))
        out = model(x)
        assert out.shape == (3, t, 2) and out.dtype == torch.float32
    ex = zoo.example_input(name, 2)
    assert ex.dtype == torch.int64 and ex.shape == (2, 200)
    # the parameter count is in the name (±10 %)
    assert abs(zoo.count_parameters(model) / zoo.nominal_size(name) - 1) <= 0.10


def test_padding_is_left_out_of_metrics_exactly():
    # 2 sequences × 5 positions; the last two positions of row 1 are padding
    x = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]])
    y = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 1, 1]])
    pred = torch.tensor([[1, 1, 0, 0, 0], [0, 1, 0, 1, 1]])  # padding "hits" must not count
    logits = torch.stack([1 - pred, pred], -1).float() * 4
    ev = models.evaluate(Fixed(logits), Dataset(x=x, y=y, classes=("o", "s")))
    # real positions: TP = 2 (0,0),(1,1); FP = 1 (0,1); FN = 1 (0,2); TN = 4
    assert (ev.precision, ev.recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert ev.f1 == pytest.approx(2 / 3)
    assert ev.confusion.tolist() == [[4, 1], [1, 2]] and ev.accuracy == pytest.approx(6 / 8)
    assert ev.n == 2 and ev.to_dict()["f1"] == pytest.approx(2 / 3)
    # the loss is the mean over the 8 real positions
    ce = torch.nn.functional.cross_entropy(logits[x != 0], y[x != 0])
    assert ev.loss == pytest.approx(float(ce), rel=1e-6)


def test_padding_is_left_out_of_the_training_loss():
    x = torch.tensor([[5, 6, 0]])
    y = torch.tensor([[1, 0, 1]])
    logits = torch.zeros(1, 3, 2, requires_grad=True)
    loss, ce_sum, correct, count = tagging.batch_loss(logits, y, x, torch.tensor([1.0, 3.0]))
    assert count == 2 and correct == 1 and ce_sum == pytest.approx(2 * math.log(2))
    assert float(loss.detach()) == pytest.approx((3 + 1) * math.log(2) / 2)
    loss.backward()
    assert torch.all(logits.grad[0, 2] == 0)


def test_classifier_evaluation_has_no_f1():
    model = Fixed(torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    ev = models.evaluate(model, (torch.rand(2, 3), torch.tensor([0, 0])))
    assert ev.f1 is None and "f1" not in ev.to_dict()


def test_fit_learns_starts_after_ret_in_seconds():
    train, test = ret_pattern(256), ret_pattern(64, seed=1)
    model = zoo.build("byte-cnn-80k", seed=0)
    before = models.evaluate(model, test).f1
    models.fit(model, train, epochs=3, lr=3e-3, batch_size=32, class_weight=[1.0, 2.0],
               progress=False)
    ev = models.evaluate(model, test)
    assert ev.f1 > 0.95 and before < 0.5


def test_calibration_folds_the_validation_threshold_into_the_head():
    val = ret_pattern(32, seed=2)
    model = zoo.build("byte-cnn-80k", seed=0)
    with torch.no_grad():
        raw = model(val.x)
    margin = raw[..., 1] - raw[..., 0]
    m, f1 = tagging.best_margin(margin, val.y, val.x)
    result = tagging.calibrate_threshold(model, val)
    assert result.margin == pytest.approx(m) and result.f1_after == pytest.approx(f1)
    assert 0 < result.threshold < 1
    ev = models.evaluate(model, val)
    assert ev.f1 == pytest.approx(f1)  # argmax of the calibrated model is the chosen decision
    assert ev.f1 >= result.f1_before


def test_best_margin_is_the_exact_f1_optimum():
    margin = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0, 5.0]])
    y = torch.tensor([[1, 0, 1, 0, 0, 1]])
    x = torch.tensor([[1, 1, 1, 1, 1, 0]])  # the highest margin is padding
    m, f1 = tagging.best_margin(margin, y, x)
    # cuts: >3: tp1 k1 → 2/3; >1: tp2 k3 → 4/5; best is between 1 and 0
    assert m == pytest.approx(0.5) and f1 == pytest.approx(0.8)
    with pytest.raises(InputError, match="no positive"):
        tagging.best_margin(margin, torch.zeros_like(y), x)


def test_checkpoint_round_trip_keeps_the_tagger(tmp_path):
    model = zoo.build("lemna-bigru-14k", seed=3)
    x = torch.randint(0, 257, (2, 50))
    path = models.save_checkpoint(tmp_path / "t.pt", model, arch="lemna-bigru-14k",
                                  classes=("other", "function start"),
                                  config={"num_classes": 2, "vocab_size": 257},
                                  metadata={"decision": {"margin": 1.5}})
    ckpt = models.load_checkpoint(path)
    assert ckpt.arch == "lemna-bigru-14k" and ckpt.metadata["decision"]["margin"] == 1.5
    assert torch.equal(ckpt.model(x), model(x))


def test_wrong_inputs_are_clear_errors():
    model = zoo.build("byte-cnn-80k", seed=0)
    with pytest.raises(InputError, match="vocabulary"):
        models.predict_logits(model, torch.full((2, 10), 300))
    with pytest.raises(InputError, match="int64"):
        models.predict_logits(model, torch.rand(2, 10))
    image_model = zoo.build("cnn-8k", seed=0)
    with pytest.raises(InputError, match="images"):
        models.predict_logits(image_model, torch.ones(2, 10, dtype=torch.int64))
    with pytest.raises(InputError, match="N×T×2"):
        models.evaluate(Fixed(torch.zeros(2, 2)), ret_pattern(2))
    with pytest.raises(InputError, match="class_weight"):
        models.fit(model, ret_pattern(4), epochs=1, class_weight=[1.0], progress=False)
    np.testing.assert_equal(models.predict_logits(model, ret_pattern(2)).shape, (2, 48, 2))


def test_validation_of_per_position_data_is_whole_groups():
    ds = ret_pattern(40)
    grouped = Dataset(x=ds.x, y=ds.y, classes=ds.classes, name="ret", split="train",
                      groups=[f"lib{i % 5}.a" for i in range(40)])
    parts = models.training_split(lambda s: grouped, dataset="ret", val_fraction=0.2)
    assert parts.record.validation == "group-split"
    assert not set(parts.train.groups) & set(parts.validation.groups)
    assert len(parts.train) + len(parts.validation) == 40
    # per-position labels enter the content ids (two windows differing only in labels differ)
    other = Dataset(x=ds.x[:1], y=1 - ds.y[:1], classes=ds.classes)
    assert models.sample_ids(ds.subset(slice(0, 1)))[0] != models.sample_ids(other)[0]
