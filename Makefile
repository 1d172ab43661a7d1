# rnnopt — every target sets up what it needs from nothing.
#   make test     create/refresh .venv from requirements.lock, then lint (ruff), run the unit
#                 tests and nbval (strict) over every executed chapter
#   make lint     ruff check, and ruff format --check over the package, tests, benchmarks and
#                 the chapter templates
#   make book     execute the stale chapters with papermill, then build the HTML in _build/html
#   make bench    run the benchmarks (side-by-side tables for the README)
#   make lock     re-pin requirements.lock from pyproject.toml (needs the package registries)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# One torch thread everywhere: small RNNs run fastest on one, and results are bit-identical
# only at a fixed thread count.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: venv test unit nbval book chapters html bench lint lock clean screenshot evidence

venv: $(STAMP)

# The stamp is older than the lock or the project file → the venv is stale: rebuild it.
# A venv whose interpreter no longer runs (moved, other machine) is rebuilt too.
$(STAMP): requirements.lock pyproject.toml
	@if [ -x $(PY) ] && ! $(PY) -c "import sys" >/dev/null 2>&1; then rm -rf $(VENV); fi
	@if [ ! -x $(PY) ]; then echo "== creating $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	@echo "== installing the pinned environment from requirements.lock"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

NOTEBOOKS = $(wildcard chapters/*.ipynb)
NBVAL_FLAGS = --nbval --nbval-current-env --nbval-sanitize-with chapters/nbval-sanitize.cfg \
              --nbval-cell-timeout 900

test: lint unit nbval

# The unit tests, and the examples in the optimizers' and models' docstrings.
unit: $(STAMP)
	$(PY) -m pytest -q tests --doctest-modules rnnopt/optim.py rnnopt/rnn.py rnnopt/tasks.py

# Re-executes every chapter and compares each output with the stored one.
nbval: $(STAMP)
	$(if $(NOTEBOOKS),$(PY) -m pytest -q $(NBVAL_FLAGS) $(NOTEBOOKS),@echo "no executed chapters")

book: chapters html

# Executes only the chapters whose template, parameters, text or rnnopt source changed.
chapters: $(STAMP)
	$(PY) -m rnnopt.book

html: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

bench: $(STAMP)
	$(PY) benchmarks/bench_rnn.py --markdown
	$(PY) benchmarks/bench_optim.py --markdown
	$(PY) benchmarks/bench_sweep.py --markdown

# The lint rules and the formatting over the package, tests, benchmarks, examples and the chapter
# templates (the executed chapters are papermill's output and are not linted).
LINTED = rnnopt tests benchmarks examples chapters/_templates
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check $(LINTED)

lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -e '.[dev]'
	{ sed -n '1,3p' requirements.lock; .lockvenv/bin/pip freeze --all | grep -vE '^(-e|rnnopt|# Editable)' \
	  | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lockvenv

clean:
	rm -rf $(VENV) _build .pytest_cache .hypothesis

# The evidence tier (data/evidence/, from data/specs/evidence/ and data/registration.yaml): every
# study tuned and evaluated by rnnopt.protocol, then the experiments that are not sweeps (the step
# cost last, when nothing else runs), then the cost report. Resumable: finished runs are skipped.
# At most 40 CPU-hours from nothing (about 20 hours with 2 workers); SCHEDULER=tcp://host:8786 for Dask.
evidence: $(STAMP)
	$(PY) -m rnnopt.evidence --workers 2 $(if $(SCHEDULER),--scheduler $(SCHEDULER))
	$(PY) -m rnnopt.experiments convex-lsq surfaces ravine nonstationary cost
	$(PY) -m rnnopt.evidence --report
	$(PY) -m rnnopt.book

# The README's picture of one algorithm chapter, as headless Chromium renders it.
screenshot: html
	mkdir -p chapters/images
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
	  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
	  --window-size=1280,1600 --screenshot=chapters/images/screenshot-adam.png \
	  file://$(CURDIR)/_build/html/chapters/adam.html
