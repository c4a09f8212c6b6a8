"""The shard rule, the shard store and the address checks (no Ray session needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from deepscope.distributed import ClusterError, ShardStore, check_address, plan_shards, probe
from deepscope.distributed.store import digest
from deepscope.errors import InputError


def test_plan_follows_the_stated_rule():
    plan = plan_shards(100, 2)  # ceil(100 / (4 * 2)) = 13
    assert (plan.size, len(plan)) == (13, 8)
    assert plan.bounds(0) == (0, 13) and plan.bounds(7) == (91, 100)
    aligned = plan_shards(1000, 2, align=64)  # 125 rounded up to a multiple of 64
    assert aligned.size == 128 and aligned.bounds(len(aligned) - 1)[1] == 1000
    assert plan_shards(10, 3, shard_size=4).size == 4
    covered = [i for k in range(len(plan)) for i in range(*plan.bounds(k))]
    assert covered == list(range(100))


def test_plan_refuses_bad_sizes():
    with pytest.raises(InputError, match="workers"):
        plan_shards(10, 0)
    with pytest.raises(InputError, match="shard_size"):
        plan_shards(10, 2, shard_size=0)


def test_store_refuses_the_shards_of_another_run(tmp_path):
    plan = plan_shards(10, 2)
    store = ShardStore(tmp_path / "s", {"kind": "explain", "model": "a"}, plan)
    assert store.done() == []
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["plan"] == {"n": 10, "size": 2, "shards": 5}
    ShardStore(tmp_path / "s", {"kind": "explain", "model": "a"}, plan)  # same run: reopened
    with pytest.raises(InputError, match=r"another run.*model"):
        ShardStore(tmp_path / "s", {"kind": "explain", "model": "b"}, plan)
    with pytest.raises(InputError, match="shard plan"):
        ShardStore(tmp_path / "s", {"kind": "explain", "model": "a"}, plan_shards(10, 1))


def test_digest_sees_closed_over_arrays_but_not_timings():
    def make(w):
        return lambda x: x @ w

    a, b = np.ones(3), np.zeros(3)
    assert digest(make(a)) == digest(make(a.copy())) != digest(make(b))
    assert digest({"fit_seconds_": 1.0, "w": a}) == digest({"fit_seconds_": 2.0, "w": a})


def test_addresses_are_checked():
    assert check_address("local") == "local" and check_address("ray://h:10001") == "ray://h:10001"
    with pytest.raises(InputError, match="HOST:PORT"):
        check_address("nowhere")


def test_an_unreachable_cluster_fails_fast_with_one_line():
    with pytest.raises(ClusterError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:9 ") as e:
        probe("127.0.0.1:9", timeout=2.0)
    assert "\n" not in str(e.value)


def test_cli_ray_to_an_unreachable_address_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from deepscope.cli.main import app
    from deepscope.models import save_checkpoint, zoo

    path = save_checkpoint(tmp_path / "m.pt", zoo.build("mlp-100k"), arch="mlp-100k",
                           classes=[str(i) for i in range(10)])
    if not Path(os.environ.get("DEEPSCOPE_DATA", "/nonexistent"), "mnist").exists():
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    result = CliRunner().invoke(app, ["evaluate", str(path), "--dataset", "mnist", "--limit",
                                      "20", "--ray", "127.0.0.1:9", "--quiet"])
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "cannot reach the Ray cluster" in text, text


def test_dmm_men_is_seeded_by_its_mode():
    """The local mode spends its queries per input (shards of any size, per-input seeds); the
    global mode's explain step is deterministic and follows the batches."""
    from deepscope import explain
    from deepscope.distributed.explain_job import seeding_of

    assert seeding_of(explain.get("dmm-men", mode="local")).rule == "per-input"
    assert not seeding_of(explain.get("dmm-men", mode="local")).batch_aligned
    assert seeding_of(explain.get("dmm-men", mode="global")).rule == "fixed"
