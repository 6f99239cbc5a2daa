# Two entry points a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser libraries the web app serves (bpmn-js, htmx), pinned in package-lock.json.
NODE_STAMP := node_modules/.installed

.PHONY: demo serve test check install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# npm ci installs exactly package-lock.json; without npm the app still runs, minus diagrams.
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else \
		echo "npm not found: skipping bpmn-js and htmx (the web app's diagrams and in-place" \
		     "actions need them; install Node.js and run make install again)"; \
	fi

install: $(STAMP) $(NODE_STAMP)

demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/accord demo

# The web app over the demo run, plus a few live cases to work on (demo users are created and
# their passwords printed on the first start). Open http://127.0.0.1:8080/
serve: $(STAMP) $(NODE_STAMP)
	test -f demo.db || $(BIN)/accord demo
	$(BIN)/accord start examples/client-onboarding.yaml --db demo.db --count 12 \
		--prefix live-$$(date +%s) \
		--data '{"client": "Acme Ltd", "amount": 12000, "risk": "medium"}'
	$(BIN)/accord serve --db demo.db --process examples/client-onboarding.yaml --seed-demo

check: $(STAMP)
	./scripts/check

test: $(STAMP) $(NODE_STAMP)
	./scripts/check
	./scripts/test

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/choreo.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
