# make book: set up .venv, run every section notebook with papermill, build the HTML book.
# make test: set up .venv, run the test suite (it executes every notebook with the smoke profile).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
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

# Execute each section notebook into the book (PROFILE=smoke|cpu|paper).
# TQDM_DISABLE: progress bars are live in an interactive session but never written into the pages.
notebooks: install
	@mkdir -p book/sections results
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb (profile $(PROFILE))"; \
	  TQDM_DISABLE=1 $(BIN)/papermill "$$nb" "book/sections/$$(basename $$nb)" -k python3 --cwd notebooks \
	    -p profile $(PROFILE) || exit 1; \
	  $(BIN)/python -m poslib.pages "book/sections/$$(basename $$nb)"; \
	done

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
