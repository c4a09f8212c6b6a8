"""Fitting detectors is reproducible across processes: the same seeds in two fresh Python
processes give identical thresholds, scores and decisions (issue 16: two runs with the same
seeds gave different false-positive rates).

Each process does what a user of the Python API does: build a zoo face model with the
defaults, train it with ``seed=0``, fit AmI, feature squeezing and their union with ``seed=0``.
The cause was ``zoo.build`` initialising the weights from the global RNG unless given a seed,
so "the same seeds" trained two different models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, torch
from deepscope.detect import AmIDetector, FeatureSqueezingDetector, JointDetector
from deepscope.data import Dataset
from deepscope.models import fit, zoo

g = torch.Generator().manual_seed(0)
n, k = 24, 4
y = torch.arange(n) % k
x = (0.3 + 0.1 * y.view(n, 1, 1, 1) + 0.2 * torch.rand(n, 1, 112, 92, generator=g)).clamp(0, 1)
boxes = torch.tensor([[20, 30, 44, 50], [50, 30, 74, 50]]).expand(n, 2, 4).clone()
model = zoo.build("face-cnn-26k", num_classes=k)   # the Python API's defaults
data = Dataset(x, y, classes=tuple("abcd"), name="synthetic")
fit(model, data, epochs=1, batch_size=8, seed=0, progress=False)
kw = dict(target_fpr=0.2, progress=False, seed=0)
ami = AmIDetector(model, n_pairs=4, alphas=(0.5, 2.0), **kw).fit(x, boxes, groups=y)
fs = FeatureSqueezingDetector(model, target_fpr=0.2, progress=False).fit(x)
joint = JointDetector([AmIDetector(model, n_pairs=4, alphas=(0.5, 2.0), **kw),
                       FeatureSqueezingDetector(model, progress=False)],
                      target_fpr=0.2, progress=False).fit(x, boxes, groups=y)
x_eval = torch.cat([x, x.flip(-1)])
print(json.dumps({name: {"threshold": float(d.threshold_).hex(),
                         "scores": [float(s).hex() for s in d.score(x_eval)],
                         "flags": d.detect(x_eval).tolist()}
                  for name, d in (("ami", ami), ("squeeze", fs), ("joint", joint))}))
"""


def _run(hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed,
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_detectors_fit_identically_in_two_fresh_processes():
    procs = [_run("1"), _run("2")]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=170)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    first, second = outs
    for name in ("ami", "squeeze", "joint"):
        assert first[name]["threshold"] == second[name]["threshold"], name
        assert first[name]["scores"] == second[name]["scores"], name
        assert first[name]["flags"] == second[name]["flags"], name
