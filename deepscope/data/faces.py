"""The AT&T (ORL) face database: 400 grey 112×92 faces of 40 people, plus derived landmarks.

Files (no official download exists for these derived files):

- ``att-faces/att_faces.npz`` (required): ``images`` uint8 (400, 112, 92), ``subject`` 0-39,
  ``image_index`` 1-10.
- ``att-faces/landmarks_68.npz`` (optional): ``boxes`` (400, 4, 4) as (x0, y0, x1, y1) with x1/y1
  exclusive, in the order of ``box_names`` = left_eye, right_eye, nose, mouth.

Label ``y`` is the subject (classes ``"s1"`` .. ``"s40"``). Extras: ``subject``, ``image_index``
and, with the landmark file, ``boxes`` (int64 N×4×4); ``info["box_names"]`` names the boxes.

Splits are fixed and stratified: 2 of the 10 images of each subject are ``"test"`` and 8 are
``"train"``. The test images are :data:`TEST_IMAGES` (``image_index`` values per subject). The
table was drawn once with ``rng = np.random.default_rng(0)`` and, for subjects s1..s40 in order,
``sorted(rng.permutation(10)[:2] + 1)``; it is stored here so it never changes with library
versions. Within a split, samples keep the file order (subject, then image index).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscope.data.catalog import DatasetSpec, RawSplit
from deepscope.data.download import FetchOptions, ensure_files
from deepscope.data.integrity import FileSpec
from deepscope.errors import DataCorruptError

BOX_NAMES = ("left_eye", "right_eye", "nose", "mouth")
NUM_SUBJECTS = 40
IMAGES_PER_SUBJECT = 10
HEIGHT, WIDTH = 112, 92

#: ``image_index`` (1-10) of the two test images of subjects s1..s40.
TEST_IMAGES: tuple[tuple[int, int], ...] = (
    (5, 7), (3, 10), (5, 6), (5, 6), (2, 3), (5, 7), (1, 7), (1, 3), (2, 7), (6, 7),
    (4, 8), (2, 3), (7, 8), (4, 6), (2, 9), (5, 10), (6, 8), (1, 10), (1, 2), (1, 5),
    (6, 7), (6, 9), (2, 8), (5, 9), (1, 4), (1, 7), (5, 10), (4, 7), (4, 10), (2, 4),
    (2, 10), (4, 10), (5, 6), (4, 8), (9, 10), (5, 10), (4, 6), (1, 4), (3, 9), (4, 5),
)  # fmt: skip

_HOW_TO_GET = "copy it from the staged deepscope data (folder att-faces/, see its README)"


def is_test_image(subject: np.ndarray, image_index: np.ndarray) -> np.ndarray:
    """Boolean mask of the test images (see :data:`TEST_IMAGES`)."""
    table = np.array(TEST_IMAGES)
    chosen = table[subject]  # (N, 2)
    return (chosen == image_index[:, None]).any(axis=1)


def _load_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            absent = [k for k in keys if k not in npz.files]
            if absent:
                raise DataCorruptError(f"{path}: missing array(s) {', '.join(absent)}")
            return {k: npz[k] for k in keys}
    except (OSError, ValueError) as exc:
        raise DataCorruptError(f"{path}: unreadable npz ({exc})") from exc


class AttFaces(DatasetSpec):
    """AT&T faces with optional landmark boxes."""

    name = "att-faces"
    classes = tuple(f"s{i}" for i in range(1, NUM_SUBJECTS + 1))
    description = "AT&T/ORL faces, 112×92 grey, 40 subjects × 10 images (8 train / 2 test each)"

    def __init__(self) -> None:
        self.faces_file = FileSpec(
            relpath="att-faces/att_faces.npz",
            sha256="7400b978fdf4bc6334c0d0567a6472bd659e657e32febfc812bca34d852e1c6c",
            note=_HOW_TO_GET,
        )
        self.landmarks_file = FileSpec(
            relpath="att-faces/landmarks_68.npz",
            sha256="8133539dbcf2fe2d4cc3967109cba678fd7925f0c2a833b61b01f54901de3c92",
            note=_HOW_TO_GET + "; adds the eye/nose/mouth boxes",
        )

    def files(self) -> tuple[FileSpec, ...]:
        return (self.faces_file, self.landmarks_file)

    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        paths = ensure_files(
            self.name, [self.faces_file], root, options, optional=[self.landmarks_file]
        )
        faces_path = paths[self.faces_file.relpath]
        assert faces_path is not None
        data = _load_npz(faces_path, ("images", "subject", "image_index"))
        images, subject, image_index = data["images"], data["subject"], data["image_index"]
        n = len(images)
        if images.dtype != np.uint8 or images.shape[1:] != (HEIGHT, WIDTH):
            raise DataCorruptError(f"{faces_path}: images must be uint8 N×{HEIGHT}×{WIDTH}")
        if subject.shape != (n,) or image_index.shape != (n,):
            raise DataCorruptError(
                f"{faces_path}: subject/image_index must have one entry per image"
            )
        if n and (subject.min() < 0 or subject.max() >= NUM_SUBJECTS
                  or image_index.min() < 1 or image_index.max() > IMAGES_PER_SUBJECT):
            raise DataCorruptError(f"{faces_path}: subject or image_index out of range")
        subject = subject.astype(np.int64)
        image_index = image_index.astype(np.int64)
        extras = {"subject": subject, "image_index": image_index}
        info: dict[str, object] = {}
        landmarks_path = paths[self.landmarks_file.relpath]
        if landmarks_path is not None:
            marks = _load_npz(landmarks_path, ("boxes", "box_names"))
            boxes = marks["boxes"].astype(np.int64)
            if boxes.shape != (n, len(BOX_NAMES), 4):
                raise DataCorruptError(f"{landmarks_path}: boxes must have shape ({n}, 4, 4)")
            if tuple(str(b) for b in marks["box_names"]) != BOX_NAMES:
                raise DataCorruptError(f"{landmarks_path}: box_names must be {BOX_NAMES}")
            extras["boxes"] = boxes
            info["box_names"] = BOX_NAMES
        x = images[:, None]
        test = is_test_image(subject, image_index)
        raws = []
        for split in splits:
            keep = test if split == "test" else ~test
            raws.append(
                RawSplit(
                    x=x[keep], y=subject[keep], extras={k: v[keep] for k, v in extras.items()},
                    info=info,
                )
            )
        return raws


ATT_FACES = AttFaces()
