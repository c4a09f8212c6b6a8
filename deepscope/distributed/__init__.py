"""Scale explanations, attacks, evaluation and detection scoring out over a Ray cluster.

Optional extra: ``pip install 'deepscope[ray]'``. The inputs are cut into shards (a stated
rule, :mod:`~deepscope.distributed.shards`), each Ray worker holds the model once, results come
back in input order and equal the local run (see each job module for the exact guarantee).
Finished shards can be written to a folder as they complete and a re-run resumes from them; a
worker that dies costs only its shard, which is retried.

>>> from deepscope import distributed                                       # doctest: +SKIP
>>> ex = explain.get("lime", seed=0).fit(x, explain.model_proba(model), target=3)  # +SKIP
>>> e = distributed.explain(ex, x, address="local", workers=2)              # doctest: +SKIP
"""

from deepscope.distributed._cluster import ClusterError, check_address, connect, probe
from deepscope.distributed.api import attack, evaluate, execute, explain, score
from deepscope.distributed.explain_job import SEEDING, Seeding
from deepscope.distributed.jobs import Job, ModelFile
from deepscope.distributed.runner import RunInfo
from deepscope.distributed.shards import SHARDS_PER_WORKER, ShardPlan, plan_shards, shard_seed
from deepscope.distributed.store import ShardStore

__all__ = [
    "SEEDING",
    "SHARDS_PER_WORKER",
    "ClusterError",
    "Job",
    "ModelFile",
    "RunInfo",
    "Seeding",
    "ShardPlan",
    "ShardStore",
    "attack",
    "check_address",
    "connect",
    "evaluate",
    "execute",
    "explain",
    "plan_shards",
    "probe",
    "score",
    "shard_seed",
]
