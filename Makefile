# make run: set up .venv if needed and train the default experiment on real data.
# make test: set up .venv if needed and run the test suite.
# make bench: the speed suite against PyTorch (installs its CPU build) and word2vec against gensim.
PYTHON ?= python3
VENV ?= .venv
EXPERIMENT ?= mr_ffn
# The datasets beside this checkout (../shared/data), unless NLPDL_DATA_DIR says otherwise.
SHARED_DATA := $(abspath ../shared/data)
NLPDL_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export NLPDL_DATA_DIR

.PHONY: run test bench venv clean
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

run: venv
	$(VENV)/bin/nlpdl train $(EXPERIMENT)

# one worker per core (at most 8); a file's tests stay on one worker, which keeps each worker's jit caches warm
# (per-test distribution measured slower here)
test: venv
	$(VENV)/bin/python -m pytest -q -n auto --maxprocesses 8 --dist loadfile

# PyTorch only for the benchmarks: 2.13.0 is the CPU build this project measures against
bench: venv
	$(VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV)/bin/python benchmarks/speed.py
	$(VENV)/bin/python benchmarks/word2vec_vs_gensim.py --repeats 3 --cpu-devices 2

clean:
	rm -rf $(VENV) runs .pytest_cache
