# One command runner. Every target creates the virtual environment on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# axe-core for the accessibility checks; without npm those tests skip and say why.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $(NODE_STAMP); \
	else echo "npm not found: the accessibility (axe-core) tests will skip"; fi

## run: install, migrate the SQLite database, load the demo organisation, serve on :5000
## (another port: make run PORT=5123; emailed links then point at it too)
PORT ?= 5000
run: export BASE_URL ?= http://127.0.0.1:$(PORT)
run: $(STAMP)
	$(BIN)/feedback360 db upgrade
	$(BIN)/feedback360 demo
	$(BIN)/feedback360 serve --port $(PORT)

## test: install and run the whole suite (PostgreSQL/Redis/browser parts skip when absent)
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache .ruff_cache .mypy_cache
