"""Throughput of explanations and attacks in-process vs on Ray (1 and 2 workers), same run.

Model: the zoo's ``mlp-100k`` on MNIST — the cached benchmark model (``bench.zoo``) when it is
there, otherwise a quick one (2 epochs on 12,000 training images, seed 0, cached under
``bench/.cache/scale/``); throughput hardly depends on its accuracy. The Ray runs receive the
checkpoint file (as the CLI's ``--ray`` does) and load it with the safe loader.

For each workload (KernelSHAP, LIME, DMM-MEN — the local mode, one mixture per explained image
at LIME's budget — and C&W L2), on the same test images:

- in-process: the local call on the driver (1 torch thread, 1 BLAS thread);
- Ray with 1 and 2 workers (a local Ray with 2 CPUs, actors with one CPU and one thread each),
  shards by :func:`deepscope.distributed.plan_shards`'s rule; every Ray result is checked to
  equal the in-process one;
- Ray's overhead per shard: a run of the random-features baseline (no model queries, ~0
  compute) over 64 one-input shards on 1 worker, wall time / 64; the per-workload overhead is
  also derived as (Ray 1 worker − in-process) / shards.

Before timing, each workload runs once on 2 inputs in-process and on the Ray workers (imports
of lime / shap, model load, first calls), so the timed runs compare warm processes; the cold
start of Ray (session, first actors) is reported apart.

Projection (a model, not a measurement): ``T(W) = N·c / W + S·o`` for N = 10,000 inputs over
``W`` workers with ``S = 4`` shards per worker (the default rule: each worker runs 4 shards in
sequence), ``c`` the measured in-process seconds per input and ``o`` the measured overhead per
shard; it assumes an idle cluster, CPUs that do not slow each other down, and a driver that
keeps up.

    python -m bench.scale                 # the full run (defaults): ~4 min on 2 busy cores
    python -m bench.scale --quick         # a smoke run (small workloads)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bench.common import (
    CACHE,
    RESULTS,
    command,
    logger,
    machine,
    require_data,
    set_threads,
    write_text,
)
from bench.zoo import cached_checkpoint, checkpoint_path
from deepscope import attacks, distributed, models
from deepscope import data as ds_data
from deepscope.explain import DMMMEN, GridSpace, KernelShap, Lime, RandomExplainer, model_proba

ARCH, DATASET = "mlp-100k", "mnist"
PROJECT_N, PROJECT_WORKERS = 10_000, (8, 64)


def model_file(log: Callable[[str], None]) -> tuple[Path, str]:
    """The checkpoint to explain / attack, and where it came from."""
    if cached_checkpoint(ARCH, DATASET) is not None:
        return checkpoint_path(ARCH, DATASET), "bench.zoo cache (the zoo recipe)"
    path = CACHE / "scale" / f"{ARCH}__{DATASET}__quick.pt"
    if path.exists():
        return path, "quick model (2 epochs on 12,000 images), cached"
    log("training a quick mlp-100k (2 epochs on 12,000 MNIST images)")
    train = ds_data.load(DATASET, "train", progress=False)
    train = train.subset(np.arange(12_000)) if hasattr(train, "subset") else train
    torch.manual_seed(0)
    model = models.zoo.build(ARCH)
    models.fit(model, train, epochs=2, seed=0, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    models.save_checkpoint(path, model, arch=ARCH, classes=train.classes)
    return path, "quick model (2 epochs on 12,000 images), trained now"


def _burn(n: int) -> float:
    start, s = time.perf_counter(), 0
    for i in range(n):
        s += i * i
    return time.perf_counter() - start


def parallel_capacity(n: int = 10_000_000) -> float:
    """How much faster 2 processes do 2 units of pure-Python work than 1 process does 1 each
    (2.0 on 2 idle cores): the ceiling of any 2-worker speed-up on this machine right now."""
    import multiprocessing

    one = _burn(n)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [1, 1], chunksize=1)  # the workers' start-up, not timed
        start = time.perf_counter()
        pool.map(_burn, [n, n], chunksize=1)
        return 2 * one / (time.perf_counter() - start)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def explainers(args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """Workload name → builder of its (unfitted) explainer."""
    return {
        "kernel-shap": lambda: KernelShap(GridSpace(2), nsamples=args.kshap_samples, seed=0,
                                          progress=False),
        "lime": lambda: Lime(GridSpace(2), num_samples=args.lime_samples, seed=0,
                             progress=False),
        "dmm-men": lambda: DMMMEN(GridSpace(2), mode="local", n_samples=args.dmm_samples,
                                  seed=0, progress=False),
    }


def run_explainer(name: str, build: Callable[[], Any], x: np.ndarray, fit_x: np.ndarray,
                  model: torch.nn.Module, ckpt: Path, workers: tuple[int, ...], target: int,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """One explainer: fit on the driver, then explain in-process and on Ray."""
    ex = build()
    fit_s, _ = timed(lambda: ex.fit(fit_x, model_proba(model), target=target))
    ex.explain(x[:2])  # warm: imports (lime, shap) and first calls, here and on the workers
    distributed.explain(ex, x[:2], workers=max(workers), model=ckpt, progress=False)
    local_s, local = timed(lambda: ex.explain(x))
    row: dict[str, Any] = {"workload": name, "n": len(x), "fit_seconds_driver": fit_s,
                           "in_process_seconds": local_s}
    for w in workers:
        s, (e, info) = timed(lambda w=w: distributed.explain(
            ex, x, workers=w, model=ckpt, progress=False, return_info=True))
        equal = bool(np.array_equal(e.attributions, local.attributions, equal_nan=True))
        row[f"ray{w}"] = {"seconds": s, "shards": len(info.plan), "shard_size": info.plan.size,
                          "equal_to_in_process": equal}
    log(f"{name}: {json.dumps(row)}")
    return row


def run_attack(x: torch.Tensor, model: torch.nn.Module, ckpt: Path, workers: tuple[int, ...],
               args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """C&W L2, untargeted, on inputs the model classifies correctly."""
    y = models.predict_logits(model, x).argmax(1)
    atk = attacks.get("cw-l2", model, steps=args.cw_steps, binary_search_steps=args.cw_binary,
                      batch_size=args.cw_batch, progress=False)
    atk(x[: args.cw_batch], y[: args.cw_batch])  # warm, here and on the workers
    distributed.attack(atk, x[: args.cw_batch], y[: args.cw_batch], workers=max(workers),
                       model=ckpt, progress=False)
    local_s, local = timed(lambda: atk(x, y))
    row: dict[str, Any] = {"workload": "cw-l2", "n": len(x), "fit_seconds_driver": 0.0,
                           "in_process_seconds": local_s,
                           "success_rate": local.success_rate}
    for w in workers:
        s, (r, info) = timed(lambda w=w: distributed.attack(
            atk, x, y, workers=w, model=ckpt, progress=False, return_info=True))
        row[f"ray{w}"] = {"seconds": s, "shards": len(info.plan), "shard_size": info.plan.size,
                          "equal_to_in_process": bool(torch.equal(r.x_adv, local.x_adv))}
    log(f"cw-l2: {json.dumps(row)}")
    return row


def shard_overhead(x: np.ndarray, model: torch.nn.Module, n_shards: int) -> float:
    """Seconds per shard of a ~zero-compute job (random features, one input per shard)."""
    ex = RandomExplainer(GridSpace(2), seed=0).fit(x[:1], model_proba(model), target=0)
    distributed.explain(ex, x[:2], workers=1, shard_size=1, progress=False)  # warm
    s, _ = timed(lambda: distributed.explain(ex, np.repeat(x[:1], n_shards, axis=0), workers=1,
                                             shard_size=1, progress=False))
    return s / n_shards


def derive(row: dict[str, Any], workers: tuple[int, ...], overhead: float) -> None:
    """Throughputs, ratios, per-shard overhead and the projections of one workload."""
    n, local = row["n"], row["in_process_seconds"]
    row["in_process_per_s"] = n / local
    for w in workers:
        r = row[f"ray{w}"]
        r["per_s"] = n / r["seconds"]
        r["ratio_to_in_process"] = local / r["seconds"]
    r1 = row[f"ray{min(workers)}"]
    row["overhead_per_shard_s"] = (r1["seconds"] - local) / r1["shards"]
    c = local / n
    row["projection"] = {str(w): PROJECT_N / (PROJECT_N * c / w + 4 * overhead)
                         for w in PROJECT_WORKERS}


def render(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        "# Scale-out on Ray: throughput in-process vs Ray workers",
        "",
        f"Command: `{result['command']}` ({result['seconds']:.0f} s). Machine: "
        f"{result['machine']}. Model: {ARCH} on {DATASET} ({result['model_source']}).",
        "",
        f"**Machine state: {result['contention']}**. Parallel capacity measured at the start "
        f"of the run: 2 processes did 2 units of pure-Python work "
        f"**{result['parallel_capacity']:.2f}×** as fast as 1 process did 1 (2.00× on 2 idle "
        "cores) — the ceiling of any 2-worker ratio below.",
        "",
        "Throughput in inputs per second (higher is better); ratio = in-process time / Ray "
        "time. Every Ray result was compared with the in-process result of the same run "
        "(\"equal\").",
        "",
        "| workload | inputs | in-process /s | Ray 1 worker /s (ratio) | Ray 2 workers /s "
        "(ratio) | shards (1 / 2 w.) | equal | overhead / shard |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        a, b = r["ray1"], r["ray2"]
        eq = "yes" if a["equal_to_in_process"] and b["equal_to_in_process"] else "**no**"
        lines.append(
            f"| {r['workload']} | {r['n']} | {r['in_process_per_s']:.3g} | "
            f"{a['per_s']:.3g} ({a['ratio_to_in_process']:.2f}×) | "
            f"{b['per_s']:.3g} ({b['ratio_to_in_process']:.2f}×) | "
            f"{a['shards']} / {b['shards']} | {eq} | {r['overhead_per_shard_s'] * 1e3:.0f} ms |")
    o = result["overhead_per_shard_s"]
    lines += [
        "",
        f"Ray overhead per shard, measured on a ~zero-compute job (64 one-input shards, 1 "
        f"worker): **{o * 1e3:.1f} ms**. The per-workload column is (Ray 1 worker − "
        "in-process) / shards, which also holds the differences of one worker process vs the "
        "driver. Cold start, paid once per session: Ray "
        f"{result['ray_init_seconds']:.1f} s, first two workers "
        f"{result['first_workers_seconds']:.1f} s. DMM-MEN's fit runs once on the driver "
        "(not in the table: "
        + ", ".join(f"{r['workload']} {r['fit_seconds_driver']:.1f} s" for r in rows
                    if r["fit_seconds_driver"] > 0) + ").",
        "",
        "## Targets",
        "",
        "| target | workload | measured | met |",
        "|---|---|---:|---|",
    ]
    for r in rows:
        if r["workload"] in ("kernel-shap", "lime"):
            two, one = r["ray2"]["ratio_to_in_process"], r["ray1"]["ratio_to_in_process"]
            lines.append(f"| Ray 2 workers ≥ 1.6× in-process | {r['workload']} | {two:.2f}× | "
                         f"{'yes' if two >= 1.6 else 'no'} |")
            lines.append(f"| Ray 1 worker loses ≤ 10 % | {r['workload']} | "
                         f"{(1 - one) * 100:+.1f} % lost | {'yes' if one >= 0.9 else 'no'} |")
    lines += [
        "",
        f"## Projection to {' and '.join(map(str, PROJECT_WORKERS))} workers (a PROJECTION, "
        "not a measurement)",
        "",
        f"`T(W) = N·c/W + 4·o` for N = {PROJECT_N:,} inputs, c = measured in-process seconds "
        "per input, o = the measured overhead per shard above, 4 shards per worker (the default "
        "rule). Assumes idle CPUs that do not slow each other down, a driver that keeps up, and "
        "free data transfer; contention on this machine inflates c.",
        "",
        "| workload | c (s / input) | projected /s, 8 workers | projected /s, 64 workers |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        p = r["projection"]
        lines.append(f"| {r['workload']} | {r['in_process_seconds'] / r['n']:.3g} | "
                     f"{p['8']:.3g} | {p['64']:.3g} |")
    lines += ["", "Settings: " + json.dumps(result["settings"]), ""]
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-kshap", type=int, default=512)
    p.add_argument("--kshap-samples", type=int, default=1000)
    p.add_argument("--n-lime", type=int, default=128)
    p.add_argument("--lime-samples", type=int, default=1000)
    p.add_argument("--n-dmm", type=int, default=128, help="test images DMM-MEN explains")
    p.add_argument("--dmm-fit", type=int, default=32, help="inputs DMM-MEN is fitted on")
    p.add_argument("--dmm-samples", type=int, default=1000,
                   help="queries per explained image of DMM-MEN's local mode (LIME's budget)")
    p.add_argument("--n-cw", type=int, default=256)
    p.add_argument("--cw-steps", type=int, default=100)
    p.add_argument("--cw-binary", type=int, default=4)
    p.add_argument("--cw-batch", type=int, default=8)
    p.add_argument("--contention", default="contended: other developers' jobs shared the 2 "
                   "cores (load average > 2); timings are distorted, the equality checks are not",
                   help="how busy the machine was (goes into the table)")
    p.add_argument("--quick", action="store_true", help="small workloads (smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS / "scale.md")
    args = p.parse_args(argv)
    if args.quick:
        args.n_kshap, args.n_lime, args.n_dmm, args.n_cw = 4, 4, 64, 8
        args.kshap_samples, args.lime_samples, args.dmm_samples, args.cw_steps = 200, 200, 200, 10
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    require_data()
    set_threads(1)
    threadpool_limits(limits=1)  # 1 BLAS thread too: workers copy the driver's counts
    log = logger()
    start = time.perf_counter()
    capacity = parallel_capacity()
    log(f"parallel capacity {capacity:.2f}x")
    ckpt, source = model_file(log)
    model = models.load_checkpoint(ckpt).model
    test = ds_data.load(DATASET, "test", progress=False)
    pred = models.predict_logits(model, test.x).argmax(1)
    correct = (pred == test.y).nonzero().flatten()
    target = int(torch.bincount(pred[correct]).argmax())  # the class the model gets most
    x_all = test.x[correct[pred[correct] == target]].numpy()  # explained: images of that class
    import ray

    ray_init, _ = timed(lambda: ray.init(num_cpus=2, include_dashboard=False,
                                         log_to_driver=False))
    first, _ = timed(lambda: distributed.evaluate(ckpt, (test.x[:8], test.y[:8]), batch_size=4,
                                                  workers=2, progress=False))
    log(f"ray.init {ray_init:.1f} s, first two workers {first:.1f} s")
    workers = (1, 2)
    # every explainer explains images of the class (DMM-MEN's local mode, like LIME, spends
    # its queries per explained image; nothing is learned in fit)
    inputs = {"kernel-shap": x_all[: args.n_kshap], "lime": x_all[: args.n_lime],
              "dmm-men": x_all[: args.n_dmm]}
    rows = [run_explainer(name, build, inputs[name], x_all[-args.dmm_fit:], model, ckpt,
                          workers, target, log) for name, build in explainers(args).items()]
    rows.append(run_attack(test.x[correct[: args.n_cw]], model, ckpt, workers, args, log))
    overhead = shard_overhead(x_all, model, 64)
    distributed.runner.forget_idle_workers(ray)
    ray.shutdown()
    for row in rows:
        derive(row, workers, overhead)
    result = {"command": command(), "machine": machine(), "model_source": source,
              "contention": args.contention, "parallel_capacity": capacity,
              "seconds": time.perf_counter() - start,
              "ray_init_seconds": ray_init, "first_workers_seconds": first,
              "overhead_per_shard_s": overhead, "rows": rows,
              "settings": {k: v for k, v in vars(args).items() if k not in ("out", "contention")}
              | {"class": target}}
    write_text(args.out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text(args.out, render(result))
    log(f"wrote {args.out} ({math.ceil(result['seconds'])} s)")


if __name__ == "__main__":
    main()
