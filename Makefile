# Every target bootstraps .venv (Python 3.10+ is all it needs) and installs the package with its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench serve clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)  ## A LlamaIndex ReActAgent analyses a CSV with our tools and downloads its chart.
	$(BIN)/python -m llama_index_tools_codeinterp.demo

test: $(STAMP)  ## The whole test suite (real kernels, real HTTP server on loopback, real agents).
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## Side-by-side benchmarks; writes benchmarks/results.md.
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
