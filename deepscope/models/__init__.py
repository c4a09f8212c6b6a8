"""Models: the reference zoo, training/evaluation loops, safe checkpoints, hooks, bug injection.

Example
-------
>>> from deepscope.models import zoo, fit, evaluate
>>> model = zoo.build("cnn-8k", seed=0)                      # doctest: +SKIP
>>> fit(model, train, epochs=3, val=val)                     # doctest: +SKIP
>>> evaluate(model, test).accuracy                           # doctest: +SKIP
"""

from deepscope.models import augment, bugs, execution, external, hooks, provenance, tagging, zoo
from deepscope.models.compat import check_arch_input, check_compatible
from deepscope.models.execution import batched, inference, preserved_state
from deepscope.models.external import LoadedModel, load_model
from deepscope.models.io import Checkpoint, load_checkpoint, load_custom, save_checkpoint
from deepscope.models.overlap import HeldOutCheck, check_held_out
from deepscope.models.provenance import (
    TrainingData,
    TrainingSplit,
    data_fingerprint,
    sample_ids,
    training_split,
    weights_fingerprint,
)
from deepscope.models.text_io import encode_texts, vocabulary_metadata, vocabulary_of
from deepscope.models.train import (
    EpochStats,
    Evaluation,
    evaluate,
    fit,
    predict_logits,
    predict_proba,
)
from deepscope.models.zoo import ArchSpec

__all__ = [
    "ArchSpec",
    "Checkpoint",
    "EpochStats",
    "Evaluation",
    "HeldOutCheck",
    "LoadedModel",
    "TrainingData",
    "TrainingSplit",
    "augment",
    "batched",
    "bugs",
    "check_arch_input",
    "check_compatible",
    "check_held_out",
    "data_fingerprint",
    "encode_texts",
    "evaluate",
    "execution",
    "external",
    "fit",
    "hooks",
    "inference",
    "load_checkpoint",
    "load_custom",
    "load_model",
    "predict_logits",
    "predict_proba",
    "preserved_state",
    "provenance",
    "sample_ids",
    "save_checkpoint",
    "tagging",
    "training_split",
    "vocabulary_metadata",
    "vocabulary_of",
    "weights_fingerprint",
    "zoo",
]
