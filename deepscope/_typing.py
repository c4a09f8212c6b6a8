"""Type aliases shared across deepscope."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike

import numpy as np
import torch

PathType = str | PathLike[str]
ArrayLike = np.ndarray | torch.Tensor
Seed = int | torch.Generator | None
PredictProba = Callable[[np.ndarray], np.ndarray]
