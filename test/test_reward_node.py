"""The reward node over real DDS: node, cameras and this test in separate processes.

The node runs with the command line launch_ros builds from launch/reward.launch.py and
config/reward.yaml (see launch_standins.py), on the tiny random model, on the CPU.
"""

import itertools
import time

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from std_msgs.msg import String
from std_srvs.srv import Trigger

from dds import ROOT, Listener, start_camera, start_node

pytestmark = pytest.mark.dds  # starts ROS 2 processes and talks over DDS

TASK = "put the red block in the bowl"
SAMPLE_FPS = 2.0
CONFIG = ROOT / "config" / "reward.yaml"


def set_parameter(listener, name, value):
    kind = ParameterType.PARAMETER_DOUBLE if isinstance(value, float) else ParameterType.PARAMETER_INTEGER
    field = "double_value" if isinstance(value, float) else "integer_value"
    parameter = Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))
    request = SetParameters.Request(parameters=[parameter])
    return listener.call(SetParameters, "/topreward/set_parameters", request).results[0]


def edited_config(tmp_path, old: str, new: str):
    """config/reward.yaml with one line changed, as a user's own params file."""
    assert old in CONFIG.read_text()
    params = tmp_path / "params.yaml"
    params.write_text(CONFIG.read_text().replace(old, new))
    return params


def updates_of(listener, episode):
    return [u for _, u in listener.updates if u["episode"] == episode]


def episode_heard_whole(listener) -> int:
    """Start an episode every update of which reaches ``listener``, and return its id.

    The node's outputs are volatile: DDS delivers nothing published before the listener's subscription
    and the node's publisher have matched each other, and on a busy machine that takes longer than the
    first updates of the node's first episode (CI saw an episode's first update heard with 3 frames,
    added=1). An update heard proves the match; the episode ~/reset starts after it is heard from its
    first frame on."""
    listener.wait_for(lambda s: len(s.updates) >= 1, what="a first update")
    response = listener.call(Trigger, "/topreward/reset", Trigger.Request())
    assert response.success, response.message
    return int(response.message.split()[1])


def assert_frames_are_the_episode(updates, sample_fps=SAMPLE_FPS):
    """Invariants of one episode's updates, however busy the machine: no sampled frame is lost
    (each update's frame count is the running total of the frames it and the earlier ones added),
    and frames are sampled one per 1/sample_fps slot of header-stamp time from the episode start."""
    assert updates and all(u["added"] >= 1 and u["merged"] == u["added"] - 1 for u in updates)
    assert [u["frames"] for u in updates] == list(itertools.accumulate(u["added"] for u in updates))
    assert updates[0]["time"] >= 0.0
    for update in updates:  # the newest of n frames sits in slot n - 1 or later
        assert update["time"] * sample_fps >= update["frames"] - 1 - 1e-3, update
    times = [u["time"] for u in updates]
    assert times == sorted(times)


@pytest.fixture
def listener(ros):
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def node_and_camera(tmp_path, tiny_model_dir, listener):
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, sample_fps=SAMPLE_FPS)
    camera = start_camera(tmp_path, rate=30, seconds=60, size="640x480",
                          bad=["wrong_encoding", "truncated", "empty", "wrong_step", "late_stamp"])
    yield node, camera
    camera.stop()
    assert node.stop() in (0, -15), node.output()


