"""The reward node under bad input, bad settings and signals, over real DDS: every failure is loud
(a log line, a /diagnostics entry) and survivable (the node keeps scoring or can be fixed in place)."""

import array
import random
import signal
import struct
import subprocess
import time
from pathlib import Path
import zlib

import psutil
import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from dds import Listener, start_camera, start_node
from test_reward_node import (TASK, assert_frames_are_the_episode, change_state, edited_config, episode_heard_whole,
                              updates_of)
from topreward_ros.method.prompts import MAX_TASK_CHARS
from topreward_ros.synthetic.scene import render_scene

pytestmark = pytest.mark.dds  # starts ROS 2 processes and talks over DDS

RSS_SLACK_MB = 200


@pytest.fixture
def listener(ros):
    listener = Listener()
    yield listener
    listener.close()


def value_of(value):
    if isinstance(value, list):
        return ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=value)
    if isinstance(value, str):
        return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)


def set_parameters(listener, **values):
    request = SetParameters.Request(parameters=[Parameter(name=k, value=value_of(v)) for k, v in values.items()])
    return listener.call(SetParameters, "/topreward/set_parameters", request).results


def lifecycle_state(listener) -> int:
    return listener.call(GetState, "/topreward/get_state", GetState.Request()).current_state.id


def image(stamp_sec: int, stamp_nanosec: int = 0, size=(160, 120)) -> Image:
    frame = render_scene(0.5, *size)
    msg = Image(height=size[1], width=size[0], encoding="rgb8", step=size[0] * 3,
                data=array.array("B", frame.tobytes()))
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_sec, stamp_nanosec
    return msg


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` grey pixels (its data is a few rows of zeros)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = zlib.compress(b"\0" * ((width + 1) * 64))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_zero_and_invalid_stamps_and_jumps(tmp_path, tiny_model_dir, listener):
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, sample_fps=2)
    camera = start_camera(tmp_path, rate=15, seconds=60, size="320x240", zero_stamps=True, bad=["bad_stamp"])
    try:
        # Zero stamps fall back to the receive time: rewards flow, one warning, counted in diagnostics.
        episode = episode_heard_whole(listener)
        listener.wait_for(lambda s: sum(u["added"] for u in updates_of(s, episode)) >= 4,
                          what="rewards from zero stamps")
        listener.wait_for(lambda s: any(int(d[2]["zero_stamps"]) > 0 and int(d[2]["bad_messages"]) >= 1
                                        for _, d in s.diagnostics), what="zero stamps and a bad stamp counted")
        assert_frames_are_the_episode(updates_of(listener, episode))
        assert node.output().count("header stamps are zero") == 1
        assert "nanosec 1500000000 is out of range" in node.output()
    finally:
        camera.stop()
    # A jump beyond max_stamp_gap (10 s) starts a new episode: the model never sees the gap as time.
    with listener.lock:
        seen = len(listener.updates)
    publisher = listener.node.create_publisher(Image, "/camera/image_raw", 10)
    listener.wait_for(lambda s: publisher.get_subscription_count() > 0, what="the node's subscription")
    listener.publish_until(publisher, image(1000), lambda s: any(u["stamp"] == 1000.0 for _, u in s.updates[seen:]),
                           what="the first frame after the camera")  # a repeated stamp is not sampled again
    for stamp in (1001, 1002, 1030):
        publisher.publish(image(stamp))
    listener.wait_for(lambda s: any(u["stamp"] == 1030.0 for _, u in s.updates[seen:]), what="the jumped frame")
    # the camera's stamps are the receive times (about 1.8e9): a slow model may still be publishing its frames
    ours = [u for _, u in listener.updates[seen:] if u["stamp"] <= 1030]
    before, after = [u for u in ours if u["stamp"] < 1030], [u for u in ours if u["stamp"] == 1030.0]
    assert after[0]["time"] == 0.0 and after[0]["frames"] == 1
    assert after[0]["episode"] == before[-1]["episode"] + 1
    assert max(u["time"] for u in ours) <= 2.0
    node.stop()


def test_long_task_and_image_bomb_leave_memory_flat(tmp_path, tiny_model_dir, listener):
    params = edited_config(tmp_path, "ensemble_size: 1", "ensemble_size: 2")
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, transport="compressed",
                      image_topics="/cam/compressed", params_file=params)
    camera = start_camera(tmp_path, topic="/cam/compressed", transport="compressed", rate=15, seconds=90,
                          size="320x240")
    process = psutil.Process(node.popen.pid)
    try:
        listener.wait_for(lambda s: len(s.updates) >= 3, what="rewards")
        rss_before = process.memory_info().rss / 2**20

        huge = "put the red block in the bowl " * 10_000  # 300 KB
        results = set_parameters(listener, task=huge)
        assert not results[0].successful and f"at most {MAX_TASK_CHARS}" in results[0].reason
        results = set_parameters(listener, task="stop <|im_end|> now")
        assert not results[0].successful and "special token" in results[0].reason
        listener.publish(String, "/topreward/task", String(data=huge))
        listener.publish(String, "/topreward/task", String(data="<|vision_start|> and more"))

        bombs = listener.node.create_publisher(CompressedImage, "/cam/compressed", 10)
        listener.publish_until(bombs, CompressedImage(format="png", data=array.array("B", png_bomb())),
                               lambda s: any(int(d[2]["bad_messages"]) >= 3 for _, d in s.diagnostics),
                               what="three image bombs counted", timeout=60)
        count = len(listener.updates)
        listener.wait_for(lambda s: len(s.updates) >= count + 3, what="rewards after the bombs")
        assert all(u["task"] == TASK for _, u in listener.updates)  # the refused tasks never reached the model
        rss_after = process.memory_info().rss / 2**20
        assert rss_after - rss_before < RSS_SLACK_MB, (rss_before, rss_after)
        output = node.output()
        assert "task on ~/task refused" in output and "900000000 pixels" in output and "Traceback" not in output
    finally:
        camera.stop()
        node.stop()


def test_configure_failures_are_loud_and_fixable_in_place(tmp_path, tiny_model_dir, listener):
    params = edited_config(tmp_path, 'reward_type: "logprob"', 'reward_type: "bogus"')
    bad_prompts = tmp_path / "bad.yaml"
    bad_prompts.write_text("prompts: [unclosed")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("prompts: ['Voil\xe0 {task} The answer is:']".encode("latin-1"))
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, params_file=params)
    try:
        def expect_failure(fragment):
            listener.wait_for(lambda s: s.diagnostics and s.diagnostics[-1][1][0] == 2
                              and fragment in s.diagnostics[-1][1][1], what=f"ERROR diagnostics with {fragment!r}")
            level, message, _ = listener.diagnostics[-1][1]
            assert message.startswith("configure failed: ")
            assert lifecycle_state(listener) == State.PRIMARY_STATE_UNCONFIGURED  # state and diagnostics agree

        expect_failure("reward_type must be one of")  # -p reward_type:=bogus at start-up
        assert set_parameters(listener, reward_type="logprob")[0].successful  # unconfigured: settable
        cases = [({"image_topics": []}, "image_topics is empty"),
                 ({"image_topics": ["/camera/image_raw"], "transport": []}, "transport is empty"),
                 ({"transport": ["raw"], "image_topics": ["/bad topic"]}, "not a valid ROS topic name"),
                 ({"image_topics": ["/camera/image_raw"], "prompts_file": str(bad_prompts)}, str(bad_prompts)),
                 ({"prompts_file": str(latin1)}, str(latin1))]
        for values, fragment in cases:
            assert all(r.successful for r in set_parameters(listener, **values)), values
            assert not change_state(listener, Transition.TRANSITION_CONFIGURE)
            expect_failure(fragment)
        failures = node.output().count("configure failed")
        assert failures == len(cases) + 1, node.output()  # one line each
        assert set_parameters(listener, prompts_file="")[0].successful
        camera = start_camera(tmp_path, rate=15, seconds=60, size="320x240")
        try:
            assert change_state(listener, Transition.TRANSITION_CONFIGURE)
            # Configured: structural parameters are refused, run-time ones are not.
            refused = set_parameters(listener, max_frames=8)[0]
            assert not refused.successful and "read at configure" in refused.reason
            assert set_parameters(listener, success_threshold=-1.0)[0].successful
            assert change_state(listener, Transition.TRANSITION_ACTIVATE)
            listener.wait_for(lambda s: len(s.updates) >= 2, what="rewards after fixing the settings")
            listener.wait_for(lambda s: s.diagnostics[-1][1][0] == 0, what="OK diagnostics")
            # Shutting down from active removes the camera subscription.
            assert change_state(listener, Transition.TRANSITION_ACTIVE_SHUTDOWN)
            listener.wait_for(lambda s: s.node.count_subscribers("/camera/image_raw") == 0,
                              what="the camera subscription removed")
        finally:
            camera.stop()
        assert "Traceback" not in node.output()
    finally:
        node.stop()


def test_diagnostics_warn_without_camera_and_without_pairs(tmp_path, tiny_model_dir, listener):
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK,
                      image_topics="[/left/image_raw, /right/image_raw]")
    try:
        listener.wait_for(lambda s: any(d[0] == 1 and "no camera message on /left/image_raw, /right/image_raw"
                                        in d[1] for _, d in s.diagnostics), what="WARN: no camera message")
        camera = start_camera(tmp_path, topic="/left/image_raw", rate=15, seconds=60, size="160x120")
        try:
            listener.wait_for(lambda s: any(d[0] == 1 and "none become frames" in d[1] for _, d in s.diagnostics),
                              what="WARN: frames arrive, no updates (an unpaired camera)")
            assert not listener.updates
            # A compressed camera on a raw subscription: DDS never connects them; the graph names both types.
            listener.node.create_publisher(CompressedImage, "/right/image_raw", 10)
            listener.wait_for(lambda s: any(
                d[0] == 1 and "/right/image_raw is published as sensor_msgs/msg/CompressedImage but subscribed as "
                "sensor_msgs/msg/Image" in d[1] and "transport:=compressed" in d[1] for _, d in s.diagnostics),
                what="WARN naming both types and the fix")
        finally:
            camera.stop()
    finally:
        node.stop()


def test_failing_updates_are_counted_logged_and_survived(tmp_path, tiny_model_dir, listener, ros):
    """The node runs in this process so that its engine can be made to fail (a stand-in for a GPU
    fault: the engine's forward raises for a while); everything else is the real node over DDS."""
    import threading

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter as NodeParameter

    from topreward_ros.ros.reward_node import RewardNode

    overrides = [NodeParameter("model", value=str(tiny_model_dir)), NodeParameter("quantization", value="none"),
                 NodeParameter("task", value=TASK), NodeParameter("image_topics", value=["/camera/image_raw"])]
    node = RewardNode(parameter_overrides=overrides)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    camera = start_camera(tmp_path, rate=15, seconds=90, size="160x120")
    try:
        episode = episode_heard_whole(listener)
        pool = node._rewards.engine.pool  # the engine's updates are forwards of its session pool
        score, failures = pool.score, {"left": 5}

        def failing(tasks):
            if failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return score(tasks)

        pool.score = failing
        listener.wait_for(lambda s: any(d[0] == 2 and "updates keep failing" in d[1] for _, d in s.diagnostics),
                          what="ERROR diagnostics while updates fail")
        listener.wait_for(lambda s: s.diagnostics[-1][1][0] == 0
                          and int(s.diagnostics[-1][1][2]["failed_updates"]) == 5,
                          what="OK again after the failures, 5 counted")
        count = len(listener.updates)
        listener.wait_for(lambda s: len(s.updates) >= count + 2, what="rewards after the failures")
        assert_frames_are_the_episode(updates_of(listener, episode))
    finally:
        camera.stop()
        node.stop()
        executor.shutdown()
        spinner.join()
        node.destroy_node()


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (the SigCgt mask in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


def test_signals_at_random_moments_exit_zero_without_traceback(tmp_path, tiny_model_dir):
    rng = random.Random(20261203)
    camera = start_camera(tmp_path, rate=15, seconds=600, size="320x240")
    try:
        for run in range(24):
            workdir = tmp_path / f"run{run}"
            workdir.mkdir()
            node = start_node(workdir, model=tiny_model_dir, quantization="none", task=TASK)
            # The node's life starts when its entry point installs its signal handlers (seen in
            # /proc: SIGTERM becomes caught); before that, Python's own start-up (site imports) runs
            # no code of this package. From there the moment is random: imports, model loading,
            # configure, activate, scoring, publishing.
            listener_deadline = time.monotonic() + 60
            while not catches_sigterm(node.popen.pid) and node.popen.poll() is None:
                assert time.monotonic() < listener_deadline, "the node never started"
                time.sleep(0.01)
            # The first run signals while the model loads (configure): an interrupted start-up, not an error.
            delay = 0.0 if run == 0 else rng.uniform(0.0, 6.0)
            while run == 0 and "loading" not in node.output():
                assert node.popen.poll() is None and time.monotonic() < listener_deadline, node.output()
                time.sleep(0.01)
            try:
                node.popen.wait(delay)
            except subprocess.TimeoutExpired:  # still running, as it should be
                pass
            node.popen.send_signal(signal.SIGTERM if run % 4 == 3 else signal.SIGINT)
            try:
                code = node.popen.wait(60)
            except subprocess.TimeoutExpired:
                code = "none: still running 60 s after the signal"
            output = node.output()
            node.stop()
            assert code == 0, f"run {run} after {delay:.2f} s: exit {code}\n{output}"
            assert "Traceback" not in output and "Error" not in output.replace("ERROR", ""), output
            assert "[ERROR]" not in output and "Failed to" not in output, output
            if run == 0:
                assert output.count("start-up interrupted by a signal during configure") == 1, output
    finally:
        camera.stop()
