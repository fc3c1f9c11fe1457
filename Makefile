# mawskit: `make demo` runs the whole pipeline on a corpus it makes itself; `make test` tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mawskit-setup
DEMO   ?= demo-out

.PHONY: setup test demo lint bench clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes or the stamp is gone.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>/dev/null || true
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m labeling.wordnet
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest tests

demo: setup
	$(BIN)/python -m curation.demo --out $(DEMO)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(DEMO) .pytest_cache build *.egg-info
