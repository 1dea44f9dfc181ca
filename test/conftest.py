"""Shared fixtures: one tiny random Qwen3-VL checkpoint per test session, built offline."""

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: a hub id must fail fast, not hang

from topreward_ros.method.config import ModelConfig
from topreward_ros.method.model import load_reward_model
from topreward_ros.synthetic.model import write_test_model

SMALL_RESOLUTION = (64, 96)  # 2x3 tokens per pair: keeps the reference recompute fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return write_test_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def reward_model(tiny_model_dir):
    return load_reward_model(ModelConfig(model=str(tiny_model_dir), device="cpu", dtype="fp32"))


@pytest.fixture(scope="session")
def random_frames():
    """24 distinct random RGB frames at 0.5 s intervals."""
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(24)]
    return frames, [0.5 * i for i in range(len(frames))]


def pytest_collection_finish(session):
    """A run whose tests use DDS claims its own domain before the first test: when none is free (see
    dds.claim_domain), the run stops here with the reason."""
    if session.items and "dds" in sys.modules:  # a collected test module talks over DDS
        try:
            sys.modules["dds"].isolated_domain()
        except sys.modules["dds"].SharedDomain as exc:
            pytest.exit(f"no isolated DDS domain: {exc}", returncode=3)


@pytest.fixture(scope="session")
def ros():
    """rclpy in this process, on this run's own DDS domain."""
    from dds import ros_environment

    os.environ.update(ros_environment())
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    yield
    dds = sys.modules.get("dds")
    if dds is not None:
        dds.Process.stop_all()


@pytest.fixture(autouse=True)
def test_process_keeps_normal_scheduling():
    """A library that moved this process to real-time scheduling (SVT-AV1 does, as root) would hand it
    to every process started later: two busy loops at SCHED_FIFO 99 then starve the suite forever."""
    yield
    policy = os.sched_getscheduler(0)
    if policy != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        pytest.fail(f"the test left the test process at scheduling policy {policy} (not SCHED_OTHER)")
