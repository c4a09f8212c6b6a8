"""ART's ``BinaryActivationDetector`` (adversarial-robustness-toolbox) behind the Detector
protocol: a small classifier trained on one layer's activations to tell adversarial inputs
(label 1) from benign ones (label 0).

The real package does the work: :class:`art.defences.detector.evasion.BinaryActivationDetector`
reads the activations through an ART ``PyTorchClassifier`` of the protected model and trains
the detector network (an ART ``PyTorchClassifier`` around a one-hidden-layer MLP) with ART's
``fit``. This module only chooses the inputs and turns ART's two logits into a score:

- **activations**: the output of ``layer`` (default: the penultimate layer, the leaf before
  the last ``nn.Linear``). ART hooks the layer it reads and never removes that hook, so it is
  given a view of the model cut after ``layer`` (:func:`deepscope.models.hooks.split`: new
  containers sharing the modules) and the hook lands on that view, not on the user's model;
  the MLP standardises the activations with the benign + adversarial training statistics
  (ART's ``preprocessing=(mean, std)``).
- **adversarial examples**: ``x_adv`` when given, else one-step FGSM copies of the benign
  fitting inputs (ε = ``fgsm_eps``, the model's predicted labels), the same rule as the
  Mahalanobis and LID detectors.
- **score**: ``z_adv − z_benign`` of the MLP (ART's own decision is ``argmax``, i.e. the
  threshold 0); the threshold is set at ``target_fpr`` on held-out benign inputs like every
  other detector.

Training is seeded (MLP initialisation and ART's shuffling via torch's RNG, forked and
restored), so the same seed gives the same detector.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from deepscope._validate import check_int, check_number, check_probability
from deepscope.detect._features import fgsm_examples
from deepscope.detect.base import DETECTORS, Detector
from deepscope.detect.probe import descriptor_layer
from deepscope.errors import DeepscopeError
from deepscope.models import execution, hooks

__all__ = ["ARTBinaryActivationDetector"]

_VIEW_LAYER = "features"  # the prefix's name inside the view ART reads


def _art() -> Any:
    try:
        from art.defences.detector.evasion import BinaryActivationDetector
        from art.estimators.classification import PyTorchClassifier
    except ImportError as err:  # pragma: no cover - the extra is installed in CI
        raise DeepscopeError("the 'art-binary' detector needs adversarial-robustness-toolbox: "
                              "pip install 'deepscope[baselines]'") from err
    return BinaryActivationDetector, PyTorchClassifier


def _mlp(d: int, hidden: int, seed: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(d, hidden),
                                         relu=nn.ReLU(), fc2=nn.Linear(hidden, 2)))


@DETECTORS.register("art-binary")
class ARTBinaryActivationDetector(Detector):
    """ART's trained binary detector on one layer's activations (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits), a tree of ``nn.Sequential`` along the path to
        ``layer`` (as the zoo models).
    target_fpr : float
        False-positive rate on benign calibration inputs.
    layer : str, optional
        Dotted name of the layer whose activations the detector reads (default: the
        penultimate layer).
    hidden : int
        Width of the MLP's hidden layer.
    epochs : int
        ART training epochs of the MLP.
    lr : float
        Adam step size of the MLP.
    fgsm_eps : float
        Step of the FGSM copies used as adversarial examples when ``fit`` gets no ``x_adv``.
    calib_fraction : float
        Share of ``x_benign`` held out for calibration when ``fit`` gets no ``x_calib``.
    seed : int
        Seed of the calibration split, the MLP initialisation and ART's shuffling.
    batch_size, progress
        See :class:`~deepscope.detect.base.Detector`.
    """

    name: ClassVar[str] = "art-binary"

    def __init__(self, model: nn.Module, *, target_fpr: float = 0.05, layer: str | None = None,
                 hidden: int = 64, epochs: int = 40, lr: float = 1e-3, fgsm_eps: float = 0.05,
                 calib_fraction: float = 0.3, seed: int = 0, batch_size: int = 64,
                 progress: bool = True) -> None:
        super().__init__(model, target_fpr=target_fpr, batch_size=batch_size, progress=progress)
        if layer is not None:
            hooks.resolve(model, layer)
        self.layer = layer
        self.hidden = check_int("hidden", hidden, low=1)
        self.epochs = check_int("epochs", epochs, low=1)
        self.lr = float(check_number("lr", lr, low=0.0, low_open=True))
        self.fgsm_eps = float(check_number("fgsm_eps", fgsm_eps, low=0.0))
        self.calib_fraction = check_probability("calib_fraction", calib_fraction)
        self.seed = check_int("seed", seed, low=0)

    # ------------------------------------------------------------------ fitting
    def fit(self, x_benign: torch.Tensor, *, x_adv: torch.Tensor | None = None,
            x_calib: torch.Tensor | None = None) -> ARTBinaryActivationDetector:
        """Train ART's detector on benign (0) vs adversarial (1) activations, set the threshold.

        Parameters
        ----------
        x_benign : torch.Tensor
            N×C×H×W benign inputs in [0, 1].
        x_adv : torch.Tensor, optional
            Adversarial inputs (default: FGSM copies of the benign fitting inputs).
        x_calib : torch.Tensor, optional
            Benign calibration inputs (default: ``calib_fraction`` of ``x_benign``).

        Returns
        -------
        ARTBinaryActivationDetector
            ``self``, fitted.
        """
        x_fit, x_calib, _ = self._split_benign(x_benign, x_calib, x_adv=x_adv)
        self.layer_ = self.layer or descriptor_layer(self.model)
        x_pos = x_adv if x_adv is not None else fgsm_examples(
            self.model, x_fit, self.fgsm_eps, batch_size=self.batch_size)
        x_all = torch.cat([x_fit, x_pos.to(x_fit.device, x_fit.dtype)])
        labels = np.concatenate([np.zeros(len(x_fit), np.int64), np.ones(len(x_pos), np.int64)])
        classifier = self._art_classifier()
        with execution.preserved_state(self.model), torch.no_grad():
            acts = np.asarray(classifier.get_activations(_np(x_all), _VIEW_LAYER,
                                                         self.batch_size), dtype=np.float32)
        self.act_shape_ = tuple(int(v) for v in acts.shape[1:])
        self.mean_ = torch.from_numpy(acts.mean(0))
        self.std_ = torch.from_numpy(acts.std(0) + 1e-6)
        net = _mlp(int(np.prod(self.act_shape_)), self.hidden, self.seed)
        self._build_art(classifier, net, train=True)
        onehot = np.eye(2, dtype=np.float32)[labels]
        with execution.preserved_state(self.model), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._bad.fit(_np(x_all), onehot, batch_size=self.batch_size,
                          nb_epochs=self.epochs)
        net.eval()
        self._calibrate(x_calib)
        return self

    def _art_classifier(self) -> Any:
        """ART's classifier of the model cut after ``layer_`` (the hook goes on the view)."""
        _, PyTorchClassifier = _art()
        prefix, suffix = hooks.split(self.model, self.layer_)
        view = nn.Sequential(OrderedDict([(_VIEW_LAYER, prefix), ("rest", suffix)]))
        view.training = self.model.training
        with torch.no_grad():
            k = int(execution.predict_logits(
                self.model, torch.zeros(1, *self.input_shape_)).shape[1])
        return PyTorchClassifier(view, loss=nn.CrossEntropyLoss(), input_shape=self.input_shape_,
                                 nb_classes=k, clip_values=(0.0, 1.0),
                                 device_type=_device_type(self.model))

    def _build_art(self, classifier: Any, net: nn.Sequential, *, train: bool) -> None:
        BinaryActivationDetector, PyTorchClassifier = _art()
        self.net_ = net
        opt = torch.optim.Adam(net.parameters(), lr=self.lr) if train else None
        det = PyTorchClassifier(net, loss=nn.CrossEntropyLoss(), input_shape=self.act_shape_,
                                nb_classes=2, optimizer=opt,
                                preprocessing=(self.mean_.numpy(), self.std_.numpy()),
                                device_type=_device_type(self.model))
        self._bad = BinaryActivationDetector(classifier, det, layer=_VIEW_LAYER)

    # ------------------------------------------------------------------ scoring
    def _score(self, x: torch.Tensor) -> torch.Tensor:
        report, _ = self._bad.detect(_np(x), batch_size=self.batch_size)
        z = torch.from_numpy(np.asarray(report["predictions"], dtype=np.float64))
        return (z[:, 1] - z[:, 0]).to(x.device, x.dtype)

    # ------------------------------------------------------------------ state
    def _learned_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        meta = {"params": self._own_params(), "feature_layer": self.layer_,
                "act_shape": list(self.act_shape_)}
        arrays = {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}
        arrays.update({"mean": self.mean_, "std": self.std_})
        return meta, arrays

    def _set_learned_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]
                           ) -> None:
        self.layer_ = str(meta["feature_layer"])
        hooks.resolve(self.model, self.layer_)
        self.act_shape_ = tuple(int(v) for v in meta["act_shape"])
        self.mean_, self.std_ = arrays["mean"].float(), arrays["std"].float()
        net = _mlp(int(np.prod(self.act_shape_)), self.hidden, self.seed)
        net.load_state_dict({k[len("net."):]: v.float() for k, v in arrays.items()
                             if k.startswith("net.")})
        self._build_art(self._art_classifier(), net.eval(), train=False)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().numpy()


def _device_type(model: nn.Module) -> str:
    return "gpu" if execution.model_device(model).type == "cuda" else "cpu"

