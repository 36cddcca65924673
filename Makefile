# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := demo

.PHONY: demo test bench synth clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/txnpipe generate --out $(DEMO)/input
	$(VENV)/bin/txnpipe run --fast \
		--transactions $(DEMO)/input/bs140513_032310.csv \
		--importance $(DEMO)/input/bsNET140513_032310.csv \
		--out $(DEMO)/out --pg-data $(DEMO)/pgdata
	$(VENV)/bin/txnpipe report --from $(DEMO)/out --out $(DEMO)/report
	@echo "Output: $(DEMO)/out (chunks/, detections/, rejects/, run.json); report: $(DEMO)/report/report.html"
	@echo "Status: $(VENV)/bin/txnpipe status --pg-data $(DEMO)/pgdata"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py

synth: $(STAMP)
	$(PY) app.py

clean:
	rm -rf $(VENV) $(DEMO) cdk.out .pytest_cache
