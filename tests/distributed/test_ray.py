"""Explanations, attacks and evaluation on a local Ray (``ray.init(num_cpus=2)``, one session
for the module): equal to the local run, resumable, and a killed worker costs only its shard."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from deepscope import attacks, distributed, explain, models
from deepscope.distributed import ClusterError
from deepscope.distributed.runner import forget_idle_workers
from deepscope.models import zoo

ray = pytest.importorskip("ray")

N = 12


@pytest.fixture(scope="module")
def session():
    """One local Ray for the module (dashboard off, token auth as Ray's defaults)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # DyingProba on workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    forget_idle_workers(ray)
    ray.shutdown()


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    model = zoo.build("mlp-100k").eval()
    x = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, x


class DyingProba:
    """A black box that kills the worker process calling it the ``after``-th time (once)."""

    def __init__(self, fn, folder: Path, after: int) -> None:
        self.fn, self.folder, self.after, self.driver = fn, folder, after, os.getpid()

    def __call__(self, x):
        if os.getpid() != self.driver:
            with open(self.folder / "calls", "a") as fh:
                fh.write("x")
            if (self.folder / "calls").stat().st_size >= self.after:
                try:
                    os.close(os.open(self.folder / "killed", os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    pass
                else:
                    os._exit(1)  # the actor's process dies mid-run
        return self.fn(x)


def _lime(model, x, proba=None):
    ex = explain.get("lime", num_samples=40, seed=7, progress=False)
    return ex.fit(x.numpy(), proba or explain.model_proba(model), target=3)


def test_lime_on_ray_equals_the_local_run_bitwise_for_any_shard_size(session, mlp):
    model, x = mlp
    ex = _lime(model, x)
    before = torch.get_num_threads()
    try:  # the model's last bits depend on torch's thread count: workers use the driver's
        for size, threads in ((None, 1), (5, 2)):
            torch.set_num_threads(threads)
            local = ex.explain(x.numpy())
            e, info = distributed.explain(ex, x.numpy(), workers=2, shard_size=size,
                                          progress=False, return_info=True)
            assert np.array_equal(e.attributions, local.attributions, equal_nan=True)
            assert np.array_equal(e.segments, local.segments) and e.method == "lime"
            assert info.workers == 2 and len(info.computed) == len(info.plan) > 1
            assert info.threads == threads
    finally:
        torch.set_num_threads(before)
    assert e.extras["distributed"]["shards"] == 3


def test_deterministic_and_stochastic_explainers(session, mlp):
    model, x = mlp
    proba = explain.model_proba(model)
    dmm = explain.get("dmm-men", mode="global", n_sweeps=12, burn_in=4, n_local=4,
                      n_chains=1, seed=0, progress=False).fit(x.numpy(), proba, target=3)
    local = dmm.explain(x.numpy())
    e = distributed.explain(dmm, x.numpy(), workers=2, shard_size=4, progress=False)
    assert np.array_equal(e.attributions, local.attributions)
    assert np.array_equal(e.component, local.component)
    # the local mode draws per input (seed + i): equal to the local run for any shard size
    dmm = explain.get("dmm-men", mode="local", n_samples=60, seed=2,
                      progress=False).fit(x.numpy(), proba, target=3)
    local = dmm.explain(x.numpy())
    for size in (3, 5):
        e = distributed.explain(dmm, x.numpy(), workers=2, shard_size=size, progress=False)
        assert np.array_equal(e.attributions, local.attributions, equal_nan=True)
    # the random baseline draws once per call: the same for the same seed and shard size
    rnd = explain.get("random", seed=5).fit(x.numpy(), proba, target=3)
    a = distributed.explain(rnd, x.numpy(), workers=2, shard_size=4, progress=False)
    b = distributed.explain(rnd, x.numpy(), workers=2, shard_size=4, progress=False)
    c = distributed.explain(rnd, x.numpy(), workers=2, shard_size=6, progress=False)
    assert np.array_equal(a.attributions, b.attributions)
    assert not np.array_equal(a.attributions, c.attributions)


def test_a_killed_worker_costs_only_its_shard(session, mlp, tmp_path):
    model, x = mlp
    ex = _lime(model, x, DyingProba(explain.model_proba(model), tmp_path, after=5))
    local = ex.explain(x.numpy())  # on the driver: never dies
    e, info = distributed.explain(ex, x.numpy(), workers=2, shard_size=2, progress=False,
                                  out_dir=tmp_path / "shards", return_info=True)
    assert (tmp_path / "killed").exists()
    assert sum(info.retried.values()) == 1  # one shard retried, once
    assert sorted(info.computed) == list(range(6)) and info.resumed == ()
    assert np.array_equal(e.attributions, local.attributions, equal_nan=True)
    assert len(list((tmp_path / "shards").glob("shard-*.npz"))) == 6


def test_a_failed_run_resumes_from_its_finished_shards(session, mlp, tmp_path):
    model, x = mlp
    ex = _lime(model, x, DyingProba(explain.model_proba(model), tmp_path, after=7))
    local = ex.explain(x.numpy())
    store = tmp_path / "shards"
    with pytest.raises(ClusterError, match=r"lost its worker.*re-run to resume"):
        distributed.explain(ex, x.numpy(), workers=2, shard_size=2, retries=0,
                            progress=False, out_dir=store)
    first = {p.name: p.stat().st_mtime_ns for p in store.glob("shard-*.npz")}
    assert 0 < len(first) < 6
    time.sleep(0.01)
    e, info = distributed.explain(ex, x.numpy(), workers=2, shard_size=2, progress=False,
                                  out_dir=store, return_info=True)
    assert len(info.resumed) == len(first)
    assert sorted(info.resumed + info.computed) == list(range(6))  # each shard exactly once
    assert {p.name: p.stat().st_mtime_ns for p in store.glob("shard-*.npz")
            if p.name in first} == first  # finished shards are not rewritten
    assert np.array_equal(e.attributions, local.attributions, equal_nan=True)


def test_attack_and_evaluation_equal_the_local_run(session, mlp, tmp_path):
    model, x = mlp
    y = models.predict_logits(model, x).argmax(1)
    atk = attacks.get("cw-l2", model, steps=8, binary_search_steps=2, batch_size=4, progress=False)
    local = atk(x, y, target="next")
    r = distributed.attack(atk, x, y, target="next", workers=2, progress=False)
    for name in ("x_adv", "success", "adv_labels", "l2", "iterations", "target_labels"):
        assert torch.equal(getattr(r, name), getattr(local, name)), name
    labels = torch.arange(N) % 10
    ev_local = models.evaluate(model, (x, labels), batch_size=4)
    ev = distributed.evaluate(model, (x, labels), batch_size=4, workers=2, progress=False)
    assert ev.accuracy == ev_local.accuracy and ev.n == N
    assert np.array_equal(ev.confusion, ev_local.confusion)
    assert ev.loss == pytest.approx(ev_local.loss, rel=1e-6)


def test_a_checkpoint_reaches_workers_as_bytes_and_loads_safely(session, mlp, tmp_path):
    model, x = mlp
    path = models.save_checkpoint(tmp_path / "m.pt", model, arch="mlp-100k",
                                  classes=[str(i) for i in range(10)])
    ex = _lime(model, x)
    job = distributed.explain_job.ExplainJob(ex, distributed.ModelFile.read(path))
    assert job.explainer.black_box_ is None  # the driver's model is not shipped
    e = distributed.explain(ex, x.numpy(), workers=2, model=path, progress=False)
    assert np.array_equal(e.attributions, ex.explain(x.numpy()).attributions, equal_nan=True)


@pytest.fixture(scope="module")
def mnist_checkpoint(tmp_path_factory, mlp):
    """An (untrained) mlp-100k checkpoint and the class it assigns most MNIST test images to."""
    data_dir = os.environ.get("DEEPSCOPE_DATA", "")
    if not (data_dir and Path(data_dir, "mnist").exists()):
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    from deepscope import data

    model, _ = mlp
    test = data.load("mnist", split="test")
    pred = models.predict_logits(model, test.x[:500]).argmax(1)
    hits = torch.bincount(pred[pred == test.y[:500]], minlength=10)
    path = tmp_path_factory.mktemp("ckpt") / "mlp.pt"
    models.save_checkpoint(path, model, arch="mlp-100k", classes=test.classes)
    return path, int(hits.argmax())


def test_cli_explain_with_ray_writes_the_same_attributions(session, mnist_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from deepscope.cli.main import app

    path, target = mnist_checkpoint
    outs = {}
    for name, extra in (("local", []), ("ray", ["--ray", "local", "--workers", "2"])):
        outs[name] = tmp_path / f"{name}.npz"
        result = CliRunner().invoke(app, [
            "explain", str(path), "--dataset", "mnist", "--method", "lime", "--class",
            str(target), "--k", "5", "--n", "3", "--out", str(outs[name]), "--quiet", *extra])
        assert result.exit_code == 0, result.output
    a, b = (explain.Explanation.load(outs[k]) for k in ("local", "ray"))
    assert len(a) == 3 and np.array_equal(a.attributions, b.attributions, equal_nan=True)
    assert not (tmp_path / "ray.npz.shards").exists()  # the shard folder is gone once written


def test_cli_attack_and_evaluate_with_ray_match_the_local_run(session, mnist_checkpoint,
                                                              tmp_path):
    import json

    from typer.testing import CliRunner

    from deepscope.cli.main import app

    path, _ = mnist_checkpoint
    ray_args = ["--ray", "local", "--workers", "2"]
    outs = {}
    for name, extra in (("local", []), ("ray", ray_args)):
        outs[name] = tmp_path / f"{name}.npz"
        result = CliRunner().invoke(app, [
            "attack", str(path), "--dataset", "mnist", "--attack", "bim", "--n", "6",
            "--param", "batch_size=2", "--out", str(outs[name]), "--quiet", *extra])
        assert result.exit_code == 0, result.output
    a, b = (attacks.AttackResult.load(outs[k]) for k in ("local", "ray"))
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.success, b.success)
    evals = [json.loads(CliRunner().invoke(app, [
        "evaluate", str(path), "--dataset", "mnist", "--limit", "300", "--json", "--quiet",
        *extra]).stdout) for extra in ([], ray_args)]
    assert evals[0]["confusion"] == evals[1]["confusion"]
    assert evals[0]["accuracy"] == evals[1]["accuracy"]


def test_an_error_of_the_technique_reaches_the_caller_as_itself(session, mlp):
    from deepscope.errors import InputError

    model, x = mlp
    proba = explain.model_proba(model)
    ex = _lime(model, x, proba)
    ex.black_box_.fn = lambda z: proba(z) - 1.0  # not probabilities: refused on the workers
    with pytest.raises(InputError, match="outside \\[0, 1\\]"):
        distributed.explain(ex, x.numpy(), workers=2, progress=False)
