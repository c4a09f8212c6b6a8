"""deepscope: open the box of deep-learning classifiers.

Sub-packages: :mod:`deepscope.data` (datasets), :mod:`deepscope.models` (zoo, training, hooks,
checkpoints), and the technique packages added by later issues.
"""

from deepscope.errors import DeepscopeError

__version__ = "0.1.0"

__all__ = ["DeepscopeError", "__version__"]
