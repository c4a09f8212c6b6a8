from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepscope.data import train_val_split
from deepscope.errors import InputError
from deepscope.models import (
    EpochStats,
    augment,
    evaluate,
    fit,
    predict_logits,
    predict_proba,
    zoo,
)
from deepscope.testing import (
    assert_no_hooks,
    blobs,
    identity_classifier,
    make_dataset,
    one_hot_inputs,
    tiny_cnn,
)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def blob_split():
    data = blobs(n=240, num_classes=3, noise=0.25, seed=0)
    return train_val_split(data, 0.25, seed=0)


# ----------------------------------------------------------------------------------------------
# fit


def test_fit_is_seeded_and_deterministic(blob_split):
    train, _ = blob_split
    rng = torch.get_rng_state()
    kwargs = dict(epochs=2, batch_size=32, progress=False, augment=augment.digits(1))
    a = fit(tiny_cnn(seed=0), train, seed=7, **kwargs).state_dict()
    b = fit(tiny_cnn(seed=0), train, seed=7, **kwargs).state_dict()
    c = fit(tiny_cnn(seed=0), train, seed=8, **kwargs).state_dict()
    assert _states_equal(a, b)
    assert not _states_equal(a, c)
    # the caller's global RNG is untouched
    assert torch.equal(torch.get_rng_state(), rng)


def test_fit_trains_in_place_and_ends_in_eval_mode(blob_split):
    train, val = blob_split
    model = tiny_cnn(seed=0).train()
    before = evaluate(model, val).accuracy
    history: list[EpochStats] = []
    out = fit(model, train, epochs=4, val=val, lr=1e-2, batch_size=32, history=history,
              progress=False)
    assert out is model
    assert not any(m.training for m in model.modules())
    assert [s.epoch for s in history] == list(range(1, len(history) + 1))
    after = evaluate(model, val).accuracy
    assert after > max(before, 0.9)
    assert history[-1].train_loss < history[0].train_loss
    assert all(s.val_accuracy is not None and s.seconds >= 0 for s in history)
    assert history[0].to_dict()["epoch"] == 1
    assert_no_hooks(model)


def test_early_stopping_stops_and_restores_the_best_epoch(blob_split):
    train, _ = blob_split
    # validation labels contradict the training labels: learning makes validation worse
    bad_val = make_dataset(train.x, (train.y + 1) % 3, train.classes)
    history: list[EpochStats] = []
    model = fit(tiny_cnn(seed=0), train, val=bad_val, epochs=30, patience=2, lr=1e-2,
                batch_size=32, history=history, progress=False)
    assert len(history) < 30
    key = [(s.val_accuracy, -s.val_loss) for s in history]
    best = max(range(len(history)), key=lambda i: key[i])
    assert len(history) == best + 1 + 2  # stopped `patience` epochs after the best one
    assert sum(s.improved for s in history[best + 1 :]) == 0
    restored = evaluate(model, bad_val, batch_size=512)
    assert restored.accuracy == pytest.approx(history[best].val_accuracy, abs=1e-12)
    assert restored.loss == pytest.approx(history[best].val_loss, rel=1e-5)


def test_sample_weight_decides_what_is_learnt():
    data = blobs(n=300, num_classes=3, noise=0.1, seed=1)
    # relabel 60 % of class 0 as class 1; with zero weight on them, class 0 is still learnt
    idx0 = torch.nonzero(data.y == 0).flatten()
    flipped = idx0[: int(0.6 * len(idx0))]
    y = data.y.clone()
    y[flipped] = 1
    noisy = make_dataset(data.x, y, data.classes)
    w = torch.ones(len(y))
    w[flipped] = 0.0
    kwargs = dict(epochs=15, lr=2e-2, batch_size=32, progress=False, patience=None)
    weighted = fit(tiny_cnn(seed=0, dropout=0.0), noisy, sample_weight=w, **kwargs)
    plain = fit(tiny_cnn(seed=0, dropout=0.0), noisy, **kwargs)
    class0 = data.subset(idx0)
    assert evaluate(weighted, class0).accuracy > 0.9
    assert evaluate(plain, class0).accuracy < 0.5


