# Thin wrapper over CMake; see README.md. Every target that builds first makes
# sure the Debian packages it needs are installed (scripts/install-deps.sh,
# which does nothing when they already are).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all build deps test asan fuzz demo demo-stop install clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPETREL_SANITIZE=ON $(CMAKE_ARGS)

asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# libFuzzer targets of tests/fuzz/, FUZZ_SECONDS each (default 30); needs clang.
fuzz:
	sh tests/fuzz/run.sh

demo: build
	@sh scripts/demo.sh $(BUILD)

demo-stop:
	@if [ -x run/libexec/petrel ]; then run/libexec/petrel -c run/etc stop; else echo "no demo instance in run/"; fi

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
	@[ ! -x run/libexec/petrel ] || run/libexec/petrel -c run/etc stop >/dev/null 2>&1 || true
	rm -rf run
