# make book: set up .venv, run every section notebook with papermill, build the HTML book.
# make test: set up .venv, run the test suite (it executes every notebook with the smoke profile).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
CORES ?= $(shell nproc)
# re-run a page when what decides its results changed, never for a file's time (poslib/pipeline.py)
SNAKEMAKE := PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --rerun-triggers params input code software-env
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: book notebooks html test install chromium compare clean

book: notebooks html

install: $(VENV)/.installed

# Reinstall whenever the dependencies or their pinned versions change.
$(VENV)/.installed: pyproject.toml constraints.txt
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[book,test]"
	@touch $@

# Execute the section notebooks into the book (PROFILE=smoke|cpu|paper) through the workflow in
# Snakefile: only the pages whose notebook, library code, parameters or upstream pages changed run,
# side by side within CORES (2 per page). TQDM_DISABLE: progress bars stay out of the pages.
notebooks: install
	@mkdir -p book/sections results
	$(SNAKEMAKE) --cores $(CORES) --config profile=$(PROFILE)

# Rebuild the HTML from the executed notebooks in book/ alone (no re-execution).
html: install
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book: $(CURDIR)/_build/html/index.html"

test: install chromium
	$(BIN)/python -m pytest

# Headless Chromium checks the rendered pages (Debian package).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

# Which cells of your fresh results/ moved by more than their seed sd against the committed ones.
compare: install
	$(BIN)/python -m poslib.compare results --rev HEAD

clean:
	rm -rf _build
