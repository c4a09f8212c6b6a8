"""Training and evaluation loops: :func:`fit`, :func:`evaluate`, :func:`predict_logits`.

Training recipe of :func:`fit` (deliberately fixed, so results are comparable):

* optimiser: :class:`torch.optim.Adam` (``weight_decay`` is classic L2 added to the gradient);
* schedule: cosine annealing **per step** from ``lr`` to ``lr / 100`` over ``epochs`` full epochs
  (the schedule is planned for all epochs even if early stopping ends training sooner);
* loss: cross-entropy, optionally weighted per sample (``mean(w_i · ce_i)`` over the batch);
  taggers (N×T×K logits on int64 N×T inputs with N×T labels): per-position cross-entropy over
  the non-padding positions, optionally weighted per class (``class_weight``), see
  :mod:`deepscope.models.tagging`; early stopping then uses the validation F1 of class 1;
* data order: a fresh seeded permutation each epoch; a final batch of a single sample is
  dropped (BatchNorm cannot train on it);
* early stopping (only with ``val``): after each epoch the model is evaluated on ``val``; an epoch
  improves when its validation accuracy is higher than the best so far, or equal with a lower
  validation loss. Training stops after ``patience`` epochs without improvement, and the weights
  (and buffers) of the best epoch are restored;
* randomness: data order, augmentation and dropout all derive from ``seed``; the caller's global
  RNG state is saved and restored, so ``fit`` has no side effect on it;
* frozen BatchNorm layers (all affine parameters with ``requires_grad=False``) stay in eval mode,
  so a frozen feature extractor keeps its running statistics;
* after the last epoch (before restoring the best one), eval-mode accuracy on (1,024 of) the
  training inputs is compared with that epoch's train-mode accuracy: far below it warns
  (``TrainEvalGapWarning``, see :mod:`deepscope.models.train_checks`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deepscope.errors import InputError, ModelError
from deepscope.models import objective, tagging
from deepscope.models.execution import (
    batched,
    check_model_input,
    model_device,
    model_dtype,
    predict_logits,
    predict_proba,
)
from deepscope.models.inputs import as_xy, classes_of
from deepscope.models.train_checks import check_train_eval_gap
from deepscope.models.train_results import EpochStats, Evaluation

__all__ = ["EpochStats", "Evaluation", "evaluate", "fit", "predict_logits", "predict_proba"]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _check_batch_size(batch_size: Any) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")


def _logits(
    model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Logits of ``x`` in eval mode without gradients, on ``device``."""
    out = batched(model, x, batch_size=batch_size, to=device)
    assert isinstance(out, torch.Tensor)
    return out


def evaluate(
    model: nn.Module, data: Any, *, batch_size: int = 512, device: Any = None
) -> Evaluation:
    """Accuracy, per-label accuracy, confusion matrix and loss of ``model`` on ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier; evaluated in eval mode, its training flags are restored afterwards.
    data : Dataset or (x, y)
        Labelled inputs.
    batch_size : int
        Samples per forward pass.
    device : str or torch.device, optional
        Where to run the model; default the model's device. The model is moved there.

    Raises
    ------
    InputError
        No labels, inputs with NaN or infinite values, inputs that do not have a zoo model's
        input shape, or labels outside the model's classes.
    """
    _check_model(model)
    _check_batch_size(batch_size)
    x, y = as_xy(data, "data")
    if y is None:
        raise InputError("evaluate needs labels: pass a Dataset or an (x, y) pair")
    check_model_input(model, x, "the inputs of data")
    dev = torch.device(device) if device is not None else model_device(model)
    if device is not None:
        model.to(dev)
    logits = _logits(model, x, batch_size, dev)
    if y.ndim == 2:
        return _evaluate_positions(logits, x.to(dev), y.to(dev), data)
    k = int(getattr(data, "num_classes", 0) or logits.shape[1])
    if logits.ndim != 2 or logits.shape[1] != k:
        raise InputError(
            f"the model returns {tuple(logits.shape[1:])} outputs per sample but the data has "
            f"{k} classes; use a model built with num_classes={k}"
        )
    yd = y.to(dev)
    if int(yd.max()) >= k:
        raise InputError(f"labels must be < {k} (number of classes), got {int(yd.max())}")
    loss = float(F.cross_entropy(logits.float(), yd, reduction="sum")) / len(yd)
    pred = logits.argmax(1)
    confusion = torch.bincount(yd * k + pred, minlength=k * k).reshape(k, k).cpu().numpy()
    confusion = confusion.astype(np.int64)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_label = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return Evaluation(
        accuracy=float(np.trace(confusion)) / len(yd),
        per_label=per_label.astype(np.float64),
        confusion=confusion,
        classes=classes_of(data, k),
        n=len(yd),
        loss=loss,
    )


