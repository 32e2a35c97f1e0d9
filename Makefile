# The two commands of this repository:
#   make demo   start the local stack and turn a sample voice note into tasks
#   make test   run the whole test suite against real emulators on 127.0.0.1
# Both create the virtual environments on first use.

PYTHON ?= python3
VENV := .venv
TOOLS_VENV := .venv-tools
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS_VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test up bench clean

$(STAMP): requirements.txt requirements-offline.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

demo: $(STAMP)
	$(VENV)/bin/python -m devstack.demo $(ARGS)

test: $(STAMP) $(TOOLS_STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

up: $(STAMP)
	$(VENV)/bin/python -m devstack up

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .devstack .pytest_cache
