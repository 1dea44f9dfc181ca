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

.PHONY: install install-lowest test test-lowest demo bench clean

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
	$(BIN)/python -m pytest test --durations=10

# The dependency resolution check (test_dependencies.py) already ran in `make test`.
test-lowest: install-lowest
	$(BIN_LOWEST)/python -m pytest test -m "not dds" --ignore=test/test_dependencies.py --durations=10

demo: install
	$(BIN)/topreward-make-test-model $(OUT)/tiny-model
	$(BIN)/topreward-make-sample-video $(OUT)/sample.mp4
	$(BIN)/topreward-demo $(OUT)/sample.mp4 --task "put the red block in the bowl" \
		--model $(OUT)/tiny-model --output $(OUT)/demo
	@echo "NOTE: the tiny test model has random weights, so these scores are meaningless."
	@echo "      For real rewards pass --model Qwen/Qwen3-VL-2B-Instruct (or a local copy of it)."

bench: install
	$(BIN)/python bench/stream_bench.py --shape small --json $(OUT)/bench-small.json

clean:
	rm -rf $(OUT) build *.egg-info
