"""Test helpers: tiny models with hand-set weights, synthetic datasets, assertions.

Used by deepscope's own tests and usable by anyone testing code built on deepscope.
"""

from deepscope.testing.asserts import assert_no_hooks, assert_state_unchanged, model_state
from deepscope.testing.data import blobs, make_dataset, one_hot_inputs
from deepscope.testing.models import (
    identity_classifier,
    mixed_state,
    tiny_cnn,
    tiny_mlp,
    tiny_mlp_reference,
)

__all__ = [
    "assert_no_hooks",
    "assert_state_unchanged",
    "blobs",
    "identity_classifier",
    "make_dataset",
    "mixed_state",
    "model_state",
    "one_hot_inputs",
    "tiny_cnn",
    "tiny_mlp",
    "tiny_mlp_reference",
]