def test_rewards_episodes_task_and_success(node_and_camera, listener):
    node, camera = node_and_camera
    listener.wait_for(lambda s: len(s.updates) >= 2, what="reward updates")
    before = listener.updates[-1][1]["episode"]
    assert not any(s for _, s in listener.successes)  # tiny model's log P(True) ~ -6 < log 0.5

    # ~/reset starts a new episode: its updates carry the next episode id and restart at frame 1.
    response = listener.call(Trigger, "/topreward/reset", Trigger.Request())
    episode = before + 1
    assert response.success and f"episode {episode}" in response.message
    listener.wait_for(lambda s: sum(u["added"] for u in updates_of(s, episode)) >= 8, what="8 frames after the reset")
    assert all(u["episode"] in (before, episode) for _, u in listener.updates)
    ours = updates_of(listener, episode)
    assert_frames_are_the_episode(ours)
    rewards = [r for _, r in listener.rewards]
    first = rewards.index(pytest.approx(ours[0]["reward"], abs=1e-6))
    assert rewards[first:first + len(ours)] == pytest.approx([u["reward"] for u in ours], abs=1e-6)

    # A scripted threshold: success flips after success_consecutive (3) updates at or above it, then latches.
    assert set_parameter(listener, "success_threshold", -1000.0).successful
    listener.wait_for(lambda s: any(u["success"] for _, u in s.updates), what="success")
    flipped = [u for _, u in listener.updates if u["episode"] == episode]
    first_true = next(i for i, u in enumerate(flipped) if u["success"])
    assert first_true >= 2  # the streak of 3 includes updates scored before the change at most
    assert set_parameter(listener, "success_threshold", 0.0).successful
    listener.wait_for(lambda s: len(updates_of(s, episode)) >= first_true + 4, what="more updates")
    assert all(u["success"] for u in updates_of(listener, episode)[first_true:])  # latched until reset
    assert any(s for _, s in listener.successes)

    # Out-of-range values are rejected by the parameter descriptors.
    assert not set_parameter(listener, "success_consecutive", 0).successful

    # A new task on ~/task resets the episode.
    listener.publish(String, "/topreward/task", String(data="open the drawer"))
    listener.wait_for(lambda s: len(updates_of(s, episode + 1)) >= 2, what="updates after the task change")
    new = updates_of(listener, episode + 1)
    assert new[0]["task"] == "open the drawer" and new[0]["frames"] == new[0]["added"]
    assert not new[0]["success"]  # success was reset with the episode

    # Bad images were dropped and counted, while rewards kept coming; late stamps were dropped and
    # counted without starting an episode.
    listener.wait_for(lambda s: any(int(d[2]["bad_messages"]) >= 4 and int(d[2]["late_messages_dropped"]) >= 2
                                    for _, d in s.diagnostics), timeout=10, what="bad and late messages in diagnostics")
    level, message, values = listener.diagnostics[-1][1]
    assert level == 0 and "scoring episode" in message
    assert values["stamp_restarts"] == "0"
    assert values["model"] and values["device"] == "cpu" and values["quantization"] == "none"
    for key in ("device", "quantization", "update_latency_ms_median", "frames_in_episode", "frames_sampled",
                "merged_updates", "failed_updates", "frames_dropped_backlog", "last_prompt_scores"):
        assert key in values
    assert values["failed_updates"] == "0" and values["frames_dropped_backlog"] == "0"
    assert camera.popen.poll() is None and node.popen.poll() is None
    assert "dropped a message" in node.output()


def test_compressed_reliable_camera_and_corrupt_jpeg(tmp_path, tiny_model_dir, listener):
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, sample_fps=4,
                      transport="compressed", image_topics="/cam/image_raw/compressed")
    camera = start_camera(tmp_path, topic="/cam/image_raw/compressed", transport="compressed", reliable=True,
                          rate=30, seconds=40, bad=["corrupt_jpeg"])
    try:
        listener.wait_for(lambda s: len(s.updates) >= 6, what="rewards from a reliable compressed camera")
        listener.wait_for(lambda s: any(int(d[2]["bad_messages"]) >= 1 for _, d in s.diagnostics), timeout=10,
                          what="the corrupt jpeg counted")
        count = len(listener.updates)
        listener.wait_for(lambda s: len(s.updates) >= count + 3, what="rewards after the corrupt jpeg")
        assert "cannot decode compressed image" in node.output()
    finally:
        camera.stop()
        node.stop()


def test_reliable_subscription_warns_once_about_a_best_effort_camera(tmp_path, tiny_model_dir, listener):
    params = edited_config(tmp_path, 'qos_reliability: "best_effort"', 'qos_reliability: "reliable"')
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, params_file=params)
    camera = start_camera(tmp_path, rate=30, seconds=30, size="320x240")
    try:
        listener.wait_for(lambda s: any("active" == d[2]["state"] for _, d in s.diagnostics), what="active node")
        deadline = time.time() + 20
        while "set qos_reliability:=best_effort" not in node.output() and time.time() < deadline:
            time.sleep(0.2)
        assert node.output().count("set qos_reliability:=best_effort") == 1, node.output()
        assert not listener.updates  # nothing gets through an incompatible QoS
    finally:
        camera.stop()
        node.stop()


def test_configure_failure_is_one_clear_line(tmp_path, listener):
    node = start_node(tmp_path, model=tmp_path / "no-such-model", quantization="none", task=TASK)
    try:
        listener.wait_for(lambda s: any(d[0] == 2 for _, d in s.diagnostics), what="ERROR diagnostics")
        level, message, values = next(d for _, d in listener.diagnostics if d[0] == 2)
        assert "model directory not found" in message
        output = node.output()
        assert "Traceback" not in output
        assert output.count("configure failed") == 1
        assert node.popen.poll() is None  # the node stays up, unconfigured, and says why
    finally:
        node.stop()


def test_no_task_waits_and_says_so(tmp_path, tiny_model_dir, listener):
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none")
    camera = start_camera(tmp_path, rate=15, seconds=30, size="320x240")
    try:
        listener.wait_for(lambda s: any("waiting for a task" in d[1] and int(d[2]["messages_received"]) >= 30
                                        for _, d in s.diagnostics), what="waiting while frames arrive")
        assert not listener.updates
        listener.publish(String, "/topreward/task", String(data=TASK))
        listener.wait_for(lambda s: len(s.updates) >= 2, what="rewards once a task arrives")
    finally:
        camera.stop()
        node.stop()


