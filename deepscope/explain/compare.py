"""Several explainers on the same inputs: the computation behind ``deepscope explain`` and the
demo's explanation section (:mod:`deepscope.report.explanations` only draws the result).

>>> from deepscope.explain import compare
>>> idx = compare.positives(model, test.x, test.y, target=5, n=8)          # doctest: +SKIP
>>> result = compare.side_by_side(model, test.x[idx], 5, ["dmm-men", "lime"])  # doctest: +SKIP
>>> result["lime"].explanation.top_features(10)                            # doctest: +SKIP
>>> result.save("comparison.npz")                                           # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepscope._validate import check_int
from deepscope.errors import InputError
from deepscope.explain.base import EXPLAINERS, Explainer, model_proba
from deepscope.explain.explanation import Explanation
from deepscope.explain.features import GridSpace
from deepscope.models import execution
from deepscope.protocol import Persistent

__all__ = ["Comparison", "ExplainRun", "build_explainer", "positives", "side_by_side"]


@dataclass(frozen=True)
class ExplainRun:
    """One explainer's explanation of a batch, with its cost.

    Attributes
    ----------
    method : str
        Registry name of the explainer.
    explanation : Explanation
        Its explanation of every input.
    seconds : float
        Wall time of fit + explain.
    queries : int or None
        Black-box queries spent (including the one target-check probe).
    """

    method: str
    explanation: Explanation
    seconds: float
    queries: int | None

    def to_dict(self) -> dict[str, Any]:
        """Method, seconds, queries and the number of explained inputs."""
        return {"method": self.method, "seconds": self.seconds, "queries": self.queries,
                "n": len(self.explanation)}


@dataclass(frozen=True)
class Comparison(Persistent):
    """The result of :func:`side_by_side`: the explained inputs and one run per method.

    Attributes
    ----------
    target : int
        The explained class.
    x : ndarray
        The explained inputs (``N×C×H×W`` or ``N×D``, float32).
    runs : tuple of ExplainRun
        One per method, in the order asked for.
    cell : int
        Side of the grid cells that are the features.
    seed : int
        Seed given to every explainer.
    n_fit : int
        Inputs the explainers were fitted on.
    """

    target: int
    x: np.ndarray
    runs: tuple[ExplainRun, ...]
    cell: int = 2
    seed: int = 0
    n_fit: int = 0

    _format = "explanation-comparison"

    @property
    def methods(self) -> list[str]:
        """The methods, in run order."""
        return [run.method for run in self.runs]

    def __iter__(self) -> Iterator[ExplainRun]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, method: str) -> ExplainRun:
        """The run of ``method``."""
        for run in self.runs:
            if run.method == method:
                return run
        raise InputError(f"no run of {method!r}; this comparison has {self.methods}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the inputs and the attribution matrices)."""
        return {"target": int(self.target), "n": len(self.x), "cell": self.cell,
                "seed": self.seed, "n_fit": self.n_fit,
                "runs": [run.to_dict() for run in self.runs]}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        runs, arrays = [], {"x": np.asarray(self.x)}
        for i, run in enumerate(self.runs):
            meta, arr = run.explanation._get_state()
            runs.append({"method": run.method, "seconds": run.seconds, "queries": run.queries,
                         "explanation": meta, "arrays": sorted(arr)})
            arrays.update({f"run{i}_{name}": value for name, value in arr.items()})
        meta = {"target": int(self.target), "cell": self.cell, "seed": self.seed,
                "n_fit": self.n_fit, "runs": runs}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Comparison:
        runs = []
        for i, run in enumerate(meta["runs"]):
            own = {name: arrays[f"run{i}_{name}"] for name in run["arrays"]}
            expl = Explanation._from_state(run["explanation"], own)
            runs.append(ExplainRun(run["method"], expl, float(run["seconds"]), run["queries"]))
        return cls(target=int(meta["target"]), x=arrays["x"], runs=tuple(runs),
                   cell=int(meta["cell"]), seed=int(meta["seed"]), n_fit=int(meta["n_fit"]))


def build_explainer(method: str, model: torch.nn.Module | None = None, *, cell: int = 2,
                    seed: int = 0, progress: bool = False, **params: Any) -> Explainer:
    """Build a registered explainer on a ``cell``×``cell`` grid feature space.

    Only the keywords an explainer accepts are passed: white-box explainers get ``model``,
    explainers without a seed get none. ``params`` must all be accepted.

    Raises
    ------
    InputError
        A parameter the explainer does not take (the message lists the valid ones).
    """
    cls = EXPLAINERS.get(method)
    cls.check_params(params, what=f"explainer {method!r}")
    takes = inspect.signature(cls.__init__).parameters
    offered = {"model": model, "space": GridSpace(cell), "seed": seed, "progress": progress,
               **params}
    return cls(**{k: v for k, v in offered.items() if k in takes})


def positives(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: int,
              n: int) -> torch.Tensor:
    """Indices of up to ``n`` inputs of label ``target`` that the model assigns to it."""
    check_int("n", n, low=1)
    idx = torch.nonzero(y == target).flatten()
    if len(idx) == 0:
        raise InputError(f"no inputs of class {target} to explain")
    pred = execution.predict_logits(model, x[idx]).argmax(1)
    chosen = idx[pred == target][:n]
    if len(chosen) == 0:
        raise InputError(f"the model assigns none of the class-{target} inputs to class {target}")
    return chosen


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def side_by_side(
    model: torch.nn.Module,
    x: torch.Tensor | np.ndarray,
    target: int,
    methods: Sequence[str] = ("dmm-men", "lime", "kernel-shap"),
    *,
    fit_x: torch.Tensor | np.ndarray | None = None,
    cell: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> Comparison:
    """Explain ``x`` (all assigned to class ``target``) with each method in turn.

    Black-box explainers query :func:`~deepscope.explain.model_proba` of ``model``; white-box
    ones (Integrated Gradients) receive the model itself.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    x : tensor or ndarray
        The inputs to explain.
    target : int
        The explained class.
    methods : sequence of str
        Registered explainer names.
    fit_x : tensor or ndarray, optional
        What fitted explainers (DMM-MEN) learn from (default ``x``); one fit serves every
        explained input.
    cell : int
        Features are ``cell``×``cell`` pixel squares.
    seed : int
        Seed of every explainer.
    progress : bool
        Show the explainers' progress bars.

    Returns
    -------
    Comparison
        The inputs and one :class:`ExplainRun` per method.
    """
    predict = model_proba(model)
    xs = _numpy(x)
    xf = xs if fit_x is None else _numpy(fit_x)
    runs = []
    for method in methods:
        explainer = build_explainer(method, model, cell=cell, seed=seed, progress=progress)
        start = time.perf_counter()
        explainer.fit(xf, predict, target=target)
        explanation = explainer.explain(xs)
        seconds = time.perf_counter() - start
        queries = getattr(getattr(explainer, "black_box_", None), "queries", None)
        runs.append(ExplainRun(method, explanation, seconds, queries))
    return Comparison(target=int(target), x=xs, runs=tuple(runs), cell=cell, seed=seed,
                      n_fit=len(xf))
