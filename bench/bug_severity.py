"""How severe are the injected bugs? Calibration table for the MODE benchmarks.

Trains ``--arch`` on the MODE protocol split of MNIST (30 % train) with each bug recipe and
reports the buggy label's train and test accuracy and the model's test accuracy.

    python -m bench.bug_severity            # writes bench/results/bug_severity.md
"""

from __future__ import annotations

import argparse
import time

from bench.common import RESULTS, set_threads, write_text
from deepscope import data, models
from deepscope.report import markdown_table

OUT = RESULTS / "bug_severity.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--arch", default="mlp-100k")
    parser.add_argument("--label", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    set_threads()
    split = data.mode_split(data.load(args.dataset, "all", progress=False), seed=args.seed)
    recipes = [("none", {}), ("underfit", {"keep": 0.15}), ("underfit", {"keep": 0.25}),
               ("overfit", {"keep": 0.10}), ("overfit", {"keep": 0.25}),
               ("overfit", {"keep": 0.5})]
    rows = []
    for kind, params in recipes:
        start = time.perf_counter()
        if kind == "none":
            train, description = split.train, "no bug"
        else:
            train, recipe = models.bugs.get(kind)(split.train, args.label, seed=args.seed,
                                                  **params)
            description = recipe.description
        model = models.zoo.build(args.arch, num_classes=split.train.num_classes, seed=args.seed)
        models.fit(model, train, epochs=args.epochs, seed=args.seed, val=split.validation,
                   progress=False)
        on_train = models.evaluate(model, train)
        on_test = models.evaluate(model, split.test)
        rows.append({"bug": kind, "params": str(params), "label train acc":
                     f"{on_train.per_label[args.label]:.1%}", "label test acc":
                     f"{on_test.per_label[args.label]:.1%}", "model test acc":
                     f"{on_test.accuracy:.1%}", "seconds": round(time.perf_counter() - start, 1),
                     "recipe": description})
        print(rows[-1], flush=True)
    text = (f"# Bug severity ({args.arch} on {args.dataset}, label {args.label})\n\n"
            f"Produced by `python -m bench.bug_severity --dataset {args.dataset} "
            f"--arch {args.arch} --label {args.label} --epochs {args.epochs} --seed "
            f"{args.seed}`: MODE protocol split (30 % train, 10 % validation for early "
            f"stopping, 10 % test), up to {args.epochs} epochs.\n\n" + markdown_table(rows))
    write_text(OUT, text)
    print(text)


if __name__ == "__main__":
    main()
