"""The public functions: explain, attack, evaluate and score a batch over a Ray cluster.

Every function takes the local call's arguments plus where and how to run:

address : str
    ``"local"`` (a Ray on this machine), ``"auto"`` (``RAY_ADDRESS`` / the running cluster),
    ``"HOST:PORT"`` or ``"ray://HOST:PORT"``; a session already started with ``ray.init`` is
    used as it is.
workers : int
    Ray actors (one CPU each); each holds the model once.
shard_size : int, optional
    Inputs per shard (default: the rule of :mod:`deepscope.distributed.shards`).
out_dir : path, optional
    Shard store (:class:`~deepscope.distributed.store.ShardStore`): finished shards are written
    there as they complete, and a re-run with the same folder skips them.
retries : int
    How often a shard whose worker died is retried.
threads : int, optional
    torch (and BLAS) threads per worker. Default: the driver's current counts, because a model's
    outputs can change in the last bits with the thread count; so the default gives bitwise the
    local result of this process. Pass 1 for one thread per worker (what Ray's one-CPU actors
    are sized for); the results then equal a local run with one thread.
progress : bool
    Show shards done / total and the throughput.
return_info : bool
    Also return the :class:`~deepscope.distributed.runner.RunInfo`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from deepscope._typing import PathType
from deepscope._validate import check_images, check_int
from deepscope.attacks.base import Attack
from deepscope.distributed._cluster import check_address, connect
from deepscope.distributed.attack_job import KWARG, AttackJob
from deepscope.distributed.evaluate_job import EvaluateJob, ScoreJob
from deepscope.distributed.explain_job import ExplainJob
from deepscope.distributed.jobs import Job, ModelFile, as_model_file
from deepscope.distributed.runner import RunInfo, Threads, run_job
from deepscope.distributed.shards import plan_shards
from deepscope.distributed.store import ShardStore, digest
from deepscope.errors import InputError
from deepscope.explain.base import Explainer
from deepscope.explain.features import check_inputs
from deepscope.models.execution import check_model_input, model_dtype
from deepscope.models.inputs import as_xy
from deepscope.protocol import check_fitted

__all__ = ["attack", "evaluate", "execute", "explain", "score"]


def execute(job: Job, arrays: dict[str, np.ndarray], *, address: str = "local",
            workers: int = 2, shard_size: int | None = None, out_dir: PathType | None = None,
            retries: int = 2, threads: int | None = None,
            progress: bool = True) -> tuple[Any, RunInfo]:
    """Run any :class:`~deepscope.distributed.jobs.Job` over shards of ``arrays`` (rows = inputs).

    Returns the merged result and the run's :class:`RunInfo`.
    """
    address = check_address(address)
    workers = check_int("workers", workers, low=1)
    retries = check_int("retries", retries, low=0)
    counts = Threads.of_driver(None if threads is None else check_int("threads", threads, low=1))
    n = len(arrays["x"])
    plan = plan_shards(n, workers, shard_size=shard_size, align=job.align())
    store = None
    if out_dir is not None:
        identity = {**job.fingerprint(), "inputs": digest(arrays), "threads": counts.torch}
        store = ShardStore(out_dir, identity, plan)
    with connect(address, workers) as ray:
        parts, info = run_job(ray, job, arrays, plan, address=address, workers=workers,
                              threads=counts, store=store, retries=retries, progress=progress)
    return job.merge(parts, info.seconds), info


def explain(explainer: Explainer, x: Any, *, address: str = "local", workers: int = 2,
            shard_size: int | None = None, out_dir: PathType | None = None,
            model: PathType | ModelFile | None = None, retries: int = 2,
            threads: int | None = None, progress: bool = True, return_info: bool = False) -> Any:
    """``explainer.explain(x)`` over a Ray cluster: the same :class:`Explanation` as locally.

    The explainer is fitted beforehand (on the driver: DMM-MEN's mixture is learned once) and
    shipped once to each worker. Attributions and components equal the local run's — bitwise
    for LIME and KernelSHAP (per-input seeds, any shard size) and for the deterministic
    explainers (DMM-MEN, Integrated Gradients); for the random baseline, for the same seed and
    shard size (see :mod:`deepscope.distributed.explain_job`). ``extras`` gets the wall time,
    the summed queries and ``"distributed"`` (the :class:`RunInfo`).

    Parameters
    ----------
    explainer : Explainer
        A fitted explainer.
    x : array-like
        The inputs to explain.
    model : path or ModelFile, optional
        The checkpoint behind the explainer's black box: workers load it with the safe loader
        and query ``model_proba(model)`` instead of receiving the driver's black box.
    address, workers, shard_size, out_dir, retries, threads, progress, return_info
        See the module docstring.
    """
    check_fitted(explainer, "target_", hint="call .fit(x, predict_proba, target=c)")
    xs = check_inputs(x)
    if tuple(xs.shape[1:]) != explainer.input_shape_:
        raise InputError(f"inputs of shape {xs.shape[1:]} do not match the fitted shape "
                         f"{explainer.input_shape_}")
    job = ExplainJob(explainer, as_model_file(model))
    result, info = execute(job, {"x": xs}, address=address, workers=workers,
                           shard_size=shard_size, out_dir=out_dir, retries=retries,
                           threads=threads, progress=progress)
    result = dataclasses.replace(result, extras={**result.extras, "distributed": info.to_dict()})
    return (result, info) if return_info else result


def _numpy(t: Any, what: str) -> np.ndarray:
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{what} must be a torch tensor, got {type(t).__name__}")
    return np.ascontiguousarray(t.detach().cpu().numpy())


def attack(atk: Attack, x: torch.Tensor, y: torch.Tensor, target: Any = None, *,
           address: str = "local", workers: int = 2, shard_size: int | None = None,
           out_dir: PathType | None = None, model: PathType | ModelFile | None = None,
           retries: int = 2, threads: int | None = None, progress: bool = True,
           return_info: bool = False, **kwargs: torch.Tensor) -> Any:
    """``atk(x, y, target, **kwargs)`` over a Ray cluster: the same :class:`AttackResult`.

    Shards follow the attack's batches; deterministic attacks give the local result bitwise
    (see :mod:`deepscope.distributed.attack_job`). ``seconds`` is the run's wall time.

    Parameters
    ----------
    atk : Attack
        The configured attack.
    x, y, target, **kwargs
        As for :meth:`Attack.__call__` (``kwargs``: per-sample tensors such as ``boxes``).
    model : path or ModelFile, optional
        The checkpoint of ``atk.model``: workers load it with the safe loader instead of
        receiving the driver's model.
    address, workers, shard_size, out_dir, retries, threads, progress, return_info
        See the module docstring.
    """
    if not isinstance(atk, Attack):
        raise InputError(f"atk must be a deepscope Attack, got {type(atk).__name__}")
    x = check_images(x)  # the checks of Attack.__call__, here before anything is shipped
    check_model_input(atk.model, x)
    x = x.to(model_dtype(atk.model))
    arrays = {"x": _numpy(x, "x"), "y": _numpy(torch.as_tensor(y), "y").astype(np.int64)}
    if len(arrays["y"]) != len(arrays["x"]):
        raise InputError(f"x has {len(arrays['x'])} inputs but y has {len(arrays['y'])} labels")
    if isinstance(target, torch.Tensor) and target.ndim == 1:
        arrays["target"] = _numpy(target, "target").astype(np.int64)
        target = None
    for k, v in kwargs.items():
        arrays[KWARG + k] = _numpy(v, k)
    job = AttackJob(atk, target, as_model_file(model))
    result, info = execute(job, arrays, address=address, workers=workers,
                           shard_size=shard_size, out_dir=out_dir, retries=retries,
                           threads=threads, progress=progress)
    return (result, info) if return_info else result


def evaluate(model: torch.nn.Module | PathType, data: Any, *, batch_size: int = 512,
             address: str = "local", workers: int = 2, shard_size: int | None = None,
             out_dir: PathType | None = None, retries: int = 2, threads: int | None = None,
             progress: bool = True, return_info: bool = False) -> Any:
    """:func:`deepscope.models.evaluate` over a Ray cluster: the same :class:`Evaluation`.

    Parameters
    ----------
    model : torch.nn.Module or path
        The classifier, or its checkpoint (workers load it with the safe loader).
    data : Dataset or (x, y)
        Labelled inputs.
    batch_size : int
        Inputs per forward pass; shards are multiples of it.
    address, workers, shard_size, out_dir, retries, threads, progress, return_info
        See the module docstring.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    shipped: torch.nn.Module | ModelFile
    if isinstance(model, torch.nn.Module):
        shipped, local = model, model
    else:
        shipped = as_model_file(model)  # type: ignore[assignment]
        local = shipped.load().model  # type: ignore[union-attr]
    x, y = as_xy(data, "data")
    if y is None:
        raise InputError("evaluate needs labels: pass a Dataset or an (x, y) pair")
    check_model_input(local, x, "the inputs of data")
    job = EvaluateJob(shipped, int(getattr(data, "num_classes", 0) or 0),
                      tuple(getattr(data, "classes", ()) or ()), batch_size)
    result, info = execute(job, {"x": _numpy(x, "x"), "y": _numpy(y, "y")}, address=address,
                           workers=workers, shard_size=shard_size, out_dir=out_dir,
                           retries=retries, threads=threads,
                           progress=progress)
    return (result, info) if return_info else result


def score(detector: Any, x: torch.Tensor, *, address: str = "local", workers: int = 2,
          shard_size: int | None = None, out_dir: PathType | None = None, retries: int = 2,
          threads: int | None = None, progress: bool = True, return_info: bool = False) -> Any:
    """``detector.score(x)`` over a Ray cluster: the same scores (float tensor, N).

    The fitted detector (with its model) travels to each worker once through Ray's object
    store. Shards are multiples of the detector's ``batch_size``.
    """
    if not callable(getattr(detector, "score", None)):
        raise InputError(f"detector must have a score(x) method, got {type(detector).__name__}")
    job = ScoreJob(detector, int(getattr(detector, "batch_size", 1) or 1))
    result, info = execute(job, {"x": _numpy(x, "x")}, address=address, workers=workers,
                           shard_size=shard_size, out_dir=out_dir, retries=retries,
                           threads=threads, progress=progress)
    return (result, info) if return_info else result