def _evaluate_positions(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, data: Any
                        ) -> Evaluation:
    """Per-position evaluation of a tagger (padding ``x == 0`` left out)."""
    k = int(getattr(data, "num_classes", 0) or 2)
    if logits.ndim != 3 or logits.shape[:2] != y.shape or logits.shape[2] != k:
        raise InputError(
            f"the data has per-position labels {tuple(y.shape)} with {k} classes, so the model "
            f"must return N×T×{k} logits (a tagger); it returns {tuple(logits.shape)}"
        )
    _, ce_sum, _, count = tagging.batch_loss(logits.float(), y, x)
    conf = tagging.confusion(logits.argmax(-1), y, x, k)
    support = conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_label = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    precision, recall, f1 = tagging.precision_recall_f1(conf) if k == 2 else (None,) * 3
    return Evaluation(accuracy=float(np.trace(conf)) / max(count, 1),
                      per_label=per_label.astype(np.float64), confusion=conf,
                      classes=classes_of(data, k), n=len(y), loss=ce_sum / max(count, 1),
                      precision=precision, recall=recall, f1=f1)


# ----------------------------------------------------------------------------------------------
# training


def _check_fit_args(
    epochs: Any, batch_size: Any, lr: Any, weight_decay: Any, patience: Any, augment: Any,
    history: Any, seed: Any,
) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InputError(f"epochs must be a positive int, got {epochs!r}")
    _check_batch_size(batch_size)
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise InputError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise InputError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if patience is not None and (
        not isinstance(patience, int) or isinstance(patience, bool) or patience < 1
    ):
        raise InputError(
            f"patience must be a positive int or None (no early stop), got {patience!r}"
        )
    if augment is not None and not callable(augment):
        raise InputError("augment must be a callable (x, generator) -> x, or None")
    if history is not None and not isinstance(history, list):
        raise InputError("history must be a list (EpochStats are appended to it) or None")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"seed must be an int, got {seed!r}")


