"""RewardClient over real DDS (the tests marked dds): against the node playing a bag with topreward-replay, the
update it gives for a stamp is the one topreward-eval-bag scores for the same frames; an episode reset between two
stamps is reported; a stamp the node never reaches is a timeout that names what was seen. One node and one replay
serve those tests. The README's learner loop uses the client's names."""

import ast
import dataclasses
import os
import re
from collections import deque

import pytest

from dds import DISCOVERY_TIMEOUT, ros_environment
from test_readme import README, text
from test_replay_and_calibrate import MARKER, bag, node_playing, offline_curves  # noqa: F401 - bag is a fixture
from topreward_ros.errors import TopRewardError
from topreward_ros.stream.update import RewardUpdate

CLIENT = README.parent / "topreward_ros" / "ros" / "reward_client.py"

FAR_AHEAD = 1000.0   # s past the bag's last frame: a stamp no update covers
SHORT_TIMEOUT = 0.5  # s the client waits for that stamp


@pytest.fixture(scope="module")
def offline(bag, tiny_model_dir, tmp_path_factory):  # noqa: F811 - the imported fixture
    """topreward-eval-bag's updates, one per sampled frame, in stamp order over the bag's two episodes."""
    curves = offline_curves(bag, tiny_model_dir, tmp_path_factory.mktemp("offline"))
    return [dict(episode=e, stamp=stamp, score=c["curve"][i], reward=c["reward"][i], progress=c["causal_progress"][i],
                 success=c["success"][i], frames=c["prefix_lengths"][i])
            for e, c in enumerate(curves) for i, stamp in enumerate(c["prefix_stamps"])]


@pytest.fixture(scope="module")
def session(bag, tiny_model_dir, offline, tmp_path_factory):  # noqa: F811 - the imported fixture
    """What the client answered while the node played the bag: for every sampled stamp and every midpoint between
    two (in order), then the timeout for a stamp far ahead, and the episode a reset started. The processes stop
    before any test runs (every test's end stops what is left running)."""
    os.environ.update(ros_environment())
    from topreward_ros.ros import RewardClient, RewardTimeout

    stamps = [point["stamp"] for point in offline]
    asked = sorted(stamps + [(a + b) / 2 for a, b in zip(stamps, stamps[1:])])
    with RewardClient("/topreward") as client, \
            node_playing(tmp_path_factory.mktemp("live"), tiny_model_dir, bag, "--marker-topic", MARKER,
                         "--drain", "0") as replay:
        client.wait_until_ready(DISCOVERY_TIMEOUT)
        answers = [client.reward_at(stamp, DISCOVERY_TIMEOUT) for stamp in asked]
        with pytest.raises(RewardTimeout) as timeout:
            client.reward_at(stamps[-1] + FAR_AHEAD, SHORT_TIMEOUT)
        assert replay.popen.wait(DISCOVERY_TIMEOUT) == 0, replay.output()  # all played: the reset discards nothing
        reset_episode = client.reset(answers[-1].update.task)
    return answers, str(timeout.value), reset_episode


@pytest.mark.dds  # starts ROS 2 processes and talks over DDS
def test_the_client_answers_a_stamp_with_eval_bags_update_of_its_interval(offline, session):
    answers, _, _ = session
    for answer in answers:
        update = answer.update
        index = next(i for i, point in enumerate(offline) if point["stamp"] == pytest.approx(update.stamp, abs=1e-6))
        expected = offline[index]
        assert (update.score, update.reward, update.progress) == pytest.approx(
            (expected["score"], expected["reward"], expected["progress"]), abs=1e-4)
        assert (update.success, update.frames) == (expected["success"], expected["frames"])
        # The covering update: the first stamped at or after the stamp; the frames it adds came after the
        # previous update (a slow model may merge several into one).
        assert answer.stamp <= update.stamp
        assert index - update.added < 0 or offline[index - update.added]["stamp"] < answer.stamp


