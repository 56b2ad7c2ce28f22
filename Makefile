# cairn — the front door. Everything goes through CMake + Ninja.
#
#   make / make build   configure and build into build/ (programs in build/bin/)
#   make test           install deps, lint the OpenAPI spec (`make spec-lint`),
#                       build, run every native test, the ASan+UBSan core tests
#                       (build-asan/), then `make wasm-test`
#   make spec-lint      lint docs/openapi.yaml with Redocly CLI (tools/openapi-lint)
#   make wasm-test      cross-build the pure layers + tests for wasm32-wasi
#                       (build-wasm/) and run them under Node's WASI
#   make bench          build and run build/bin/cairn_bench, then `make bench-http`
#                       and `make bench-senses`
#   make bench-http     cairnd over HTTP (on SQLite; on PostgreSQL with 1 and 3
#                       nodes) vs a PostgreSQL SKIP LOCKED queue (64 agents), and
#                       restart time with 1M intents, and claim→conclude with
#                       lane budgets on vs off (bench/run-http-bench;
#                       HTTP_BENCH_ONLY=pg: the PostgreSQL part only;
#                       HTTP_BENCH_ONLY=planner: the lane budgets part only)
#   make bench-senses   the observation runtime inside cairnd: sense, reflex and
#                       chain latency, a burst of reflex firings, an idle
#                       runtime's cost to cairnd, log appends and archival
#                       (build/bin/cairn-senses-bench; ~1 min; SENSES_BENCH_ARGS)
#   make sim            run the deterministic simulator over SIM_SEEDS seeds
#                       (SIM_STEPS fault events each) on $(JOBS) processes
#   make soak           the crash test (kill -9 cairnd under concurrent writers,
#                       restart, check) over SOAK_CYCLES cycles (default 2000;
#                       `make test` runs 100); SOAK_SEED=N replays a seed
#   make run            install deps, build, start cairnd on SQLite (./cairn-data, :7400)
#   make demo           build and run the in-memory tour (build/bin/cairn-demo)
#   make format         clang-format -i every C++ file in src/ tests/ bench/ apps/
#   make format-check   fail if any of them is not formatted
#   make clean          remove build/, build-asan/ and build-wasm/

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest
CLANG_FORMAT ?= clang-format
CMAKE_FLAGS ?=

BUILD_DIR := build
ASAN_DIR := build-asan
WASM_DIR := build-wasm
FORMAT_DIRS := src tests bench apps

CTEST_ARGS := --output-on-failure -j $(JOBS)

.PHONY: all build test native-test asan-test wasm-test wasm-build bench bench-http bench-senses sim \
        soak run \
        demo deps format format-check clean spec-lint

all: build

deps:
	bash scripts/install-deps

# Configure once; afterwards Ninja re-runs CMake itself when a CMakeLists.txt
# or a globbed directory changes.
$(BUILD_DIR)/build.ninja:
	$(CMAKE) -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

$(ASAN_DIR)/build.ninja:
	$(CMAKE) -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCAIRN_SANITIZE=ON -DCAIRN_PURE_ONLY=ON $(CMAKE_FLAGS)

