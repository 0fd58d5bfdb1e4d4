# make run: set up .venv if needed and train the default experiment on real data.
# make test: set up .venv if needed and run the test suite.
PYTHON ?= python3
VENV ?= .venv
EXPERIMENT ?= mr_ffn
# The datasets beside this checkout (../shared/data), unless NLPDL_DATA_DIR says otherwise.
SHARED_DATA := $(abspath ../shared/data)
NLPDL_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export NLPDL_DATA_DIR

.PHONY: run test venv clean
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

run: venv
	$(VENV)/bin/nlpdl train $(EXPERIMENT)

test: venv
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
