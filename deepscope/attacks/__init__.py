"""Adversarial attacks: FGSM, BIM, Carlini & Wagner L2/L∞/L0, patch, glasses, and the adaptive
attacks that go through a detector (``adaptive-ami``, ``-squeeze``, ``-mahalanobis``, ``-lid``).

Native PyTorch, batched, device-agnostic, pixels in [0, 1]::

    from deepscope import attacks
    attacks.names()          # ['fgsm', 'bim', 'cw-l2', 'cw-linf', 'cw-l0', 'patch', 'glasses',
                             #  'adaptive-ami', 'adaptive-squeeze', 'adaptive-mahalanobis',
                             #  'adaptive-lid']
    result = attacks.get("cw-l2", model, steps=200)(x, y, target="next")
    result.x_adv, result.success, result.l2, result.to_dict()
    attacks.save_npz(result, "adv.npz")

``target`` is None (untargeted), ``"first"`` (label 0), ``"next"`` ((y + 1) mod K) or labels.
The glasses attack also takes the eye boxes: ``get("glasses", model)(x, y, boxes=boxes)``.
An adaptive attack takes the fitted detector it goes through:
``get("adaptive-ami", model, detector=ami)(x, y, target="next")``.
"""

# isort: off
# Registration order = the order of deepscope.attacks.names() (and of the CLI's choices).
from deepscope.attacks import fgsm, bim, cw_l2, cw_linf, cw_l0, patch, glasses, adaptive
# isort: on
from deepscope.attacks._grid import plot_grid
from deepscope.attacks._io import load_npz, save_npz
from deepscope.attacks.adaptive import (
    ADAPTIVE_EPS,
    AdaptiveAMI,
    AdaptiveAttack,
    AdaptiveLID,
    AdaptiveMahalanobis,
    AdaptiveSqueeze,
    AdaptiveTarget,
    DefenseTerms,
)
from deepscope.attacks.base import (
    ATTACKS,
    L0_TOL,
    Attack,
    AttackResult,
    get,
    model_guard,
    names,
    perturbation_norms,
)
from deepscope.attacks.bim import BIM
from deepscope.attacks.cw_l0 import CarliniWagnerL0
from deepscope.attacks.cw_l2 import CarliniWagnerL2
from deepscope.attacks.cw_linf import CarliniWagnerLinf
from deepscope.attacks.fgsm import FGSM
from deepscope.attacks.glasses import Glasses, glasses_mask
from deepscope.attacks.patch import Patch, square_mask

del fgsm, bim, cw_l2, cw_linf, cw_l0, patch, glasses, adaptive

__all__ = [
    "ADAPTIVE_EPS",
    "ATTACKS",
    "BIM",
    "FGSM",
    "L0_TOL",
    "AdaptiveAMI",
    "AdaptiveAttack",
    "AdaptiveLID",
    "AdaptiveMahalanobis",
    "AdaptiveSqueeze",
    "AdaptiveTarget",
    "Attack",
    "AttackResult",
    "CarliniWagnerL0",
    "CarliniWagnerL2",
    "CarliniWagnerLinf",
    "DefenseTerms",
    "Glasses",
    "Patch",
    "get",
    "glasses_mask",
    "load_npz",
    "model_guard",
    "names",
    "perturbation_norms",
    "plot_grid",
    "save_npz",
    "square_mask",
]
