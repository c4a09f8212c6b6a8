"""Experiments that run several techniques together on a model and its data (the demo's
sections, and later the ``audit`` command). Returns result objects; knows no HTML: ``report/``
renders what this package computes."""
