"""Sequence feature spaces: int64 token / byte ids with positions as features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope import explain
from deepscope.errors import InputError
from deepscope.explain.features import SequenceSpace, TabularSpace, check_inputs
from deepscope.models.taggers import bigru_tagger
from deepscope.models.text_nets import kim_cnn

T = 12


class IdBox:
    """Black box on int64 ids: log-odds ``3·[x2 >= 10] - 2·[x5 >= 10] + [x7 != 0] - 0.5``.

    Records every batch it sees, and fails unless it receives int64 arrays.
    """

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert isinstance(x, np.ndarray) and x.dtype == np.int64, getattr(x, "dtype", type(x))
        self.seen.append(x.copy())
        s = 3.0 * (x[:, 2] >= 10) - 2.0 * (x[:, 5] >= 10) + 1.0 * (x[:, 7] != 0) - 0.5
        p = 1.0 / (1.0 + np.exp(-s))
        return np.stack([1.0 - p, p], axis=1)


@pytest.fixture
def ids():
    rng = np.random.default_rng(0)
    x = rng.integers(10, 20, size=(8, T)).astype(np.int64)  # every position "on"
    return x


def test_check_inputs_keeps_ids_int64_and_refuses_floats():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = check_inputs(x, integer=True)
    assert out.dtype == np.int64 and np.array_equal(out, x)
    assert check_inputs(x).dtype == np.float32  # images / rows: unchanged behaviour
    with pytest.raises(InputError, match="integer token"):
        check_inputs(x.astype(np.float32), integer=True)
    with pytest.raises(InputError, match="N×T"):
        check_inputs(np.zeros((2, 3, 4), dtype=np.int64), integer=True)
    with pytest.raises(InputError, match="negative"):
        check_inputs(-x, integer=True)


def test_sequence_space_positions_window_and_fill(ids):
    space = SequenceSpace(fill=5).fit(ids)
    assert space.n_features_ == T and np.array_equal(space.positions_, np.arange(T))
    off = np.zeros((len(ids), T), dtype=bool)
    off[:, [1, 4]] = True
    out = space.nullify(ids, off)
    assert out.dtype == np.int64
    assert (out[:, [1, 4]] == 5).all() and np.array_equal(np.delete(out, [1, 4], 1),
                                                         np.delete(ids, [1, 4], 1))
    assert np.array_equal(space.transform(out)[0], (out[0] != 5).astype(float))
    with pytest.raises(InputError, match="fill id"):
        space.baseline(ids, "mean")
    win = SequenceSpace(window=(2, 8)).fit(ids)
    assert win.n_features_ == 6 and list(win.positions_) == [2, 3, 4, 5, 6, 7]
    assert (win.segments(ids)[0][[0, 1, 8, 11]] == -1).all()
    assert list(SequenceSpace(centre=3, radius=2).fit(ids).positions_) == [1, 2, 3, 4, 5]
    with pytest.raises(InputError, match="not both"):
        SequenceSpace(window=(0, 3), centre=1, radius=1).fit(ids)
    with pytest.raises(InputError, match="integer"):
        SequenceSpace().fit(ids.astype(np.float32))


PARAMS = {
    "lime": {"num_samples": 300, "progress": False},
    "kernel-shap": {"nsamples": 300, "progress": False},
    "dmm-men": {"n_sweeps": 40, "burn_in": 10, "n_chains": 1, "n_components": 2,
                "progress": False},
    "random": {},
}


@pytest.mark.parametrize("method", sorted(PARAMS))
def test_black_boxes_explain_int64_sequences(method, ids):
    box = IdBox()
    ex = explain.get(method, space=SequenceSpace(), **PARAMS[method]).fit(ids, box, target=1)
    expl = ex.explain(ids[:4])
    assert expl.attributions.shape == (4, T) and expl.input_shape == (T,)
    top, top_abs = expl.top_features(2), expl.top_features(3, by="abs")
    assert top.shape == (4, 2) and top_abs.shape == (4, 3) and top.dtype == np.int64
    if method != "random":  # the box's relevant positions, by sign and by magnitude
        assert (top[:, 0] == 2).all() and (top[:, 1] == 7).all()
        assert all(set(row) == {2, 5, 7} for row in top_abs)
        assert (expl.attributions[:, 5] < 0).all()


def test_lime_goes_through_lime_base(monkeypatch, ids):
    from lime import lime_base

    calls = []
    real = lime_base.LimeBase.explain_instance_with_data

    def spy(self, data, labels, distances, label, num_features, **kw):
        calls.append((data.shape, label, num_features))
        return real(self, data, labels, distances, label, num_features, **kw)

    monkeypatch.setattr(lime_base.LimeBase, "explain_instance_with_data", spy)
    explain.Lime(SequenceSpace(), num_samples=50, progress=False).fit(
        ids, IdBox(), target=1).explain(ids[:2])
    assert calls == [((50, T), 1, T)] * 2


@pytest.mark.parametrize("method", ["lime", "kernel-shap", "dmm-men"])
def test_positions_outside_the_window_are_never_perturbed(method, ids):
    box = IdBox()
    space = SequenceSpace(window=(2, 8))
    expl = explain.get(method, space=space, **PARAMS[method]).fit(ids, box, target=1).explain(
        ids[:2])
    assert expl.n_features == 6
    seen = np.concatenate(box.seen)
    outside = [0, 1, 8, 9, 10, 11]
    # every query row agrees with one of the inputs outside the window
    keys = {tuple(r) for r in ids[:, outside]}
    assert all(tuple(r) in keys for r in seen[:, outside])
    assert (seen[:, 2:8] == 0).any()  # and inside it, positions were nullified
    assert set(expl.top_features(2)[0]) == {0, 5}  # features 0 and 5 = positions 2 and 7


def test_tabular_and_image_calls_unchanged(block_model, block_data):
    expl = explain.Lime(num_samples=100, progress=False).fit(
        block_data, block_model, target=1).explain(block_data[:2])
    assert expl.input_shape == (1, 4, 4)
    rows = block_data.reshape(len(block_data), -1)
    ex = explain.RandomExplainer().fit(rows, lambda r: block_model(r.reshape(-1, 1, 4, 4)), 1)
    assert isinstance(ex.space_, TabularSpace) and ex.explain(rows[:2]).n_features == 16


def test_windows_centre_the_position_and_pad_with_fill():
    x = np.arange(1, 31, dtype=np.int64).reshape(2, 15)
    w = explain.windows(x, [0, 1], [0, 14], radius=3, fill=0)
    assert w.shape == (2, 7) and w.dtype == np.int64
    assert list(w[0]) == [0, 0, 0, 1, 2, 3, 4] and list(w[1]) == [27, 28, 29, 30, 0, 0, 0]
    with pytest.raises(InputError, match="positions"):
        explain.windows(x, [0], [15], radius=3)


def _tagger():
    torch.manual_seed(0)
    return bigru_tagger(2, vocab_size=257, embed=8, hidden=8)


def test_tagger_proba_reads_the_centre_position():
    tagger = _tagger()
    w = np.random.default_rng(0).integers(1, 257, size=(3, 41)).astype(np.int64)
    with torch.no_grad():
        logits = tagger(torch.as_tensor(w))[:, 20, :]
    expected = torch.softmax(logits.double(), dim=1).numpy()
    assert np.allclose(explain.tagger_proba(tagger)(w), expected, atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda: explain.TaggerAt(_tagger(), 20),
    lambda: kim_cnn(2, vocab_size=257, embedding_dim=8, filters=4),
])
def test_integrated_gradients_over_embeddings_is_complete(build):
    """IG over the embedding: attributions sum to logit(x) - logit(all fill)."""
    model = build()
    w = np.random.default_rng(1).integers(1, 257, size=(3, 41)).astype(np.int64)
    ig = explain.IntegratedGradients(model, SequenceSpace(), n_steps=16)
    expl = ig.fit(w, target=1).explain(w)
    assert model.training and all(p.requires_grad for p in model.parameters())  # restored
    model.eval()  # dropout off, as inside the explainer
    with torch.no_grad():
        diff = (model(torch.as_tensor(w))[:, 1] - model(torch.zeros(3, 41, dtype=torch.int64))
                [:, 1]).numpy()
    assert np.allclose(expl.attributions.sum(axis=1), diff, atol=5e-3)


def test_lemna_tests_on_a_known_box(ids):
    """The box's positive positions are 2 and 7: an explanation naming them passes the tests,
    the random baseline (same features, random top-k) does worse."""
    from deepscope.explain import fidelity

    box = IdBox()
    x = ids.copy()
    x[:, 5] = 1  # position 5 off: every row has log-odds 3 + 1 - 0.5 > 0
    neg = np.ones((6, T), dtype=np.int64)
    neg[:, 7] = 0  # log-odds -0.5: negatives
    neg[:, 2] = 3
    good = explain.Lime(SequenceSpace(), num_samples=300, progress=False).fit(
        x, box, target=1).explain(x)
    rand = explain.RandomExplainer(SequenceSpace(), seed=0).fit(x, box, target=1).explain(x)
    res = {n: {t: fidelity.sequence_test(t, box, x, e, 2, target=1, negatives=neg, seed=0)
               for t in fidelity.SEQUENCE_TESTS} for n, e in (("lime", good), ("random", rand))}
    assert res["lime"]["deduction"].share == 0.0 and res["lime"]["deduction"].lower_is_better
    assert res["lime"]["augmentation"].share == 1.0 and res["lime"]["synthetic"].share == 1.0
    assert res["random"]["synthetic"].share < 1.0
    assert res["lime"]["deduction"].generated.dtype == np.int64
    assert (res["lime"]["deduction"].generated[:, [2, 7]] == 0).all()
    diff, lo, hi = res["lime"]["synthetic"].difference(res["random"]["synthetic"])
    assert diff > 0 and lo <= diff <= hi
    d = res["lime"]["augmentation"].to_dict()
    assert d["share"] == 1.0 and d["ci95"] == [1.0, 1.0] and d["n"] == len(x)
    with pytest.raises(InputError, match="negatives"):
        fidelity.sequence_test("augmentation", box, x, good, 2)
    with pytest.raises(InputError, match="positives only"):
        fidelity.sequence_test("deduction", box, neg, good[:6], 2)


def test_a_tagger_without_a_position_is_refused_with_a_hint():
    tagger = _tagger()
    w = np.random.default_rng(0).integers(1, 257, size=(2, 41)).astype(np.int64)
    with pytest.raises(InputError, match="TaggerAt"):
        explain.model_proba(tagger)(w)
    ig = explain.IntegratedGradients(tagger, SequenceSpace(), n_steps=2)
    with pytest.raises(InputError, match="TaggerAt"):
        ig.fit(w, explain.tagger_proba(tagger), target=1).explain(w)
    assert tagger.training and all(p.requires_grad for p in tagger.parameters())


@pytest.mark.parametrize("method", ["lime", "kernel-shap", "dmm-men"])
def test_explainers_nullify_with_the_space_fill_id(method, ids):
    box = IdBox()
    explain.get(method, space=SequenceSpace(fill=7), **PARAMS[method]).fit(
        ids, box, target=1).explain(ids[:2])
    seen = np.concatenate(box.seen)
    assert (seen == 7).any() and not (seen == 0).any()  # ids are 10..19: 7 is the fill only