@pytest.mark.dds  # starts ROS 2 processes and talks over DDS
def test_stamps_in_one_sampling_interval_share_an_update_and_a_reset_between_stamps_is_reported(offline, session):
    answers, _, reset_episode = session
    sampled = {point["stamp"] for point in offline}
    for before, answer in zip(answers, answers[1:]):
        if answer.stamp in sampled and before.stamp not in sampled:  # a sampled stamp after the midpoint before it
            assert answer.repeated and answer.update == before.update
    # The replay resets the node at the second episode's marker: the first stamp after the first episode's last
    # frame is answered from the new episode, and only that answer reports it.
    first_episode_ends = max(point["stamp"] for point in offline if point["episode"] == 0)
    after = [answer for answer in answers if answer.stamp > first_episode_ends]
    assert [answer.stamp for answer in answers if answer.new_episode] == [after[0].stamp]
    assert len({answer.update.episode for answer in after}) == 1
    assert {answer.update.episode for answer in answers[:-len(after)]} == {after[0].update.episode - 1}
    assert reset_episode == answers[-1].update.episode + 1  # the same task: the reset alone starts an episode


@pytest.mark.dds  # starts ROS 2 processes and talks over DDS
def test_a_stamp_no_update_covers_is_a_timeout_naming_the_stamp_and_what_was_seen(offline, session):
    _, timeout, _ = session
    last = offline[-1]["stamp"]
    assert f"stamp {last + FAR_AHEAD:.6f}" in timeout and f"within {SHORT_TIMEOUT:g} s" in timeout
    assert "last seen: episode" in timeout and f"stamp {last:.6f}" in timeout
    assert "\n" not in timeout


def test_the_readmes_learner_loop_compiles_and_uses_the_clients_names():
    """Without ROS (the lowest dependency set has none): the names are read from the client's source."""
    block = re.search(r"### Rewards by stamp for a learner.*?```python\n(.*?)```", text(README), re.DOTALL).group(1)
    tree = ast.parse(block)
    classes = {node.name: node for node in ast.parse(CLIENT.read_text()).body if isinstance(node, ast.ClassDef)}

    def members(name: str) -> set[str]:
        return {node.name if isinstance(node, ast.FunctionDef) else node.target.id
                for node in classes[name].body if isinstance(node, (ast.FunctionDef, ast.AnnAssign))}

    owners = {"rewards": members("RewardClient"), "answer": members("TransitionReward")}
    used = [(node.value.id, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in owners]
    assert {owner for owner, _ in used} == set(owners)
    assert all(attr in owners[owner] for owner, attr in used), used
    fields = {field.name for field in dataclasses.fields(RewardUpdate)}
    assert all(node.attr in fields for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Attribute) and node.value.attr == "update")
    imported = [alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert imported and set(imported) <= set(classes)


def test_a_stamp_before_every_update_received_is_answered_only_from_the_first_update_of_an_episode():
    """A client that joined mid-episode (transient local hands it the node's last updates) cannot know which
    update covers an older stamp; one whose oldest update starts its episode can. No DDS: the answer rule alone,
    on a client object holding received updates."""
    from topreward_ros.ros.reward_client import RewardClient

    def update(stamp: float, frames: int) -> RewardUpdate:
        return RewardUpdate(episode=3, task="t", stamp=stamp, time=stamp - 10.0, reward=0.0, score=-1.0, progress=0.0,
                            success=False, true_logprobs=(-1.0,), false_logprobs=(-2.0,), frames=frames, stride=1,
                            added=1, skipped=0, latency_ms=1.0)

    client = object.__new__(RewardClient)  # the rule needs no ROS node
    client._error, client._received = None, 2
    client._updates = deque([update(10.0, 1), update(10.5, 2)])
    assert client._covering(9.0).stamp == 10.0 and client._covering(10.2).stamp == 10.5
    assert client._covering(11.0) is None  # not scored yet
    client._updates = deque([update(10.5, 2), update(11.0, 3)])
    with pytest.raises(TopRewardError, match=r"stamp 10\.200000 is older than the first update this client "
                                             r"received \(episode 3, stamp 10\.500000\)"):
        client._covering(10.2)
    assert client._covering(10.7).stamp == 11.0
