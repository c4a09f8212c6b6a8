"""The driver loop: a pool of Ray actors holding the job, one shard each at a time, retries.

Each worker is a Ray actor created with the job (put once in the object store, so the model is
shipped once per worker, not per task) and the inputs (put once as well; an actor slices the
rows of its shard). The driver keeps one shard in flight per actor, writes every finished shard
to the store as it arrives, and shows shards done / total with the throughput. When an actor
dies (killed, out of memory, node lost), its shard goes back to the queue and a new actor takes
its place; a shard that kills ``retries + 1`` actors stops the run with :class:`ClusterError`.
An exception raised by the technique itself (a bad input) is re-raised as it is: retrying it
would fail again.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits
from tqdm.auto import tqdm

from deepscope.distributed._cluster import ClusterError
from deepscope.distributed.jobs import Job
from deepscope.distributed.shards import ShardPlan
from deepscope.distributed.store import ShardStore
from deepscope.errors import DeepscopeError


@dataclass(frozen=True)
class RunInfo:
    """How a distributed run went.

    Attributes
    ----------
    address : str
        The Ray address used.
    workers : int
        Actors started.
    plan : ShardPlan
        The shards.
    computed : tuple of int
        Shards computed in this run.
    resumed : tuple of int
        Shards read back from the store (finished by an earlier run).
    retried : dict
        Shard index → number of times it was retried after its worker died.
    seconds : float
        Wall time of the run (connection and worker start included).
    """

    address: str
    workers: int
    plan: ShardPlan
    computed: tuple[int, ...]
    resumed: tuple[int, ...]
    retried: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary."""
        return {"address": self.address, "workers": self.workers, **self.plan.to_dict(),
                "computed": list(self.computed), "resumed": list(self.resumed),
                "retried": {str(k): v for k, v in self.retried.items()},
                "seconds": self.seconds, "threads": self.threads}


