# Set-up and run, on a fresh machine. torch is pinned first: on this project's
# machines torch==2.13.0 is a local CPU wheel (a plain "torch" would pull a
# multi-GB CUDA build); the package itself only asks for torch>=2.1.
PYTHON ?= python
TORCH ?= torch==2.13.0

.PHONY: demo test lint docs bench

demo:  ## the main job: every estimator vs PCA on sklearn's digits
	$(PYTHON) -m pip install -q "$(TORCH)"
	$(PYTHON) -m pip install -q -e ".[examples]"
	$(PYTHON) -m skae.demo

test:  ## install the test dependencies and run the tests
	$(PYTHON) -m pip install -q "$(TORCH)"
	$(PYTHON) -m pip install -q -e ".[test,distributed]"
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest

docs:  ## build the HTML documentation (warnings are errors; runs the example gallery)
	$(PYTHON) -m pip install -q "$(TORCH)"
	$(PYTHON) -m pip install -q -e ".[docs]"
	$(PYTHON) -m sphinx -W -b html docs docs/_build/html

bench:  ## the benchmark suite: speed vs hand-written torch, quality vs PCA (benchmarks/README.md)
	$(PYTHON) benchmarks/run.py