def test_frozen_batchnorm_keeps_its_running_statistics(blob_split):
    train, _ = blob_split
    model = tiny_cnn(seed=0)
    for p in model.block1.parameters():
        p.requires_grad_(False)
    before = model.block1.bn.running_mean.clone()
    head_before = model.head.weight.detach().clone()
    fit(model, train, epochs=1, batch_size=32, progress=False)
    assert torch.equal(model.block1.bn.running_mean, before)
    assert not torch.equal(model.head.weight, head_before)
    assert not model.block1.conv.weight.requires_grad  # requires_grad untouched


def test_fit_rejects_bad_arguments(blob_split):
    train, _ = blob_split
    model = tiny_cnn(seed=0)
    with pytest.raises(InputError, match="epochs"):
        fit(model, train, epochs=0, progress=False)
    with pytest.raises(InputError, match="lr"):
        fit(model, train, lr=-1.0, progress=False)
    with pytest.raises(InputError, match="sample_weight"):
        fit(model, train, sample_weight=torch.ones(3), progress=False)
    with pytest.raises(InputError, match="all zero"):
        fit(model, train, sample_weight=torch.zeros(len(train)), progress=False)
    with pytest.raises(InputError, match="Dataset"):
        fit(model, "not data", progress=False)
    with pytest.raises(InputError, match="num_classes=4"):
        fit(model, make_dataset(train.x, torch.full((len(train),), 3)), progress=False)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(InputError, match="no trainable parameters"):
        fit(model, train, progress=False)


def test_fit_on_a_small_real_mnist_slice(mnist_slice):
    train, test = mnist_slice
    model = zoo.build("mlp-100k", seed=0)
    before = evaluate(model, test).accuracy
    fit(model, train, epochs=1, batch_size=32, lr=2e-3, progress=False)
    after = evaluate(model, test)
    assert before < 0.3
    assert after.accuracy > 0.8
    assert after.n == 1000 and after.classes == tuple(str(i) for i in range(10))


# ----------------------------------------------------------------------------------------------
# evaluate / predict


def test_evaluate_is_exact_on_a_hand_set_model():
    k = 4
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 0, 2, 3]
    data = make_dataset(one_hot_inputs(y_pred, k), y_true, ("a", "b", "c", "d"))
    ev = evaluate(identity_classifier(k), data, batch_size=3)
    confusion = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[t, p] += 1
    np.testing.assert_array_equal(ev.confusion, confusion)
    assert ev.accuracy == pytest.approx(6 / 10)
    np.testing.assert_allclose(ev.per_label[:3], [2 / 4, 1 / 2, 3 / 4])
    assert math.isnan(ev.per_label[3])  # no sample of class "d"
    assert ev.n == 10 and ev.classes == ("a", "b", "c", "d")
    # logits are one-hot: CE = log(e + 3) - [pred == true]
    log_z = math.log(math.e + k - 1)
    expected_loss = np.mean([log_z - (t == p) for t, p in zip(y_true, y_pred, strict=True)])
    assert ev.loss == pytest.approx(expected_loss, rel=1e-6)
    d = ev.to_dict()
    assert d["per_label"][3] is None and d["confusion"][0] == [2, 1, 0, 1]


def test_evaluate_restores_the_training_mode_and_checks_class_count():
    model = identity_classifier(3).train()
    data = make_dataset(one_hot_inputs([0, 1, 2], 3), [0, 1, 2])
    assert evaluate(model, data).accuracy == 1.0
    assert model.training
    four = make_dataset(one_hot_inputs([0, 1, 2], 3), [0, 1, 3], ("a", "b", "c", "d"))
    with pytest.raises(InputError, match="classes"):
        evaluate(model, four)


def test_predict_logits_and_proba_keep_dtype_and_batch():
    model = identity_classifier(3)
    x = one_hot_inputs([2, 0, 1, 1, 0], 3).double()
    logits = predict_logits(model, x, batch_size=2)
    assert logits.dtype == torch.float64 and logits.shape == (5, 3)
    assert torch.equal(logits.argmax(1), torch.tensor([2, 0, 1, 1, 0]))
    proba = predict_proba(model, x)
    assert torch.allclose(proba.sum(1), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(proba, torch.softmax(logits, 1))
