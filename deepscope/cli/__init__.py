"""The ``deepscope`` command-line interface (the only place that touches argv and exit codes)."""
