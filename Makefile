# polygen: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test lint build check serve watch golden bench hardening venv system-deps clean

# A fresh Debian has python3 but not always venv/pip: install them when we can (root).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || sh scripts/python-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,pg]'
	@touch $@

venv: $(STAMP)

## make run: build the example inventory into out/ and serve it on 127.0.0.1:8080, rebuilding on edits
run: build
	@mkdir -p firmware  # watched: a release unpacked here later triggers a rebuild
	$(BIN)/polygen serve --watch --host $(HOST) --port $(PORT)

build: venv
	$(BIN)/polygen check
	$(BIN)/polygen build

check: venv
	$(BIN)/polygen check

serve: venv
	$(BIN)/polygen serve --host $(HOST) --port $(PORT)

watch: venv
	$(BIN)/polygen serve --watch --host $(HOST) --port $(PORT)

## make bench: build timings at 1k/10k/100k phones and a 10k-phone boot storm vs the targets; raw
## results go to bench/runs/<UTC time>/ (git-ignored), bench/RESULTS.md summarises them by hand
BENCH_SIZES ?= 1000,10000,100000
BENCH_PHONES ?= 10000
BENCH_CONCURRENCY ?= 200
ifndef BENCH_OUT
BENCH_OUT := bench/runs/$(shell date -u +%Y-%m-%dT%H%M%SZ)
endif
bench: venv
	$(BIN)/python -m bench.build_bench --sizes $(BENCH_SIZES) --out $(BENCH_OUT)
	$(BIN)/python -m bench.storm --phones $(BENCH_PHONES) --concurrency $(BENCH_CONCURRENCY) --out $(BENCH_OUT)
	@echo "raw results of this run: $(BENCH_OUT)/"

## make test: the whole suite, with the real daemons it needs (nginx, dhcpd, kea, dnsmasq) and chromium
## make lint: ruff (pyflakes, pycodestyle, isort, bugbear, no print in the package; pyproject.toml [tool.ruff])
lint: venv
	$(BIN)/ruff check .

test: venv system-deps
	$(BIN)/pytest -q

system-deps:
	sh scripts/system-deps.sh

## make golden: regenerate tests/golden/out from the example inventory (review the diff!)
golden: venv
	POLYGEN_REGEN_GOLDEN=1 $(BIN)/pytest -q tests/test_golden.py

## make hardening: kill -9 trials (build, serve), the broken-inventory corpus, 60 s of fuzzing, an upload flood and a slowloris; prints the figures
FAULT_TRIALS ?= 50
FUZZ_SECONDS ?= 60
hardening: venv
	$(BIN)/python -m bench.hardening --trials $(FAULT_TRIALS) --fuzz-seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) out .out.gens .pytest_cache .hypothesis
