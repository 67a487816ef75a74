# Set-up is part of each target: on a fresh machine `make demo` or `make test` is all it takes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

.PHONY: install demo test test-slow lint bench lock
install: $(STAMP)

demo: $(STAMP)  ## the whole pipeline on a simulated organisation, embedded
	$(BIN)/qrie demo

test: $(STAMP)  ## lint, then the suite without the slow end-to-end runs (two workers, a few minutes)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow and not browser"  # a module's tests share its fixtures, in order

test-slow: $(STAMP)  ## the end-to-end runs: state machines, qrie local up, the console in Chromium
	$(BIN)/pytest -n 2 --dist loadfile -m "slow or browser"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench.inventory

lock: $(STAMP)  ## re-pin the Lambda asset's packages (with hashes) from pyproject.toml
	$(BIN)/python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > .lock.in
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --no-header --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements-lambda.lock .lock.in
	sed -i '1i # The Lambda asset'"'"'s packages, pinned with their hashes: `make lock` regenerates it from\n# pyproject.toml'"'"'s [project].dependencies (tests/stacks checks the two agree).' requirements-lambda.lock
	rm .lock.in
