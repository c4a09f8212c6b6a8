"""The demo's detection experiment: AmI vs feature squeezing on adversarial AT&T faces.

:func:`detection_experiment` loads the faces, trains the zoo's ``face-cnn-26k`` briefly (unless
a model is given), fits AmI (witnesses + steering calibration) and feature squeezing, attacks a
handful of held-out faces with FGSM, BIM and C&W L2 ("next"), and evaluates both detectors with
:func:`deepscope.detect.evaluate`. It returns a :class:`DetectionExperiment`;
``report.detect_section`` renders it. No global random state is touched (seeded generators).

Example
-------
>>> from deepscope.audit.detection import detection_experiment
>>> exp = detection_experiment(n_attack=8)                             # doctest: +SKIP
>>> exp.report.rate("AmI", "FGSM"), exp.to_dict()["rates"]              # doctest: +SKIP
>>> exp.save("detection.npz"); DetectionExperiment.load("detection.npz")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch

from deepscope import attacks, detect
from deepscope._persist import subarrays
from deepscope._validate import check_int
from deepscope.audit.detector_fit import build_detector
from deepscope.data import load
from deepscope.detect import (
    AmIDetector,
    DetectionReport,
    DetectionResult,
    FeatureSqueezingDetector,
    WitnessSet,
    evaluate,
)
from deepscope.errors import InputError
from deepscope.models import evaluate as evaluate_model
from deepscope.models import fit, predict_logits, zoo
from deepscope.protocol import Persistent

__all__ = ["FACE_ARCH", "DetectionExperiment", "detection_experiment"]

#: The zoo architecture the experiment trains.
FACE_ARCH = "face-cnn-26k"
#: Display names of the detectors and the attacks, in table order.
DETECTORS = ("AmI", "Feature squeezing")
ATTACKS = ("FGSM", "BIM", "C&W L2 (next)")


@dataclass(frozen=True)
class DetectionExperiment(Persistent):
    """What :func:`detection_experiment` measured.

    Attributes
    ----------
    accuracy : float
        Held-out accuracy of the face model.
    n_test, n_calib, n_attack : int
        Test faces, benign calibration faces, attacked faces.
    target_fpr : float
        Target false-positive rate of both detectors.
    config : dict
        AmI's calibrated steering configuration; ``threshold`` its threshold.
    witnesses : WitnessSet
        AmI's witnesses.
    report : DetectionReport
        False-positive and detection counts.
    examples : torch.Tensor
        Example images (2 benign, 2 FGSM, 2 C&W L2), with ``example_titles``,
        ``example_boxes`` (their attribute boxes) and ``box_names``.
    ami_examples, fs_examples : DetectionResult
        Both detectors' results on the examples.
    seconds : dict
        Wall time of the steps.
    """

    _format: ClassVar[str] = "detection-experiment"

    accuracy: float
    n_test: int
    n_calib: int
    n_attack: int
    target_fpr: float
    config: dict[str, Any]
    threshold: float
    witnesses: WitnessSet
    report: DetectionReport
    examples: torch.Tensor
    example_titles: tuple[str, ...]
    example_boxes: torch.Tensor
    box_names: tuple[str, ...]
    ami_examples: DetectionResult
    fs_examples: DetectionResult
    seconds: dict[str, float]

    def rates(self) -> dict[str, dict[str, float]]:
        """``{detector: {"fp": rate, attack: rate}}`` (attacks without a success left out)."""
        out = {}
        for det in self.report.detectors:
            row = {"fp": self.report.fp_rate(det)}
            for att in self.report.attacks:
                rate = self.report.rate(det, att)
                if rate is not None:
                    row[att] = rate
            out[det] = row
        return out

    def to_dict(self) -> dict[str, Any]:
        """The summary the demo records (accuracy, rates, witness counts, config, timings)."""
        return {
            "accuracy": self.accuracy, "rates": self.rates(),
            "witness_counts": self.witnesses.counts(), "config": dict(self.config),
            "threshold": self.threshold,
            "attack_success": {a: self.report.success_rate(a) for a in self.report.attacks},
            "seconds": dict(self.seconds),
        }

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray | torch.Tensor]]:
        meta: dict[str, Any] = {k: getattr(self, k) for k in (
            "accuracy", "n_test", "n_calib", "n_attack", "target_fpr", "config", "threshold",
            "example_titles", "box_names", "seconds")}
        meta["witnesses"] = self.witnesses.to_dict()
        meta["report"] = self.report._get_state()[0]
        arrays: dict[str, np.ndarray | torch.Tensor] = {
            "examples": self.examples, "example_boxes": self.example_boxes}
        arrays.update({f"votes.{k}": v for k, v in self.witnesses.votes.items()})
        for key, res in (("ami", self.ami_examples), ("fs", self.fs_examples)):
            m, arr = res._get_state()
            meta[f"{key}_examples"] = m
            arrays.update({f"{key}.{k}": v for k, v in arr.items()})
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], *args: Any,
                    **kwargs: Any) -> DetectionExperiment:
        part = partial(subarrays, arrays)
        votes = {k: torch.from_numpy(v.copy()) for k, v in part("votes.").items()}
        return cls(
            accuracy=float(meta["accuracy"]), n_test=int(meta["n_test"]),
            n_calib=int(meta["n_calib"]), n_attack=int(meta["n_attack"]),
            target_fpr=float(meta["target_fpr"]), config=dict(meta["config"]),
            threshold=float(meta["threshold"]),
            witnesses=WitnessSet.from_dict(meta["witnesses"], votes),
            report=DetectionReport._from_state(meta["report"], {}),
            examples=torch.from_numpy(arrays["examples"].copy()),
            example_titles=tuple(meta["example_titles"]),
            example_boxes=torch.from_numpy(arrays["example_boxes"].copy()),
            box_names=tuple(meta["box_names"]),
            ami_examples=DetectionResult._from_state(meta["ami_examples"], part("ami.")),
            fs_examples=DetectionResult._from_state(meta["fs_examples"], part("fs.")),
            seconds={k: float(v) for k, v in meta["seconds"].items()})


def _face_model(train: Any, *, epochs: int | None, seed: int, progress: bool
                ) -> torch.nn.Module:
    """``FACE_ARCH`` trained with its recommended settings (``epochs`` overrides theirs)."""
    kwargs = zoo.training_defaults(FACE_ARCH).fit_kwargs()
    if epochs is not None:
        kwargs["epochs"] = epochs
    model = zoo.build(FACE_ARCH, num_classes=train.num_classes, mean=float(train.x.mean()),
                      std=float(train.x.std()), seed=seed)
    fit(model, train, **kwargs, seed=seed, progress=progress)
    return model


def _fit_detectors(model: torch.nn.Module, train: Any, x_cal: torch.Tensor, *,
                   target_fpr: float, n_pairs: int, seed: int, progress: bool
                   ) -> tuple[AmIDetector, FeatureSqueezingDetector]:
    # the steering grid is AmIDetector's default (the benchmark's), as `deepscope detect fit`
    ami = AmIDetector(model, target_fpr=target_fpr, n_pairs=n_pairs, seed=seed,
                      attribute_names=tuple(train.info["box_names"]), progress=progress)
    ami.fit(train.x, train.extras["boxes"], groups=train.extras["subject"], x_calib=x_cal)
    fs = FeatureSqueezingDetector(model, target_fpr=target_fpr).fit(train.x, x_calib=x_cal)
    return ami, fs


def _check_peers(peers: Any) -> tuple[str, ...]:
    """The requested peer detectors: registered, box-free, not AmI / squeeze / joint."""
    if isinstance(peers, str):
        raise InputError(f"peers must be a sequence of detector names, got the string {peers!r}")
    choices = [n for n in detect.names() if not detect.detector_class(n).takes_boxes
               and n not in ("squeeze", "joint")]
    bad = [p for p in peers if p not in choices]
    if bad:
        raise InputError(f"unknown peer detector(s) {bad}; choose from {', '.join(choices)}")
    return tuple(dict.fromkeys(peers))


def _attack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """FGSM, BIM and C&W L2 ("next") with the demo's cheap settings."""
    return {
        "FGSM": attacks.get("fgsm", model, eps=0.03, progress=False)(x, y),
        "BIM": attacks.get("bim", model, eps=0.03, steps=10, step_size=0.0075,
                           progress=False)(x, y),
        "C&W L2 (next)": attacks.get("cw-l2", model, steps=20, binary_search_steps=2,
                                     initial_const=0.1, progress=False)(x, y, target="next"),
    }