def _train_mode(model: nn.Module) -> None:
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _cosine(total_steps: int, floor: float = 0.01) -> Callable[[int], float]:
    def factor(step: int) -> float:
        t = min(step, total_steps) / max(total_steps, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def fit(
    model: nn.Module,
    train: Any,
    *,
    epochs: int = 10,
    seed: int = 0,
    val: Any = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = 3,
    augment: Augment | None = None,
    sample_weight: Any = None,
    class_weight: Any = None,
    history: list[EpochStats] | None = None,
    progress: bool = True,
    device: Any = None,
) -> nn.Module:
    """Train ``model`` in place on ``train`` and return it (in eval mode).

    See the module docstring for the exact recipe (Adam, per-step cosine schedule, early
    stopping on validation accuracy, seeded order/augmentation/dropout).

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning N×K logits. Only parameters with ``requires_grad`` are trained.
    train : Dataset or (x, y)
        Training data, moved to the device batch by batch.
    epochs : int
        Maximum number of epochs.
    seed : int
        Same seed, same model and data → identical weights.
    val : Dataset or (x, y), optional
        Validation data for early stopping and restoring the best epoch.
    batch_size, lr, weight_decay : int, float, float
        Optimiser settings.
    patience : int or None
        Epochs without validation improvement before stopping; ``None`` never stops early
        (the best epoch is still restored when ``val`` is given).
    augment : callable, optional
        ``augment(x, generator) -> x`` applied to each training batch, e.g.
        :func:`deepscope.models.augment.shift_flip`.
    sample_weight : array-like, optional
        One non-negative weight per training sample.
    class_weight : sequence of float, optional
        One non-negative weight per class, multiplying each sample's (each position's, for a
        tagger) cross-entropy by the weight of its true class.
    history : list, optional
        :class:`EpochStats` of every epoch are appended to it.
    progress : bool
        Show a tqdm bar per epoch.
    device : str or torch.device, optional
        Where to train; default the model's device (the model is moved there if given).

    Returns
    -------
    torch.nn.Module
        The same ``model`` object, trained, in eval mode.
    """
    _check_model(model)
    _check_fit_args(epochs, batch_size, lr, weight_decay, patience, augment, history, seed)
    x, y = as_xy(train, "train")
    if y is None:
        raise InputError("fit needs labels: pass a Dataset or an (x, y) pair")
    xv = yv = None
    if val is not None:
        xv, yv = as_xy(val, "val")
        if yv is None:
            raise InputError("val needs labels: pass a Dataset or an (x, y) pair")
    weights = objective.check_sample_weight(sample_weight, len(x))
    cweights = objective.check_class_weight(class_weight)
    dev = torch.device(device) if device is not None else model_device(model)
    if device is not None:
        model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("the model has no trainable parameters (all requires_grad=False)")
    objective.check_outputs(_logits(model, x[:2], 2, dev).shape[-1], y, yv, cweights)

    n = len(x)
    # a last batch of one sample is dropped: BatchNorm cannot train on a single sample
    steps = max(1, n // batch_size + (1 if n % batch_size > 1 else 0))
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(epochs * steps))
    dtype = model_dtype(model)
    rng_devices = [dev] if dev.type == "cuda" else []

    best: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    last_accuracy = 0.0  # train-mode accuracy of the last epoch
    stale = 0
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            order_gen = torch.Generator().manual_seed(seed)
            aug_gen = torch.Generator().manual_seed(seed + 1)
            for epoch in range(1, epochs + 1):
                start = time.perf_counter()
                loss_sum, correct, seen = _train_epoch(
                    model, x, y, (weights, cweights), optimizer, scheduler, order_gen, aug_gen,
                    augment, batch_size, steps, dev, dtype, progress, f"epoch {epoch}/{epochs}",
                )
                val_loss = val_acc = val_f1 = None
                improved = True
                if xv is not None:
                    ev = evaluate(model, (xv, yv), batch_size=max(batch_size, 512))
                    val_loss, val_acc, val_f1 = ev.loss, ev.accuracy, ev.f1
                    score = (ev.f1 if ev.f1 is not None else val_acc, -val_loss)
                    improved = best is None or score > best
                    if improved:
                        best = score
                        best_state = copy.deepcopy(model.state_dict())
                        stale = 0
                    else:
                        stale += 1
                stats = EpochStats(
                    epoch=epoch,
                    train_loss=loss_sum / seen,
                    train_accuracy=correct / seen,
                    val_loss=val_loss,
                    val_accuracy=val_acc,
                    lr=float(optimizer.param_groups[0]["lr"]),
                    seconds=time.perf_counter() - start,
                    improved=improved,
                    val_f1=val_f1,
                )
                last_accuracy = stats.train_accuracy
                if history is not None:
                    history.append(stats)
                if progress:
                    tqdm.write(_epoch_line(stats))
                if patience is not None and stale >= patience:
                    break
        # the weights that just reached last_accuracy in train mode, before any restore
        check_train_eval_gap(model, x, y, last_accuracy, seed=seed)
        if best_state is not None:
            model.load_state_dict(best_state)
    finally:
        model.eval()
    return model


def _epoch_line(s: EpochStats) -> str:
    line = f"epoch {s.epoch}: loss {s.train_loss:.4f} acc {s.train_accuracy:.4f}"
    if s.val_accuracy is not None:
        f1 = f" F1 {s.val_f1:.4f}" if s.val_f1 is not None else ""
        line += (f" | val loss {s.val_loss:.4f} acc {s.val_accuracy:.4f}{f1}"
                 f"{' *' if s.improved else ''}")
    return line + f" | {s.seconds:.1f}s"


def _train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: tuple[torch.Tensor | None, torch.Tensor | None],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    order_gen: torch.Generator,
    aug_gen: torch.Generator,
    augment: Augment | None,
    batch_size: int,
    steps: int,
    dev: torch.device,
    dtype: torch.dtype,
    progress: bool,
    desc: str,
) -> tuple[float, int, int]:
    _train_mode(model)
    perm = torch.randperm(len(x), generator=order_gen)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False, mininterval=0.5)
    try:
        for i in range(steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb = x[idx.to(x.device)].to(device=dev)
            xb = xb.to(dtype) if xb.is_floating_point() else xb  # token ids stay int64
            yb = y[idx.to(y.device)].to(dev)
            if augment is not None:
                xb = augment(xb, aug_gen)
            sw = weights[0][idx].to(dev) if weights[0] is not None else None
            loss, ce_sum, n_correct, n_seen = objective.batch_loss(model(xb), xb, yb, sw,
                                                                   weights[1])
            if not torch.isfinite(loss):
                raise ModelError(
                    f"training diverged ({desc}, step {i + 1}): the loss is {float(loss)}; "
                    "lower the learning rate or check the inputs for NaN/inf"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum, correct, seen = loss_sum + ce_sum, correct + n_correct, seen + n_seen
            bar.update(1)
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
    finally:
        bar.close()
    return loss_sum, correct, seen
