"""The demo's byte and sentence explanations: computed in audit, drawn in report, persisted,
and replaced by a note when a dataset is missing (no MNIST, no training: fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepscope import models
from deepscope.audit import demo_sequences
from deepscope.audit.demo import DemoConfig, DemoExperiment
from deepscope.audit.sequence_explain import explain_position, explain_sentence
from deepscope.models import EpochStats, Evaluation
from deepscope.report.demo import render_demo

CODE = bytes.fromhex("c3 90 55 48 89 e5 48 83 ec 10")


def _eval() -> Evaluation:
    return Evaluation(accuracy=0.9, per_label=np.array([0.9, 0.9]),
                      confusion=np.array([[9, 1], [1, 9]]), classes=("a", "b"), n=20, loss=0.3)


def _experiment(**kw) -> DemoExperiment:
    stats = [EpochStats(epoch=1, train_loss=1.0, train_accuracy=0.5, val_loss=1.0,
                        val_accuracy=0.5, lr=1e-3, seconds=1.0, improved=True)]
    return DemoExperiment(
        config=DemoConfig(bug_label=1, sequences=True), classes=("a", "b"), n_images=40,
        split_sizes={"train": 12, "validation": 4, "test": 4, "pool": 20}, weights=10,
        bug={"description": "none"}, healthy=_eval(), buggy=_eval(), buggy_train=_eval(),
        buggy_train_counts=np.array([6, 6]), misclassified=np.zeros((0, 1, 28, 28), np.float32),
        misclassified_as=np.zeros(0, np.int64), n_label=2, n_wrong=0,
        history={"healthy": stats, "buggy": stats}, seconds={"train_healthy": 1.0,
                                                             "train_buggy": 1.0}, **kw)


@pytest.fixture(scope="module")
def examples():
    tagger = models.zoo.build("byte-cnn-80k", num_classes=2, vocab_size=257, seed=0)
    row = np.zeros(200, np.int64)
    row[40:40 + len(CODE)] = [b + 1 for b in CODE]
    row[50:120] = 0x91  # nops
    byte = explain_position(tagger, row, 42, method="random", label=1)
    text = models.zoo.build("text-cnn-1.9m", num_classes=2, vocab_size=20, seed=0)
    vocab = [f"w{i}" for i in range(20)]
    words = explain_sentence(text, np.array([3, 4, 5, 6, 7, 8, 0, 0]), vocab, method="random",
                             label=1)
    return byte, words


def test_the_views_sit_in_the_explanation_section_and_round_trip(examples, tmp_path):
    byte, words = examples
    assert byte.offset == 22 and byte.position == 20 and len(byte.ids) == 41
    assert words.tokens == ("w3", "w4", "w5", "w6", "w7", "w8")
    exp = _experiment(sequence_explanations=(byte, words),
                      sequence_captions=("a tagger <x>", "a text model"))
    page = render_demo(exp, tmp_path / "r").read_text()
    assert "<h2>Explanations of sequences</h2>" in page
    assert "Bytes: a tagger &lt;x&gt;" in page and "Words: a text model" in page
    assert page.count("data:image/png;base64") >= 2 + 4  # + the accuracy/curve figures
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    kinds = [s["kind"] for s in summary["sequence_explanations"]]
    assert kinds == ["bytes", "words"]
    back = DemoExperiment.load(exp.save(tmp_path / "d.npz"))
    assert back.sequence_captions == exp.sequence_captions
    for a, b in zip(back.sequence_explanations, exp.sequence_explanations, strict=True):
        assert a.to_dict() == b.to_dict()


def test_missing_datasets_give_notes_not_failures(monkeypatch, tmp_path):
    from deepscope.data import function_starts

    monkeypatch.setattr(function_starts, "current_build", lambda: None)
    monkeypatch.setenv("DEEPSCOPE_DATA", str(tmp_path))  # no sst2 there
    examples, notes = demo_sequences.sequence_examples(demo_sequences.SequenceSettings(),
                                                       log=lambda m: None)
    assert examples == []
    assert "deepscope data build function-starts" in notes[0]
    assert notes[1].startswith("No sentence explanation")
    exp = _experiment(sequence_notes=tuple(notes))
    page = render_demo(exp, tmp_path / "r").read_text()
    assert "No sentence explanation" in page and 'class="callout"' in page
