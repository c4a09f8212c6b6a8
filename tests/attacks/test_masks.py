"""Masks of the patch and glasses attacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope import attacks
from deepscope.errors import InputError


def test_square_mask():
    corners = torch.tensor([[0, 0], [3, 5]])
    m = attacks.square_mask((2, 1, 10, 12), 4, corners)
    assert m.shape == (2, 1, 10, 12) and m.dtype == torch.bool
    assert m.sum(dim=(1, 2, 3)).tolist() == [16, 16]
    assert m[1, 0, 3:7, 5:9].all() and not m[1, 0, 7, 5] and not m[1, 0, 3, 9]


def test_patch_location_modes(digits):
    model, x, y = digits
    x, y = x[:6], y[:6]
    centre = attacks.get("patch", model, size=6, steps=1, location="center", progress=False)(x, y)
    assert centre.mask[:, 0, 11:17, 11:17].all() and centre.mask.sum() == 6 * 36
    fixed = attacks.get("patch", model, size=0.25, steps=1, location=(2, 3),
                        progress=False)(x, y)
    assert fixed.mask[:, 0, 2:9, 3:10].all() and fixed.mask.sum() == 6 * 49
    rand = attacks.get("patch", model, size=6, steps=1, progress=False, seed=3)(x, y)
    corners = torch.stack([torch.nonzero(m[0])[0] for m in rand.mask])
    assert len({tuple(c.tolist()) for c in corners}) > 1  # drawn per image
    per_call = torch.tensor([[0, 0], [22, 22], [5, 1], [0, 0], [1, 1], [2, 2]])
    r = attacks.get("patch", model, size=6, steps=1, progress=False)(x, y, location=per_call)
    assert r.mask[1, 0, 22:, 22:].all() and r.mask[2, 0, 5:11, 1:7].all()
    with pytest.raises(InputError):
        attacks.get("patch", model, size=6, progress=False)(x, y, location=per_call + 20)
    with pytest.raises(InputError):
        attacks.get("patch", model, size=40, progress=False)(x, y)


def _eye_boxes(n: int = 1) -> torch.Tensor:
    # left_eye (image right), right_eye (image left), nose, mouth, as in att-faces
    b = torch.tensor([[55, 40, 72, 52], [22, 41, 39, 53], [38, 45, 56, 75], [30, 80, 65, 95]])
    return b.expand(n, 4, 4).clone()


def test_glasses_mask_geometry():
    m = attacks.glasses_mask(_eye_boxes(2), 112, 92)
    assert m.shape == (2, 1, 112, 92) and m.dtype == torch.bool
    frame = m[0, 0]
    # Rims around, not over, the eyes: the eye centres are free, a ring surrounds them.
    for x0, y0, x1, y1 in _eye_boxes()[0, :2].tolist():
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        assert not frame[cy, cx]
        assert frame[cy, x0 - 2:x0 + 3].any() and frame[cy, x1 - 3:x1 + 2].any()
        assert frame[y0 - 2:y0 + 3, cx].any() and frame[y1 - 3:y1 + 2, cx].any()
    # A bridge between the eyes, nothing on the mouth.
    assert frame[45:50, 44:50].any()
    assert not frame[80:].any()
    assert 150 < int(frame.sum()) < 700


def test_glasses_mask_inputs():
    boxes = _eye_boxes(3)
    same = attacks.glasses_mask(boxes.numpy(), 112, 92)
    assert torch.equal(same, attacks.glasses_mask(boxes, 112, 92))
    two = attacks.glasses_mask(boxes[:, :2], 112, 92)  # N×2×4 works as well
    assert torch.equal(two, same)
    swapped = attacks.glasses_mask(boxes[:, [1, 0]], 112, 92)
    assert torch.equal(swapped, same)
    for bad in (boxes[0], boxes[:, :, :3], boxes[:, :1]):
        with pytest.raises(InputError):
            attacks.glasses_mask(bad, 112, 92)
    outside = boxes.clone()
    outside[0, 0, 2] = 200
    with pytest.raises(InputError, match="inside"):
        attacks.glasses_mask(outside, 112, 92)
    flipped = boxes.clone()
    flipped[0, 0, [0, 2]] = flipped[0, 0, [2, 0]]
    with pytest.raises(InputError):
        attacks.glasses_mask(flipped, 112, 92)


def test_glasses_boxes_at_call_time_or_in_params(digits):
    model, x, y = digits
    x, y = x[:4], y[:4]
    boxes = torch.tensor([[5, 8, 12, 13], [16, 8, 23, 13]]).expand(4, 2, 4)
    a = attacks.get("glasses", model, steps=3, progress=False)(x, y, target="first", boxes=boxes)
    b = attacks.get("glasses", model, steps=3, boxes=np.asarray(boxes), progress=False)(
        x, y, target="first")
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.mask, b.mask)
    with pytest.raises(InputError, match="boxes"):
        attacks.get("glasses", model, progress=False)(x, y)
    with pytest.raises(InputError):
        attacks.get("glasses", model, progress=False)(x, y, boxes=boxes[:3])


def test_glasses_on_real_faces(data_dir):
    from deepscope.data import load

    faces = load("att-faces", "test", progress=False)
    x, boxes = faces.x[:6], faces.extras["boxes"][:6]
    m = attacks.glasses_mask(boxes, 112, 92)
    for i in range(6):
        for x0, y0, x1, y1 in boxes[i, :2].tolist():
            assert not m[i, 0, (y0 + y1) // 2, (x0 + x1) // 2]  # eye itself left free
            ring = m[i, 0, max(y0 - 3, 0):y1 + 3, max(x0 - 3, 0):x1 + 3]
            assert ring.sum() >= 20
        assert not m[i, 0, boxes[i, 3, 1]:].any()  # nothing at or below the mouth's top
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, 4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.LazyLinear(40))
    model(x)  # materialise the lazy layer
    r = attacks.get("glasses", model, steps=5, progress=False)(
        x, faces.y[:6], target="next", boxes=boxes)
    outside = ~r.mask.expand_as(x)
    assert torch.equal(r.x_adv[outside], x[outside])
