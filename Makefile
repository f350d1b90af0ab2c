# The two commands in the README: `make demo` and `make test`. CI runs `make test` (.ci/run).
PYTHON ?= python3
# torch 2.13.0 first: a bare `torch` requirement can pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install demo browser test bench

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

test: install browser
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) benchmarks/bench_audit.py
