"""deepscope's benchmarks, run as modules from the project root: ``python -m bench.NAME``.

Importing the package first sets ``OMP_WAIT_POLICY=PASSIVE`` (before torch loads OpenMP):
busy-waiting worker threads make a shared 2-core machine many times slower when other processes
compete for the cores. Shared set-up lives in :mod:`bench.common`; trained zoo models are cached
by :mod:`bench.zoo`.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