@dataclass(frozen=True)
class Threads:
    """Thread counts a worker runs with: torch's intra-op threads and the BLAS pool's.

    Results of a model (and of BLAS reductions) may differ in the last bits between thread
    counts, so workers use the driver's counts by default (:meth:`of_driver`): the shards are
    then bitwise what the local call in the driver's process computes.
    """

    torch: int
    blas: int | None = None

    @classmethod
    def of_driver(cls, torch_threads: int | None = None) -> Threads:
        """The driver's counts (``torch_threads`` overrides both)."""
        if torch_threads is not None:
            return cls(int(torch_threads), int(torch_threads))
        blas = [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
        return cls(torch.get_num_threads(), max(blas) if blas else None)

    def apply(self) -> None:
        """Use these counts in this process (the worker)."""
        torch.set_num_threads(self.torch)
        if self.blas is not None:
            threadpool_limits(limits=self.blas, user_api="blas")


class ShardWorker:
    """The actor: holds one run's prepared job and inputs, and runs shards of them.

    Actors outlive a run: the driver keeps idle ones for the next run in the same Ray session
    (:data:`_IDLE`), so a run pays the worker start-up (a Python process importing torch) only
    once per session. :meth:`prepare` receives the next run's job and inputs (once per worker).
    """

    def __init__(self) -> None:
        self.release()

    def prepare(self, job: Job, arrays: dict[str, np.ndarray], threads: Threads) -> None:
        """Take the run's job and inputs and set the job up (load the model, ...)."""
        self.release()
        self.job, self.arrays = job, arrays
        try:
            threads.apply()
            self.state = job.setup()
        except Exception as exc:  # reported by the next run() call, with the shard's index
            self.error = exc

    def release(self) -> None:
        """Drop the job, its state and the inputs."""
        self.job: Job | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self.state: Any = None
        self.error: Exception | None = None

    def run(self, index: int, start: int, stop: int) -> Any:
        """Result of shard ``index`` (rows ``start:stop``)."""
        if self.error is not None:
            raise self.error
        assert self.job is not None, "prepare() first"
        part = {k: np.array(v[start:stop]) for k, v in self.arrays.items()}
        return self.job.run(self.state, index, start, part)

    def pid(self) -> int:
        """Process id (tests kill workers by it)."""
        return os.getpid()


#: Idle actors by Ray job id (one entry per driver session), reused by the next run.
_IDLE: dict[str, list[Any]] = {}


def _session(ray: Any) -> str:
    return str(ray.get_runtime_context().get_job_id())


def forget_idle_workers(ray: Any) -> None:
    """Kill this session's idle actors (they hold one CPU each)."""
    for actor in _IDLE.pop(_session(ray), []):
        ray.kill(actor)


def _task_error(exc: Exception, index: int) -> Exception:
    """What to raise for an exception of the technique on a worker."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, DeepscopeError):
        return cause
    first = (str(cause or exc).strip().splitlines() or [type(exc).__name__])[-1]
    return ClusterError(f"shard {index} failed on a worker: {first}")


class _Pool:
    """Actors, the shard queue and the in-flight tasks of one run."""

    def __init__(self, ray: Any, job_ref: Any, arrays_ref: Any, threads: Threads,
                 size: int) -> None:
        self.ray = ray
        self.cls = ray.remote(num_cpus=1)(ShardWorker)
        self.refs = (job_ref, arrays_ref, threads)
        idle = _IDLE.setdefault(_session(ray), [])
        self.actors = idle[:size] + [self.cls.remote() for _ in range(size - len(idle[:size]))]
        del idle[:size]
        for actor in self.actors:
            actor.prepare.remote(*self.refs)
        self.inflight: dict[Any, tuple[int, int]] = {}

    def submit(self, slot: int, index: int, plan: ShardPlan) -> None:
        start, stop = plan.bounds(index)
        self.inflight[self.actors[slot].run.remote(index, start, stop)] = (slot, index)

    def replace(self, slot: int) -> None:
        self.ray.kill(self.actors[slot])
        self.actors[slot] = self.cls.remote()
        self.actors[slot].prepare.remote(*self.refs)

    def close(self, healthy: bool) -> None:
        """Return the actors to the idle list (after a clean run) or kill them."""
        for actor in self.actors:
            if healthy:
                actor.release.remote()
                _IDLE.setdefault(_session(self.ray), []).append(actor)
            else:  # also stops their in-flight shards
                self.ray.kill(actor)


def run_job(ray: Any, job: Job, arrays: dict[str, np.ndarray], plan: ShardPlan, *,
            address: str, workers: int, threads: Threads, store: ShardStore | None = None,
            retries: int = 2, progress: bool = True) -> tuple[list[Any], RunInfo]:
    """Run ``job`` over the shards of ``plan``; return the shard results in order and a report.

    Shards already in ``store`` are read back, not recomputed; the others are written to it as
    they finish.
    """
    start_time = time.perf_counter()
    results: list[Any] = [None] * len(plan)
    resumed = store.done() if store is not None else []
    for i in resumed:
        results[i] = store.read(i, job.load)  # type: ignore[union-attr]
    queue = deque(i for i in range(len(plan)) if i not in set(resumed))
    todo = len(queue)
    retried: dict[int, int] = {}
    bar = tqdm(total=len(plan), initial=len(resumed), desc=f"{job.kind} on Ray", unit="shard",
               disable=not progress, leave=False, mininterval=0.5)
    # no more actors than shards, nor than the cluster's CPUs (an actor holds one; more would
    # wait forever for a CPU on a fixed-size cluster)
    cpus = int(ray.cluster_resources().get("CPU", workers))
    size = max(1, min(workers, todo, cpus))
    pool = _Pool(ray, ray.put(job), ray.put(arrays), threads, size) if todo else None
    done_inputs = 0
    healthy = False
    try:
        if pool is not None:
            for slot in range(len(pool.actors)):
                pool.submit(slot, queue.popleft(), plan)
        while pool is not None and pool.inflight:
            (ref,), _ = ray.wait(list(pool.inflight), num_returns=1)
            slot, index = pool.inflight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError:
                retried[index] = retried.get(index, 0) + 1
                if retried[index] > retries:
                    raise ClusterError(f"shard {index} lost its worker {retried[index]} times; "
                                       "the finished shards are kept, re-run to resume"
                                       ) from None
                pool.replace(slot)
                queue.appendleft(index)
            except ray.exceptions.RayTaskError as exc:
                raise _task_error(exc, index) from None
            else:
                if store is not None:
                    store.write(index, result, job.save)
                results[index] = result
                a, b = plan.bounds(index)
                done_inputs += b - a
                bar.update(1)
                rate = done_inputs / max(time.perf_counter() - start_time, 1e-9)
                bar.set_postfix_str(f"{rate:.3g} inputs/s", refresh=False)
            if queue:
                pool.submit(slot, queue.popleft(), plan)
        healthy = True
    finally:
        bar.close()
        if pool is not None:
            pool.close(healthy)
    computed = tuple(i for i in range(len(plan)) if i not in set(resumed))
    info = RunInfo(address=address, workers=len(pool.actors) if pool else 0, plan=plan,
                   computed=computed, resumed=tuple(resumed), retried=retried,
                   seconds=time.perf_counter() - start_time, threads=threads.torch)
    return results, info
