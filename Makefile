# The workbook's commands. `make run` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Jupyter kernels, compose and hadolint must come from the venv.
export PATH := $(BIN):$(PATH)
WB := $(BIN)/python -m workbook

.PHONY: help install engine bases wheelhouse setup run test test-fast test-engine bench lab labs notebooks clean doctor bundle load

help:
	@echo "make run    set up, then execute every notebook into build/executed/ (report: build/report.md; NB=path for one)"
	@echo "make test   set up, then unit tests + nbval over notebooks/ and solutions/ (the whole suite)"
	@echo "make test-fast    the tests that need no Docker engine (API, manifests, labs, notebooks' shape)"
	@echo "make test-engine  set up, then every test but the slow tier (ladder, stacks, Swarm, browser)"
	@echo "make bench  set up, then run the measuring lessons (04, 08, 11's scoreboard); figures in build/bench/"
	@echo "make lab    set up, then open JupyterLab"
	@echo "make labs   regenerate the learner's labs/ from solutions/"
	@echo "make bundle write the classroom kit (images + wheelhouse) to build/bundle/ (BUNDLE=path)"
	@echo "make load   load and verify a classroom kit on a machine with no network (BUNDLE=path)"
	@echo "make clean  remove every Docker resource labelled 'workbook' (and nothing else)"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "Cannot create a virtual environment: on Debian/Ubuntu run 'apt-get install python3-venv'." >&2; exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

engine: install
	$(WB) engine

bases: wheelhouse
	$(WB) bases

wheelhouse: engine
	$(WB) wheelhouse

setup: engine wheelhouse bases

# A rebuilt tag leaves its old image untagged ("dangling"): drop ours after a run, or a
# machine that runs the workbook often fills its disk (53 GB on the reference machine).
PRUNE := docker image prune --force --filter label=workbook >/dev/null 2>&1 || true

run: setup
	@status=0; $(WB) run $(NB) || status=$$?; $(PRUNE); exit $$status

# The whole suite, in three parts (tests/conftest.py says which test goes where): JOBS processes
# run Swarm's tests beside those that use no user-defined network, then the other tests but the
# ones marked `solo`, which then run alone (timings, hygiene). WORKBOOK_SINCE hands what existed
# before the first part to the last one's hygiene checks.
JOBS ?= 2
SINCE := build/test-since.json
PARALLEL := $(BIN)/pytest -n $(JOBS) --dist loadgroup --no-loadscope-reorder
test: setup
	$(WB) ladder  # built once, before two processes use it
	@rm -f $(SINCE); status=0; export WORKBOOK_SINCE=$(SINCE); \
	echo "== Swarm, beside the tests that use no user-defined network =="; \
	$(PARALLEL) -m "not solo and not networks" || status=$$?; \
	if [ $$status -le 1 ]; then \
	  echo "== the other tests, two at a time =="; \
	  $(PARALLEL) -m "networks and not solo" || { s=$$?; [ $$status -ne 0 ] || status=$$s; }; \
	fi; \
	if [ $$status -le 1 ]; then \
	  echo "== the tests that run alone (timings, then the hygiene checks) =="; \
	  $(BIN)/pytest -m solo || { s=$$?; [ $$status -ne 0 ] || status=$$s; }; \
	fi; rm -f $(SINCE); $(PRUNE); exit $$status

# The tiers (tests/conftest.py marks them from the fixtures a test uses): no engine needed,
# then the engine without the slow tier. `make test` above is always the whole suite.
test-fast: install
	$(BIN)/pytest -m "not engine and not slow" tests

test-engine: setup
	$(BIN)/pytest -m "not slow"

bench: setup
	$(WB) bench

# Root (a classroom VM, a container) must say --allow-root; nobody else gets it.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: setup
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR) $(LAB_ROOT) $(LAB_ARGS)

# The learner's labs/ are generated from solutions/ (tests/test_labs.py checks they are current).
labs: install
	$(WB) labs

# Re-execute committed notebooks in place after changing their code (maintainers).
notebooks: setup
	$(WB) execute $(or $(NB),$(wildcard notebooks/*.ipynb solutions/*.ipynb))

# The classroom kit: one tar to copy from a USB stick; `make load` restores and verifies it.
bundle: setup
	$(WB) bundle $(if $(BUNDLE),--out $(BUNDLE))

load: install
	$(WB) load $(BUNDLE)

doctor: install
	$(WB) doctor

clean: install
	$(WB) clean
