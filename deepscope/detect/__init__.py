"""Adversarial-input detection: AmI (attribute-steered models), feature squeezing, their union,
and the peers: Mahalanobis (Lee et al.), LID (Ma et al.), the logit-margin baseline,
and ART's BinaryActivationDetector (a trained detector, through the real package).

Example
-------
>>> from deepscope.detect import AmIDetector, FeatureSqueezingDetector, JointDetector
>>> ami = AmIDetector(model, target_fpr=0.05).fit(x_benign, boxes)        # doctest: +SKIP
>>> fs = FeatureSqueezingDetector(model, target_fpr=0.05).fit(x_benign)    # doctest: +SKIP
>>> joint = JointDetector([AmIDetector(model), FeatureSqueezingDetector(model)],
...                       target_fpr=0.05).fit(x_benign, boxes)            # doctest: +SKIP
>>> joint.detect(x_adv)                                                     # doctest: +SKIP
>>> det = detect.get("squeeze", model, target_fpr=0.05)                     # doctest: +SKIP
>>> report = detect.evaluate({"AmI": ami, "FS": fs}, x, y, adversarial={"FGSM": fgsm_result})
"""

from deepscope._stats import wilson_interval
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
from deepscope.detect.art_binary import ARTBinaryActivationDetector
from deepscope.detect.base import DETECTORS, DetectionResult, Detector, quantile_threshold
from deepscope.detect.calibration import HeldOut, hold_out, split_calibration
from deepscope.detect.evaluate import DetectionReport, evaluate
from deepscope.detect.joint import JointDetector
from deepscope.detect.lid import LIDDetector, lid_mle
from deepscope.detect.mahalanobis import MahalanobisDetector
from deepscope.detect.margin import MarginDetector, logit_margin
from deepscope.detect.probe import AttributeProbeResult, attribute_probe
from deepscope.detect.squeeze import FeatureSqueezingDetector, median_filter, reduce_bit_depth

# isort: off
from deepscope.detect.registry import detector_class, get, names, param_names
# isort: on

__all__ = [
    "DETECTORS",
    "ARTBinaryActivationDetector",
    "AmIDetector",
    "AttributeProbeResult",
    "AttributeSet",
    "DetectionReport",
    "DetectionResult",
    "Detector",
    "FeatureSqueezingDetector",
    "HeldOut",
    "JointDetector",
    "LIDDetector",
    "MahalanobisDetector",
    "MarginDetector",
    "SteeredModel",
    "SteeringConfig",
    "WitnessSet",
    "attribute_probe",
    "detector_class",
    "evaluate",
    "extract_witnesses",
    "get",
    "hold_out",
    "lid_mle",
    "logit_margin",
    "median_filter",
    "names",
    "param_names",
    "preserve",
    "quantile_threshold",
    "reduce_bit_depth",
    "split_calibration",
    "substitute",
    "wilson_interval",
]
