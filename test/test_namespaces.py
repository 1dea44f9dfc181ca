"""Two reward nodes in two namespaces on one DDS network, as on two robots: every name follows the
node's namespace, each node scores only its own camera, and a reset of one leaves the other alone."""

import time

import pytest
from std_srvs.srv import Trigger

from dds import Listener, start_camera, start_node
from test_reward_node import TASK

ROBOT2_STAMPS = 1_000_000.0  # robot2's camera stamps are this far ahead: its updates are recognisable


@pytest.fixture
def listeners(ros):
    listeners = {ns: Listener(node=f"/{ns}/topreward") for ns in ("robot1", "robot2")}
    yield listeners
    for listener in listeners.values():
        listener.close()


def test_two_namespaces_two_cameras(tmp_path, tiny_model_dir, listeners):
    nodes, cameras = [], []
    try:
        for ns in ("robot1", "robot2"):
            workdir = tmp_path / ns
            workdir.mkdir()
            # robot2 names its camera relative to its namespace, as a launch file for many robots would
            topic = "camera/image_raw" if ns == "robot2" else f"/{ns}/camera/image_raw"
            nodes.append(start_node(workdir, model=tiny_model_dir, quantization="none", task=TASK,
                                    namespace=f"/{ns}", image_topics=topic))
            cameras.append(start_camera(workdir, topic=f"/{ns}/camera/image_raw", rate=15, seconds=90,
                                        size="160x120", stamp_offset=ROBOT2_STAMPS if ns == "robot2" else 0.0))
        one, two = listeners["robot1"], listeners["robot2"]
        for listener in (one, two):
            listener.wait_for(lambda s: len(s.updates) >= 2, what="rewards in both namespaces")
            listener.wait_for(lambda s: bool(s.diagnostics), what="diagnostics named after the node")
        ahead = time.time() + ROBOT2_STAMPS / 2
        assert all(u["stamp"] < ahead for _, u in one.updates)   # robot1 scores only its camera
        assert all(u["stamp"] > ahead for _, u in two.updates)   # and robot2 only its own
        assert one.rewards and two.rewards
        for ns, listener in (("robot1", one), ("robot2", two)):  # diagnostics name topics as resolved
            assert listener.diagnostics[-1][1][2]["image_topics"] == f"/{ns}/camera/image_raw"

        graph = one.node.get_service_names_and_types()
        for ns in ("robot1", "robot2"):
            assert (f"/{ns}/topreward/reset", ["std_srvs/srv/Trigger"]) in graph
        shared = {"/diagnostics", "/rosout", "/parameter_events"}
        for ns in ("robot1", "robot2"):
            # each node's own names, asked of the graph by node (a process a previous test killed may
            # linger in the graph until its DDS lease ends, so the whole topic list is not asked)
            published = {name for name, _ in one.node.get_publisher_names_and_types_by_node("topreward", f"/{ns}")}
            subscribed = {name for name, _ in one.node.get_subscriber_names_and_types_by_node("topreward", f"/{ns}")}
            outputs = {f"/{ns}/topreward/{output}" for output in ("reward", "progress", "success", "update")}
            assert outputs <= published and all(name.startswith(f"/{ns}/topreward/") for name in published - shared)
            assert subscribed - shared == {f"/{ns}/topreward/task", f"/{ns}/camera/image_raw"}

        before_two = two.updates[-1][1]["episode"]
        response = one.call(Trigger, "/robot1/topreward/reset", Trigger.Request())
        assert response.success
        reset_episode = int(response.message.split()[1])
        one.wait_for(lambda s: any(u["episode"] == reset_episode for _, u in s.updates), what="robot1's new episode")
        count = len(two.updates)
        two.wait_for(lambda s: len(s.updates) >= count + 2, what="robot2 still scoring")
        assert {u["episode"] for _, u in two.updates} == {before_two}  # robot2's episode untouched
    finally:
        for process in cameras + nodes:
            process.stop()
