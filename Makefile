# Every target works on a fresh clone: the venv is made on first need.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
ENVS    := dev staging prod

.PHONY: install render lint ruff fresh lint-workflows test demo bench clean

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

ruff: install
	$(BIN)/ruff check perfdeploy tests bench

# Rendered templates are committed: fail when they are stale.
fresh: install
	@tmp=$$(mktemp -d) && $(BIN)/perfdeploy render $(ENVS) --no-lint --out $$tmp >/dev/null \
	  && diff -r $$tmp templates_out \
	  || { echo "templates_out/ is stale: run 'make render' and commit"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp

# The GitHub workflows users of perfdeploy run: schema (SchemaStore's, vendored by check-jsonschema), security
# (zizmor, offline), and the pre-commit config.
lint-workflows: install
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline --quiet --config .github/zizmor.yml .github/workflows
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml

test: install
	@$(MAKE) --no-print-directory ruff
	$(BIN)/pytest
	@$(MAKE) --no-print-directory fresh lint lint-workflows

demo: install
	$(BIN)/python -m perfdeploy.demo

# The peers run in virtualenvs of their own (sceptre's pins conflict with ours); one that pip cannot install
# here is reported as not installed by the bench, never given an invented figure.
PEERS   := .bench
$(PEERS)/sceptre/bin/sceptre:
	-$(PY) -m venv $(PEERS)/sceptre && $(PEERS)/sceptre/bin/pip install --quiet 'sceptre==4.7.0'
$(PEERS)/awscli/bin/aws:
	-$(PY) -m venv $(PEERS)/awscli && $(PEERS)/awscli/bin/pip install --quiet 'awscli>=1.40,<2'

# Under 10 minutes on 2 cores; writes bench/results.json and prints it against issue 17's targets.
bench: install $(PEERS)/sceptre/bin/sceptre $(PEERS)/awscli/bin/aws
	@# perfdeploy as pip installs it, bytecode compiled, like the peers: an editable install under
	@# PYTHONDONTWRITEBYTECODE=1 would compile every perfdeploy module from source on every run.
	$(BIN)/python -m compileall -q perfdeploy
	$(BIN)/python bench/render_bench.py
	$(BIN)/python bench/deploy_bench.py
	$(BIN)/python bench/schedule_bench.py
	$(BIN)/python bench/scale_bench.py
	$(BIN)/python bench/results.py

clean:
	rm -rf $(VENV) build *.egg-info
