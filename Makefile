# The two commands a new user runs (see README.md). Each sets itself up:
# a .venv with the pinned requirements, rebuilt when requirements-dev.txt changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: test experiment layer clean

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

# A whole experiment on the embedded emulator (see local_emulator/README.md); e.g.
#   make experiment EXPERIMENT_ARGS="--template lambda-latency-single-function --time-scale 20"
experiment: $(STAMP)
	./layer/build.sh
	$(VENV)/bin/python -m local_emulator $(EXPERIMENT_ARGS)

layer:
	./layer/build.sh

clean:
	rm -rf $(VENV) dist .pytest_cache
