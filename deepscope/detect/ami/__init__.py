"""AmI (Attacks meet Interpretability): attributes, witnesses, the steered model, the detector."""

from deepscope.detect.ami.attributes import (
    AttributeSet,
    boxes_to_masks,
    pair_up,
    preserve,
    substitute,
)
from deepscope.detect.ami.detector import AmIDetector, default_layers
from deepscope.detect.ami.steering import SteeredModel, SteeringConfig, steer_activation
from deepscope.detect.ami.witnesses import WitnessSet, extract_witnesses

__all__ = [
    "AmIDetector",
    "AttributeSet",
    "SteeredModel",
    "SteeringConfig",
    "WitnessSet",
    "boxes_to_masks",
    "default_layers",
    "extract_witnesses",
    "pair_up",
    "preserve",
    "steer_activation",
    "substitute",
]
