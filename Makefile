# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment first (once; re-run when the requirements change).
#   ROS_FROM_SYSTEM=1  use a sourced ROS 2 install's rclpy instead of the PyPI wheels.
PYTHON ?= python3
VENV ?= .venv
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

.PHONY: install test demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-ros.txt setup.py
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt $(ROS_REQS)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

test: install
	$(BIN)/python -m pytest test

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
