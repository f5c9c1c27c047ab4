# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-all install summaries docs clean

# The install takes the oneDNN extra: CPU convolutions through oneDNN where it builds (x86-64
# Linux with g++), XLA's elsewhere; `make test` then checks both backends.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,onednn]'
	touch $(STAMP)

install: $(STAMP)

# The main job: train LeNet-5 on the bundled handwritten digits (CPU, no download).
run: $(STAMP)
	$(BIN)/archspec train experiments/digits_lenet.yaml

summaries: $(STAMP)
	for f in architectures/*.yaml; do $(BIN)/archspec summary $$f --depth 1 || exit 1; done

# The suite, under 10 minutes on 2 cores. Tests marked slow (two more kill points, SIGTERM
# beside SIGINT, a run with the longest names) run with test-all.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Every example output in README.md and docs/ regenerated from real runs (tools/docgen.py);
# README's results tables from the saved `archspec check --full` results in docs/results/
# (tools/results_table.py run FOLDER re-measures them).
docs: $(STAMP)
	$(BIN)/python tools/docgen.py
	$(BIN)/python tools/results_table.py write

clean:
	rm -rf $(VENV) runs .pytest_cache
