# Two entry points for a fresh Debian machine with Python 3.11+:
#   make demo   installs what is missing, then runs `pricelens demo`
#   make test   installs what is missing, then runs the whole test suite
# Both are idempotent: what is already there is not installed again.

PYTHON ?= python3
VENV ?= .venv
DEBIAN_PACKAGES := chromium chromium-driver dataset-fashion-mnist
# The CPU-compatible torch build that pip takes from local disk on our machines; elsewhere
# pip downloads it. Override with `make TORCH_SPEC= ...` to let pip choose.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test setup system-packages lint

demo: setup
	$(VENV)/bin/pricelens demo $(DEMO_ARGS)

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

setup: system-packages $(VENV)/.installed

system-packages:
	@missing=""; \
	for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  echo "installing Debian packages:$$missing"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "pricelens needs Python 3.11+; set PYTHON=python3.11"; exit 1; }
	@# a venv made before python3-venv was installed has a python but no pip: made again
	$(VENV)/bin/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(if $(strip $(TORCH_SPEC)),$(VENV)/bin/python -m pip install -q $(TORCH_SPEC))
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $@