$(WASM_DIR)/build.ninja:
	$(CMAKE) -S . -B $(WASM_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi.cmake -DCAIRN_PURE_ONLY=ON $(CMAKE_FLAGS)

build: $(BUILD_DIR)/build.ninja
	$(CMAKE) --build $(BUILD_DIR)

test: deps
	$(MAKE) --no-print-directory spec-lint
	$(MAKE) --no-print-directory native-test
	$(MAKE) --no-print-directory asan-test
	$(MAKE) --no-print-directory wasm-test

native-test: build
	$(CTEST) --test-dir $(BUILD_DIR) $(CTEST_ARGS)

asan-test: $(ASAN_DIR)/build.ninja
	$(CMAKE) --build $(ASAN_DIR)
	ASAN_OPTIONS=$${ASAN_OPTIONS:-abort_on_error=0:detect_stack_use_after_return=1} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	  $(CTEST) --test-dir $(ASAN_DIR) $(CTEST_ARGS)

wasm-build: $(WASM_DIR)/build.ninja
	$(CMAKE) --build $(WASM_DIR)

wasm-test: wasm-build build
	$(CTEST) --test-dir $(WASM_DIR) $(CTEST_ARGS)
	@# Determinism across platforms: the demo (seeded ids, SHA-256 fact ids,
	@# every event) must print exactly the same bytes natively and on wasm32.
	@$(BUILD_DIR)/bin/cairn-demo > $(WASM_DIR)/demo-native.txt
	@node --no-warnings scripts/wasm-run.mjs $(WASM_DIR)/bin/cairn-demo.wasm > $(WASM_DIR)/demo-wasm.txt
	@cmp $(WASM_DIR)/demo-native.txt $(WASM_DIR)/demo-wasm.txt && \
	  echo "native and wasm32 demo output identical ($$(wc -c < $(WASM_DIR)/demo-wasm.txt) bytes)"
	@# The simulator: the same seeds give the same trace hashes on both.
	@$(BUILD_DIR)/bin/cairn-sim --seeds 1..100 --quiet | grep '^seed ' > $(WASM_DIR)/sim-native.txt || true
	@node --no-warnings scripts/wasm-run.mjs $(WASM_DIR)/bin/cairn-sim.wasm --seeds 1..100 --quiet \
	  | grep '^seed ' > $(WASM_DIR)/sim-wasm.txt || true
	@test "$$(wc -l < $(WASM_DIR)/sim-native.txt)" -eq 100 || { echo "cairn-sim (native) did not finish 100 seeds"; exit 1; }
	@diff $(WASM_DIR)/sim-native.txt $(WASM_DIR)/sim-wasm.txt && \
	  echo "native and wasm32 simulator trace hashes identical for 100 seeds"
	@echo "wasm32 module sizes:"; \
	for f in $(WASM_DIR)/bin/*.wasm; do \
	  [[ -e "$$f" ]] || continue; \
	  printf '  %-28s %9d bytes (%d KiB)\n' "$$(basename "$$f")" "$$(stat -c %s "$$f")" "$$(( $$(stat -c %s "$$f") / 1024 ))"; \
	done

# The OpenAPI description, linted offline by the Redocly CLI version pinned in
# tools/openapi-lint/package-lock.json (installed by scripts/install-deps spec;
# rules in tools/openapi-lint/redocly.yaml). Any problem fails the target.
# Telemetry and the update check are off: the lint never touches the network.
SPEC_LINT_DIR := tools/openapi-lint

spec-lint:
	@test -x $(SPEC_LINT_DIR)/node_modules/.bin/redocly || \
	  { echo "spec-lint: Redocly CLI not installed; run: bash scripts/install-deps spec"; exit 1; }
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	  $(SPEC_LINT_DIR)/node_modules/.bin/redocly lint --config $(SPEC_LINT_DIR)/redocly.yaml \
	  --format stylish docs/openapi.yaml

bench: build
	@test -x $(BUILD_DIR)/bin/cairn_bench || { echo "no cairn_bench yet (bench/*_bench.cc)"; exit 1; }
	$(BUILD_DIR)/bin/cairn_bench
	$(MAKE) --no-print-directory bench-http
	$(MAKE) --no-print-directory bench-senses

# End to end: the real cairnd (on SQLite; on PostgreSQL, one node and several)
# under 64 HTTP agents and a PostgreSQL queue on the server the script starts,
# side by side; restart time with 1M intents. Output also in
# build/bench-http.txt. Knobs: see bench/run-http-bench.
bench-http: build
	BUILD_DIR=$(BUILD_DIR) bench/run-http-bench

# The observation runtime inside the real cairnd (bench/senses_load.cc, see
# docs/benchmarks.md): temporary directories under BENCH_TMP (/var/tmp), output
# also in build/bench-senses.txt. SENSES_BENCH_ARGS adds options (--reps,
# --burst, --rounds, --only latency,burst, ...; listed at the top of the file).
BENCH_TMP ?= /var/tmp
bench-senses: build
	set -o pipefail; $(BUILD_DIR)/bin/cairn-senses-bench --cairnd $(BUILD_DIR)/bin/cairnd \
	  --tmp $(BENCH_TMP) $(SENSES_BENCH_ARGS) | tee $(BUILD_DIR)/bench-senses.txt

# The simulator over many seeds, split across $(JOBS) processes; each part's
# output is in build/sim/. Fails when any seed finds a violation.
SIM_SEEDS ?= 10000
SIM_STEPS ?= 5000
SIM_DIR := $(BUILD_DIR)/sim

sim: build
	@mkdir -p $(SIM_DIR) && rm -f $(SIM_DIR)/part-*.txt
	@start=$$(date +%s); per=$$(( ($(SIM_SEEDS) + $(JOBS) - 1) / $(JOBS) )); pids=(); \
	for ((j = 0; j < $(JOBS); j++)); do \
	  a=$$(( j * per + 1 )); b=$$(( (j + 1) * per < $(SIM_SEEDS) ? (j + 1) * per : $(SIM_SEEDS) )); \
	  (( a <= b )) || continue; \
	  $(BUILD_DIR)/bin/cairn-sim --seeds $$a..$$b --steps $(SIM_STEPS) --quiet > $(SIM_DIR)/part-$$j.txt & \
	  pids+=($$!); \
	done; \
	status=0; for p in "$${pids[@]}"; do wait $$p || status=1; done; \
	secs=$$(( $$(date +%s) - start )); \
	grep -h -E '^seed .* violation |^  (VIOLATION|replay:)' $(SIM_DIR)/part-*.txt | head -60 || true; \
	cat $(SIM_DIR)/part-*.txt | awk -v secs=$$secs -v steps=$(SIM_STEPS) \
	  '/^seed /{n++; s+=$$6} /^seed .* violation /{v++} END{printf "make sim: %d seeds (%d fault steps each, %d steps in all) in %d s on $(JOBS) processes: %d with violations\n", n, steps, s, secs, v}'; \
	exit $$status

# The crash test (tests/crash) over many more kill cycles than `make test`;
# a fresh data directory every 50 cycles. Prints its seed; SOAK_SEED replays one.
SOAK_CYCLES ?= 2000
SOAK_SEED ?=
soak: build
	CAIRN_CRASH_CYCLES=$(SOAK_CYCLES) CAIRN_CRASH_SEED=$(SOAK_SEED) $(BUILD_DIR)/bin/cairn_crash_tests

# The server on the embedded SQLite default (data in ./cairn-data, override
# with DATA=... LISTEN=...). It prints its URL; Ctrl-C stops it cleanly.
DATA ?= ./cairn-data
LISTEN ?= 127.0.0.1:7400
CONFIG ?=
run: deps build
	$(BUILD_DIR)/bin/cairnd --data $(DATA) --listen $(LISTEN) $(if $(CONFIG),--config $(CONFIG))

# The in-memory tour of the engine (no server).
demo: build
	$(BUILD_DIR)/bin/cairn-demo

FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.h' -o -name '*.cc' \) 2>/dev/null | sort)

format:
	@files="$(FORMAT_FILES)"; [[ -z "$$files" ]] || $(CLANG_FORMAT) -i $$files

format-check:
	@files="$(FORMAT_FILES)"; [[ -z "$$files" ]] || $(CLANG_FORMAT) --dry-run --Werror $$files
	@echo "format-check: ok"

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(WASM_DIR)
