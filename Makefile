# Every target works on a fresh clone: the venv is made on first need.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
ENVS    := dev staging prod

.PHONY: install render lint test demo bench clean

$(BIN)/perfdeploy: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/perfdeploy

render: install
	$(BIN)/perfdeploy render $(ENVS)

lint: install
	$(BIN)/perfdeploy lint $(ENVS)

test: install
	$(BIN)/ruff check perfdeploy tests bench
	$(BIN)/pytest
	@# Rendered templates are committed: fail when they are stale.
	@tmp=$$(mktemp -d) && $(BIN)/perfdeploy render $(ENVS) --no-lint --out $$tmp >/dev/null \
	  && diff -r $$tmp templates_out \
	  || { echo "templates_out/ is stale: run 'make render' and commit"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp
	$(BIN)/perfdeploy lint $(ENVS)

demo: install
	$(BIN)/python -m perfdeploy.demo

bench: install
	$(BIN)/python bench/render_bench.py
	$(BIN)/python bench/schedule_bench.py
	$(BIN)/python bench/deploy_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
