"""The zoo's text classifiers: shape contract, padding, learning, vocabulary in checkpoints."""

from __future__ import annotations

import pytest
import torch

from deepscope import models
from deepscope.data import Dataset
from deepscope.data.text import build_vocabulary
from deepscope.errors import InputError
from deepscope.models import zoo

TEXT_ARCHS = ["text-cnn-1.9m", "text-bigru-1.9m"]


def keyword_task(n: int, *, seed: int, vocab: int = 40, length: int = 12) -> Dataset:
    """Label 1 iff token 7 occurs; sentences of 3..length tokens, padded with 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(8, vocab, (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    x[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    y = torch.randint(0, 2, (n,), generator=g)
    where = (torch.rand(n, generator=g) * lengths).long()
    x[torch.arange(n)[y == 1], where[y == 1]] = 7
    return Dataset(x, y, ("no", "yes"), name="keyword", split=f"seed{seed}")


def test_text_archs_are_in_the_zoo_with_int64_inputs():
    assert set(TEXT_ARCHS) <= set(zoo.names())
    for name in TEXT_ARCHS:
        spec = zoo.spec(name)
        assert spec.input_dtype == "int64" and spec.input_shape == (0,)
        assert spec.accepts((55,)) and spec.accepts((3,)) and not spec.accepts((1, 28, 28))
    assert zoo.spec("cnn-8k").input_dtype == "float32" and not zoo.spec("cnn-8k").accepts((28,))


@pytest.mark.parametrize("name", TEXT_ARCHS)
def test_shape_contract_int64_in_float_logits_out(name):
    model = zoo.build(name, num_classes=3, vocab_size=50, seed=0)
    x = zoo.spec(name).example_input(4, length=9, vocab_size=50)
    assert x.dtype == torch.int64
    out = models.predict_logits(model, x)
    assert out.shape == (4, 3) and out.dtype == torch.float32
    assert models.evaluate(model, (x, torch.tensor([0, 1, 2, 0]))).per_label.shape == (3,)


@pytest.mark.parametrize("name", TEXT_ARCHS)
def test_appending_padding_does_not_change_a_prediction(name):
    model = zoo.build(name, vocab_size=50, seed=1)
    x = zoo.spec(name).example_input(5, length=10, vocab_size=50, seed=2)
    x[1, 4:] = 0  # a shorter sentence
    x[2, 1:] = 0  # one token
    longer = torch.cat([x, torch.zeros(5, 23, dtype=torch.int64)], dim=1)
    a, b = models.predict_logits(model, x), models.predict_logits(model, longer)
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    # and padding is not a no-op by accident: changing a token does change the logits
    changed = x.clone()
    changed[0, 0] = 3 if int(x[0, 0]) != 3 else 4
    assert not torch.allclose(models.predict_logits(model, changed), a)


@pytest.mark.parametrize("name", TEXT_ARCHS)
def test_fit_learns_a_keyword_task_in_seconds(name):
    train, test = keyword_task(600, seed=0), keyword_task(200, seed=1)
    model = zoo.build(name, vocab_size=40, seed=0)
    models.fit(model, train, epochs=8, lr=5e-3, batch_size=32, progress=False, seed=0)
    assert models.evaluate(model, test).accuracy >= 0.95


def test_text_models_refuse_float_inputs_and_images_refuse_token_ids():
    model = zoo.build("text-cnn-1.9m", vocab_size=50, seed=0)
    with pytest.raises(InputError, match="int64 token ids"):
        models.predict_logits(model, torch.rand(2, 10))
    with pytest.raises(InputError, match="shape"):
        models.predict_logits(zoo.build("mlp-100k"), torch.ones(2, 10, dtype=torch.int64))


def test_checkpoint_carries_the_vocabulary_and_encodes_raw_sentences(tmp_path):
    texts = ["great value, works well", "not worth the price", "works great", "the price is bad",
             "great price", "not great"]
    vocab = build_vocabulary(texts, min_frequency=1)
    model = zoo.build("text-bigru-1.9m", vocab_size=len(vocab), seed=0)
    path = models.save_checkpoint(tmp_path / "text.pt", model, arch="text-bigru-1.9m",
                                  classes=("negative", "positive"),
                                  config={"num_classes": 2, "vocab_size": len(vocab)},
                                  metadata=models.vocabulary_metadata(vocab))
    raw = torch.load(path, weights_only=True)  # plain types only
    assert raw["metadata"]["vocabulary"]["max_length"] == vocab.max_length
    ckpt = models.load_checkpoint(path)
    assert models.vocabulary_of(ckpt).tokens == vocab.tokens
    x = models.encode_texts(ckpt, ["not worth the price", "an unseen word"])
    assert x.dtype == torch.int64 and x.shape == (2, vocab.max_length)
    assert vocab.decode(x[0]) == ["not", "worth", "the", "price"]
    assert vocab.decode(x[1])[:2] == ["[UNK]", "[UNK]"]
    loaded = models.predict_logits(ckpt.model, x)
    assert torch.equal(loaded, models.predict_logits(model, x))


def test_encode_texts_without_a_vocabulary_is_a_clear_error(tmp_path):
    path = models.save_checkpoint(tmp_path / "img.pt", zoo.build("mlp-100k"), arch="mlp-100k",
                                  classes=tuple("0123456789"))
    with pytest.raises(InputError, match="no vocabulary"):
        models.encode_texts(models.load_checkpoint(path), ["hello"])
