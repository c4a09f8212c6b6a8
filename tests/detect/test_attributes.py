from __future__ import annotations

import pytest
import torch

from deepscope.detect.ami.attributes import (
    AttributeSet,
    boxes_to_masks,
    pair_up,
    preserve,
    substitute,
)
from deepscope.errors import InputError


def test_boxes_to_masks_hard_and_feathered_keep_the_area():
    boxes = torch.tensor([[[2, 3, 7, 9]]])
    hard = boxes_to_masks(boxes, (12, 10))
    assert hard.shape == (1, 1, 12, 10)
    assert hard.sum() == 5 * 6 and hard[0, 0, 3:9, 2:7].eq(1).all()
    soft = boxes_to_masks(boxes, (12, 10), feather=2.0)
    assert soft.max() == 1 and ((soft > 0) & (soft < 1)).any()
    # the ramp is symmetric around the edge, so each full row keeps the box width
    assert torch.allclose(soft[0, 0, 6].sum(), torch.tensor(5.0), atol=1e-5)


def test_substitute_and_preserve_with_equal_boxes_are_exact_swaps(faces):
    x, boxes, _ = faces
    attrs = AttributeSet(boxes=boxes[:2].clone(), names=("a", "b"))
    attrs.boxes[1] = attrs.boxes[0]  # same boxes: no resampling needed
    r, d = torch.tensor([0]), torch.tensor([1])
    sub = substitute(x[:2], attrs, 0, r, d, feather=0.0)
    x0, y0, x1, y1 = attrs.boxes[0, 0].tolist()
    assert torch.allclose(sub[0, :, y0:y1, x0:x1], x[1, :, y0:y1, x0:x1], atol=1e-5)
    outside = torch.ones_like(sub[0], dtype=torch.bool)
    outside[:, y0:y1, x0:x1] = False
    assert torch.equal(sub[0][outside], x[0][outside])
    pres = preserve(x[:2], attrs, 0, r, d, feather=0.0)
    assert torch.equal(pres[0, :, y0:y1, x0:x1], x[0, :, y0:y1, x0:x1])
    assert torch.equal(pres[0][outside], x[1][outside])


def test_substitute_resamples_the_donor_box_into_the_recipient_box():
    x = torch.zeros(2, 1, 20, 20)
    x[1, :, 2:6, 2:6] = 1.0  # donor: bright 4×4 box at the top left
    boxes = torch.tensor([[[10, 8, 18, 16]], [[2, 2, 6, 6]]])  # recipient box is 8×8 elsewhere
    out = substitute(x, AttributeSet(boxes=boxes), 0, torch.tensor([0]), torch.tensor([1]),
                     feather=0.0)
    assert torch.allclose(out[0, 0, 9:15, 11:17], torch.ones(6, 6), atol=1e-4)
    assert out[0, 0, :8].abs().max() == 0 and out[0, 0, :, :10].abs().max() == 0


def test_masks_work_like_boxes(faces):
    x, boxes, _ = (t[:4] for t in faces)
    masks = boxes_to_masks(boxes, (24, 20))
    by_mask = substitute(x, AttributeSet(masks=masks), 1, torch.tensor([0, 2]),
                         torch.tensor([1, 3]), feather=0.0)
    by_box = preserve(x, AttributeSet(masks=masks), 1, torch.tensor([0]), torch.tensor([1]),
                      feather=0.0)
    assert by_mask.shape == (2, 1, 24, 20) and by_box.shape == (1, 1, 24, 20)
    m = masks[0, 1].bool()
    assert torch.equal(by_mask[0, 0][m], x[1, 0][m])
    assert torch.equal(by_mask[0, 0][~m], x[0, 0][~m])


def test_pair_up_is_seeded_and_crosses_groups():
    groups = torch.arange(12) % 3
    r1, d1 = pair_up(12, 30, groups=groups, seed=3)
    r2, d2 = pair_up(12, 30, groups=groups, seed=3)
    assert torch.equal(r1, r2) and torch.equal(d1, d2)
    assert (groups[r1] != groups[d1]).all()
    r3, d3 = pair_up(12, 30, seed=4)
    assert (r3 != d3).all() and len(r3) == 30
    # recipients cover every image about equally
    assert torch.bincount(r1, minlength=12).min() >= 2


def test_bad_regions_raise_input_errors(faces):
    x, boxes, _ = faces
    bad = boxes.clone()
    bad[0, 0, 2] = 99
    with pytest.raises(InputError, match="outside"):
        AttributeSet(boxes=bad).check(x)
    with pytest.raises(InputError, match="exactly one"):
        AttributeSet()
    with pytest.raises(InputError, match="N×A×4"):
        AttributeSet(boxes=torch.zeros(3, 4))
    with pytest.raises(InputError, match="out of range"):
        substitute(x, AttributeSet(boxes=boxes), 5, torch.tensor([0]), torch.tensor([1]))
