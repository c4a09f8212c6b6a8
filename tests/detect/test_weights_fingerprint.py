"""A saved detector is bound to the weights it was fitted on (issue 11, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepscope.detect import Detector, FeatureSqueezingDetector, JointDetector
from deepscope.errors import InputError
from deepscope.models import weights_fingerprint

from .conftest import synthetic_faces, tiny_cnn

OLD_FILE = Path(__file__).parent / "data" / "joint_v1.npz"


@pytest.mark.parametrize("kind", ["squeeze", "joint"])
def test_a_detector_refuses_a_model_with_the_same_shapes_but_other_weights(kind, tmp_path):
    x, _, _ = synthetic_faces()
    model_a, model_b = tiny_cnn(seed=0), tiny_cnn(seed=1)
    if kind == "squeeze":
        det = FeatureSqueezingDetector(model_a, target_fpr=0.125).fit(x)
    else:
        det = JointDetector([FeatureSqueezingDetector(model_a)], target_fpr=0.125).fit(x)
    before = weights_fingerprint(model_a)
    path = det.save(tmp_path / "det.npz")
    assert weights_fingerprint(model_a) == before
    with pytest.raises(InputError, match=r"fitted on another model.*different weights"):
        Detector.load(path, model_b)
    back = Detector.load(path, tiny_cnn(seed=0))  # the same weights in a fresh module load
    assert torch.allclose(back.score(x), det.score(x))
    with torch.no_grad():
        model_a.head.bias.add_(1e-3)  # fine-tuned afterwards: another model
    with pytest.raises(InputError, match="another model"):
        Detector.load(path, model_a)


def test_files_without_a_weights_fingerprint_load_with_a_warning():
    with pytest.warns(UserWarning, match="without a weights fingerprint"):
        Detector.load(OLD_FILE, tiny_cnn(seed=0), progress=False)