def detection_experiment(
    *, seed: int = 0, progress: bool = True, log: Callable[[str], Any] = print,
    epochs: int | None = None, n_attack: int = 8, target_fpr: float = 0.1, n_pairs: int = 24,
    model: torch.nn.Module | None = None, peers: tuple[str, ...] | list[str] = (),
) -> DetectionExperiment:
    """AmI vs feature squeezing (and, when asked, other registered detectors) on AT&T faces
    (about a minute on 2 CPU cores).

    Trains ``face-cnn-26k`` on the 320 training faces with its recommended settings
    (``zoo.training_defaults``: 60 epochs, about 30 s; ``epochs`` overrides) unless ``model``
    is given, extracts AmI witnesses on them, calibrates AmI and feature squeezing on the
    first test face of every person, and evaluates on the second: false positives on the
    correctly classified benign faces, detection on the successful FGSM, BIM and C&W L2
    ("next") versions of ``n_attack`` of them.

    ``peers`` adds registered detectors that need no attribute boxes (``"mahalanobis"``,
    ``"lid"``, ``"margin"``, ``"art-binary"``: any of :func:`deepscope.detect.names` without
    boxes), built by :func:`~deepscope.audit.detector_fit.build_detector` with the same target
    FP and seed, fitted on the training faces and calibrated on the same faces as AmI; they
    appear in the report under their registered names.

    Returns
    -------
    DetectionExperiment
    """
    check_int("n_attack", n_attack, low=1)
    peers = _check_peers(peers)
    t0 = time.perf_counter()
    train = load("att-faces", "train", progress=progress)
    test = load("att-faces", "test", progress=progress)
    if "boxes" not in train.extras:
        raise InputError("the detection experiment needs the AT&T landmark boxes "
                         "(att-faces/landmarks_68.npz)")
    if model is None:
        n_epochs = epochs or zoo.training_defaults(FACE_ARCH).epochs
        log(f"detection: training a small face CNN ({FACE_ARCH}) for {n_epochs} epochs")
        model = _face_model(train, epochs=epochs, seed=seed, progress=progress)
    t_train = time.perf_counter() - t0
    acc = evaluate_model(model, test).accuracy
    correct = predict_logits(model, test.x).argmax(1) == test.y
    first = torch.zeros(len(test), dtype=torch.bool)
    first[::2] = True  # test faces come as (person, image) pairs: fold A = each first image
    x_cal = test.x[first & correct]
    eval_idx = torch.nonzero(~first & correct).flatten()

    log("detection: fitting AmI (witnesses + steering calibration) and feature squeezing")
    t1 = time.perf_counter()
    ami, fs = _fit_detectors(model, train, x_cal, target_fpr=target_fpr, n_pairs=n_pairs,
                             seed=seed, progress=progress)
    others = {name: build_detector(name, model, target_fpr=target_fpr, seed=seed,
                                   progress=progress).fit(train.x, x_calib=x_cal)
              for name in peers}
    t_fit = time.perf_counter() - t1

    log(f"detection: attacking {n_attack} held-out faces (FGSM, BIM, C&W L2)")
    t2 = time.perf_counter()
    order = eval_idx[torch.randperm(len(eval_idx),
                                    generator=torch.Generator().manual_seed(seed))]
    pick = order[:n_attack]
    x = test.x[pick]
    runs = _attack(model, x, test.y[pick])
    t_attack = time.perf_counter() - t2

    report = evaluate({**dict(zip(DETECTORS, (ami, fs), strict=True)), **others},
                      test.x[eval_idx],
                      test.y[eval_idx], adversarial=runs, model=model)
    ex_x = torch.cat([x[:2], runs["FGSM"].x_adv[:2], runs["C&W L2 (next)"].x_adv[:2]])
    return DetectionExperiment(
        accuracy=acc, n_test=len(test), n_calib=len(x_cal), n_attack=n_attack,
        target_fpr=target_fpr, config=ami.config_.to_dict(), threshold=ami.threshold_,
        witnesses=ami.witnesses_, report=report, examples=ex_x,
        example_titles=("benign", "benign", "FGSM", "FGSM", "C&W L2", "C&W L2"),
        example_boxes=test.extras["boxes"][torch.cat([pick[:2]] * 3)],
        box_names=tuple(train.info["box_names"]), ami_examples=ami.run(ex_x),
        fs_examples=fs.run(ex_x),
        seconds={"train": t_train, "fit": t_fit, "attacks": t_attack,
                 "total": time.perf_counter() - t0})
