"""What FGSM and BIM share: signed-gradient steps bounded by ``eps`` in L∞."""

from __future__ import annotations

from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks.base import Attack


class SignedGradientAttack(Attack):
    """Base of :class:`~deepscope.attacks.FGSM` and :class:`~deepscope.attacks.BIM`.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    eps : float
        L∞ bound of the perturbation, in (0, 1].
    batch_size, seed, progress
        See :class:`~deepscope.attacks.base.Attack`.
    """

    bounded_linf = True

    def __init__(self, model: nn.Module, *, eps: float, batch_size: int, seed: int | None,
                 progress: bool) -> None:
        super().__init__(model, batch_size=batch_size, seed=seed, progress=progress)
        self.eps = check_number("eps", eps, low=0.0, high=1.0, low_open=True)
