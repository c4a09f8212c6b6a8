"""What the three Carlini & Wagner attacks share: the margin κ and the tanh change of variables."""

from __future__ import annotations

from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks.base import Attack


class CarliniWagner(Attack):
    """Base of :class:`CarliniWagnerL2`, :class:`CarliniWagnerLinf` and :class:`CarliniWagnerL0`.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    confidence : float
        κ, the logit margin an adversarial example must reach (0 = just across the boundary).
    tanh_scale : float
        ``s`` in ``w0 = atanh((2x - 1)·s)``, in (0, 1); 0.999999 reproduces the reference
        code. The default 0.9 keeps pixels at exactly 0 or 1 movable (see
        :data:`deepscope.attacks._ops.DEFAULT_TANH_SCALE`).
    batch_size, seed, progress
        See :class:`~deepscope.attacks.base.Attack`.
    """

    def __init__(self, model: nn.Module, *, confidence: float, tanh_scale: float,
                 batch_size: int, seed: int | None, progress: bool) -> None:
        super().__init__(model, batch_size=batch_size, seed=seed, progress=progress)
        self.confidence = check_number("confidence", confidence, low=0.0)
        self.tanh_scale = check_number("tanh_scale", tanh_scale, low=0.0, high=1.0 - 1e-12,
                                       low_open=True)