def wait_for_diagnostics(listener, count, predicate, what):
    """Wait until ``count`` more /diagnostics messages satisfying ``predicate`` have arrived."""
    with listener.lock:
        seen = len(listener.diagnostics)
    listener.wait_for(lambda s: sum(1 for _, d in s.diagnostics[seen:] if predicate(d)) >= count, what=what)


def change_state(listener, transition_id):
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return listener.call(ChangeState, "/topreward/change_state", request).success


def get_parameter(listener, name):
    request = GetParameters.Request(names=[name])
    return listener.call(GetParameters, "/topreward/get_parameters", request).values[0]


def test_lifecycle_transitions_drive_scoring(tmp_path, tiny_model_dir, listener):
    """Every lifecycle path keeps the node scoring, driven as `ros2 lifecycle set` drives it: each
    activation starts a new episode (the frame clock restarts), a task sent while inactive applies
    from the next activation, and cleanup + configure load the model again. No update fails and
    /diagnostics stays OK throughout."""
    params = edited_config(tmp_path, "autostart: true", "autostart: false")
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, params_file=params)
    camera = start_camera(tmp_path, rate=15, seconds=90, size="320x240")

    def scores_a_new_episode(after: int, task: str) -> int:
        listener.wait_for(lambda s: any(u["episode"] > after for _, u in s.updates), what="rewards once active")
        episode = next(u["episode"] for _, u in listener.updates if u["episode"] > after)
        listener.wait_for(lambda s: len(updates_of(s, episode)) >= 3, what=f"updates of episode {episode}")
        updates = updates_of(listener, episode)
        assert_frames_are_the_episode(updates)  # its frames start at time 0: a new episode, not a resumed one
        assert {u["task"] for u in updates} == {task}
        return episode

    try:
        wait_for_diagnostics(listener, 3, lambda d: d[2]["state"] == "unconfigured", "an unconfigured node")
        assert not listener.updates  # autostart false: nothing happens on its own
        assert change_state(listener, Transition.TRANSITION_CONFIGURE)  # creates the outputs
        listener.wait_for_update_publisher()  # so that each episode is heard from its first update
        assert change_state(listener, Transition.TRANSITION_ACTIVATE)
        first = scores_a_new_episode(0, TASK)

        assert change_state(listener, Transition.TRANSITION_DEACTIVATE)  # returns once the worker has stopped
        wait_for_diagnostics(listener, 1, lambda d: d[2]["state"] == "inactive", "an inactive node")
        count = len(listener.updates)
        # a task while inactive: the parameter shows it at once, scoring uses it from the next activation
        listener.publish(String, "/topreward/task", String(data="open the drawer"))
        wait_for_diagnostics(listener, 2, lambda d: d[2]["state"] == "inactive" and d[2]["task"] == "open the drawer",
                             "the new task while inactive")
        assert get_parameter(listener, "task").string_value == "open the drawer"
        assert len(listener.updates) == count  # deactivated: no scoring
        assert change_state(listener, Transition.TRANSITION_ACTIVATE)
        second = scores_a_new_episode(first, "open the drawer")

        assert change_state(listener, Transition.TRANSITION_DEACTIVATE)
        assert change_state(listener, Transition.TRANSITION_CLEANUP)
        listener.wait_for(lambda s: s.diagnostics[-1][1][2]["state"] == "unconfigured" and
                          s.diagnostics[-1][1][2]["device"] == "", what="the model released")
        listener.wait_for_update_publisher(matched=False)  # cleanup destroyed the outputs
        assert change_state(listener, Transition.TRANSITION_CONFIGURE)  # and it loads again
        listener.wait_for_update_publisher()
        assert change_state(listener, Transition.TRANSITION_ACTIVATE)
        scores_a_new_episode(second, "open the drawer")  # episode ids go on: consumers never see one twice

        levels = [d for _, d in listener.diagnostics]
        assert all(level == 0 for level, _, _ in levels), [d for d in levels if d[0] != 0]
        assert levels[-1][2]["failed_updates"] == "0"
        assert "update failed" not in node.output() and "Traceback" not in node.output()
    finally:
        camera.stop()
        node.stop()


def test_two_cameras_are_paired_and_tiled(tmp_path, tiny_model_dir, listener):
    node = start_node(tmp_path, model=tiny_model_dir, quantization="none", task=TASK, sample_fps=2,
                      image_topics="[/left/image_raw, /right/image_raw]")
    cameras = [start_camera(tmp_path, name=side, topic=f"/{side}/image_raw", rate=30, seconds=40, size="320x240")
               for side in ("left", "right")]
    try:
        episode = episode_heard_whole(listener)
        listener.wait_for(lambda s: sum(u["added"] for u in updates_of(s, episode)) >= 4,
                          what="rewards from two cameras")
        assert_frames_are_the_episode(updates_of(listener, episode), sample_fps=2)
    finally:
        for camera in cameras:
            camera.stop()
        node.stop()
