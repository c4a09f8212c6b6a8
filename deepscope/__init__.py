"""deepscope: open the box of deep-learning classifiers.

Sub-packages: :mod:`deepscope.data` (datasets), :mod:`deepscope.models` (zoo, training, hooks,
checkpoints), :mod:`deepscope.debug` (MODE: diagnose and repair per-label bugs),
:mod:`deepscope.attacks` and :mod:`deepscope.detect` (adversarial inputs; AmI),
:mod:`deepscope.explain` (DMM-MEN, LIME, KernelSHAP) and :mod:`deepscope.report`. Import
them explicitly (``from deepscope import debug``); this module stays thin so that
``import deepscope`` is fast.
"""

from deepscope.errors import DeepscopeError

__version__ = "0.1.0"

__all__ = ["DeepscopeError", "__version__"]
