# Quickstart: `make demo` then `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Machines of this project keep a verified MNIST copy beside the checkout; elsewhere the data
# layer finds the user cache or downloads into it.
ifneq ($(wildcard ../shared/data/mnist/train-images-idx3-ubyte.gz),)
export MNISTEXP_DATA_DIR ?= $(abspath ../shared/data/mnist)
endif

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/mnistexp data info
	$(BIN)/mnistexp train --config configs/baseline.yaml

lint: install
	$(BIN)/ruff check mnistexp tests benchmarks

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/epoch_time.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
