"""Adversarial-input detection: AmI (attribute-steered models), feature squeezing, their union.

Example
-------
>>> from deepscope.detect import AmIDetector, FeatureSqueezingDetector, JointDetector
>>> ami = AmIDetector(model, target_fpr=0.05).fit(x_benign, boxes)        # doctest: +SKIP
>>> fs = FeatureSqueezingDetector(model, target_fpr=0.05).fit(x_benign)    # doctest: +SKIP
>>> joint = JointDetector([AmIDetector(model), FeatureSqueezingDetector(model)],
...                       target_fpr=0.05).fit(x_benign, boxes)            # doctest: +SKIP
>>> joint.detect(x_adv)                                                     # doctest: +SKIP
"""

from deepscope.detect.ami import (
    AmIDetector,
    AttributeSet,
    SteeredModel,
    SteeringConfig,
    WitnessSet,
    extract_witnesses,
    preserve,
    substitute,
)
from deepscope.detect.base import DETECTORS, DetectionResult, Detector, quantile_threshold
from deepscope.detect.joint import JointDetector
from deepscope.detect.probe import AttributeProbeResult, attribute_probe
from deepscope.detect.squeeze import FeatureSqueezingDetector, median_filter, reduce_bit_depth

__all__ = [
    "DETECTORS",
    "AmIDetector",
    "AttributeProbeResult",
    "AttributeSet",
    "DetectionResult",
    "Detector",
    "FeatureSqueezingDetector",
    "JointDetector",
    "SteeredModel",
    "SteeringConfig",
    "WitnessSet",
    "attribute_probe",
    "extract_witnesses",
    "median_filter",
    "preserve",
    "quantile_threshold",
    "reduce_bit_depth",
    "substitute",
]
