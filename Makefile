# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment first (once; re-run when the requirements change).
#   ROS_FROM_SYSTEM=1  use a sourced ROS 2 install's rclpy instead of the PyPI wheels.
# `make test` installs exactly the lock of the newest tested set (requirements.txt); `make test-lowest`
# installs the lowest supported versions (requirements-lowest.txt) into $(VENV_LOWEST) and runs every test
# but the DDS ones. The supported ranges are in setup.py; `pip check` verifies each lock against them.
PYTHON ?= python3
VENV ?= .venv
VENV_LOWEST ?= build/venv-lowest
OUT ?= out
ROS_FROM_SYSTEM ?= 0

ifeq ($(ROS_FROM_SYSTEM),1)
VENV_FLAGS := --system-site-packages
ROS_REQS :=
else
VENV_FLAGS :=
ROS_REQS := -r requirements-ros.txt
endif

BIN := $(VENV)/bin
BIN_LOWEST := $(VENV_LOWEST)/bin

.PHONY: install install-lowest test test-lowest demo bench bench-gpu clean

install: $(VENV)/.installed

# A lock installs exactly (every declared package pinned); the project itself without dependencies, then
# `pip check` (not over a system ROS 2's site-packages, which are not ours to check).
define install_lock
	$(PYTHON) -m venv $(VENV_FLAGS) $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q -r $(2) $(ROS_REQS)
	$(1)/bin/python -m pip install -q --no-deps -e .
	$(if $(filter 1,$(ROS_FROM_SYSTEM)),,$(1)/bin/python -m pip check)
	touch $(1)/.installed
endef

$(VENV)/.installed: requirements.txt requirements-ros.txt setup.py
	$(call install_lock,$(VENV),requirements.txt)

install-lowest: $(VENV_LOWEST)/.installed

$(VENV_LOWEST)/.installed: requirements-lowest.txt requirements-ros.txt setup.py
	$(call install_lock,$(VENV_LOWEST),requirements-lowest.txt)

test: install
	$(BIN)/python -m pytest test --durations=10 --junitxml=build/test-report.xml

# The dependency resolution check (test_dependencies.py) already ran in `make test`.
test-lowest: install-lowest
	$(BIN_LOWEST)/python -m pytest test -m "not dds" --ignore=test/test_dependencies.py --durations=10 \
		--junitxml=build/test-lowest-report.xml

demo: install
	$(BIN)/topreward-make-test-model $(OUT)/tiny-model
	$(BIN)/topreward-make-sample-video $(OUT)/sample.mp4
	$(BIN)/topreward-demo $(OUT)/sample.mp4 --task "put the red block in the bowl" \
		--model $(OUT)/tiny-model --output $(OUT)/demo
	@echo "NOTE: the tiny test model has random weights, so these scores are meaningless."
	@echo "      For real rewards pass --model Qwen/Qwen3-VL-2B-Instruct (or a local copy of it)."

bench: install
	$(BIN)/python bench/stream_bench.py --shape small --json $(OUT)/bench-small.json

# The GPU figures of docs/PERFORMANCE.md: the real Qwen3-VL-2B shape (random weights) in bf16 and NF4, the
# streaming engine against recompute and batched sessions against engines in turn. On a GPU machine whose
# Python already has the dependencies (no registry access), skip the venv: make bench-gpu BENCH_PYTHON=python3
BENCH_PYTHON ?= $(BIN)/python
bench-gpu: $(if $(filter $(BIN)/python,$(BENCH_PYTHON)),install)
	$(BENCH_PYTHON) bench/pool_bench.py --shape qwen3-vl-2b --dtype bf16 --json $(OUT)/pool-2b-bf16.json
	$(BENCH_PYTHON) bench/pool_bench.py --shape qwen3-vl-2b --quantization 4bit --json $(OUT)/pool-2b-nf4.json
	$(BENCH_PYTHON) bench/stream_bench.py --shape qwen3-vl-2b --dtype bf16 --prompts 1 3 10 --json $(OUT)/bench-2b-bf16.json
	$(BENCH_PYTHON) bench/stream_bench.py --shape qwen3-vl-2b --quantization 4bit --prompts 1 3 --json $(OUT)/bench-2b-nf4.json

clean:
	rm -rf $(OUT) build *.egg-info
