# deepscope developer entry points. Everything installs into .venv; nothing is needed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned in constraints.txt (the CPU wheel of the development and CI machines);
# the library's own requirement in pyproject.toml stays loose for users.
PIP_INSTALL := $(PIP) install --disable-pip-version-check -q -c constraints.txt

# Real datasets: use ../shared/data when DEEPSCOPE_DATA is unset and that folder exists.
ifeq ($(strip $(DEEPSCOPE_DATA)),)
  ifneq ($(wildcard ../shared/data/README.md),)
    export DEEPSCOPE_DATA := $(abspath ../shared/data)
  endif
endif
# Two cores: keep BLAS/OpenMP from oversubscribing them.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export OPENBLAS_NUM_THREADS ?= 2
export MPLBACKEND ?= Agg
# OpenMP threads that spin-wait slow everything down badly when the 2 cores are shared.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test lint bench bench-train-zoo clean help

help:
	@echo "make demo   - create .venv, install deepscope, run the demo and audit its buggy model"
	@echo "              (writes report/index.html and report/audit/index.html)"
	@echo "make test   - create .venv, install with dev extras (and the peer packages the tests"
	@echo "              compare against), run ruff and the test suite"
	@echo "make bench  - run the benchmarks (slow; writes bench/results/)"

$(VENV)/.core-installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.core-installed
	$(PIP_INSTALL) -e '.[dev,binary,text,ray]'
	touch $@

$(VENV)/.baselines-installed: $(VENV)/.dev-installed
	$(PIP_INSTALL) -e '.[dev,binary,text,ray,baselines,browser]'
	touch $@

# The demo trains a buggy MNIST model (report/index.html: what the bug looks like), exports it
# with held-out and training samples, and audits it the way you audit your own model
# (report/audit/index.html).
demo: $(VENV)/.baselines-installed
	$(VENV)/bin/deepscope demo --out report --overwrite --export report/demo-model
	$(VENV)/bin/deepscope audit report/demo-model/buggy-mnist.pt \
		--data report/demo-model/heldout.npz --train-data report/demo-model/train.npz \
		--out report/audit --overwrite

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check deepscope tests bench
	$(VENV)/bin/lint-imports

# Browser-test screenshots land in report/screenshots/ (the CI artifact path).
test: $(VENV)/.baselines-installed lint
	DEEPSCOPE_SCREENSHOTS=$(CURDIR)/report/screenshots $(VENV)/bin/pytest -q

# Slow (about two hours on 2 CPU cores): trains the zoo, then runs every comparison.
bench: $(VENV)/.baselines-installed
	$(PY) -m bench.train_zoo --cifar
	$(PY) -m bench.bug_severity
	$(PY) -m bench.attacks
	$(PY) -m bench.explain_table
	$(PY) -m bench.mode_table
	$(PY) -m bench.ami_attacks
	$(PY) -m bench.ami_table

bench-train-zoo: $(VENV)/.core-installed
	$(PY) -m bench.train_zoo

clean:
	rm -rf $(VENV) report .pytest_cache .ruff_cache
