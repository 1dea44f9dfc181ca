"""launch_testing run of reward.launch.py, for machines with a full ROS 2 install.

launch, launch_ros and launch_testing have no PyPI wheels, so on a venv-only machine this
module is skipped (reported as skipped, never as passed); there test_launch.py and
test_reward_node.py cover the launch file with stand-ins and the node over real DDS.
Run it with `colcon test --packages-select topreward_ros` or `launch_test test/test_launch_testing.py`.
"""

import os
import unittest

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is not installed (no ROS 2 install)")
import launch
import launch.actions
import launch_testing.actions
import launch_testing.asserts
from launch.launch_description_sources import PythonLaunchDescriptionSource

from topreward_ros.synthetic.model import write_test_model

pytestmark = pytest.mark.dds  # starts ROS 2 processes and talks over DDS

LAUNCH_FILE = os.path.join(os.path.dirname(__file__), "..", "launch", "reward.launch.py")
MODEL_DIR = "/tmp/topreward_launch_testing_model"


@pytest.mark.launch_test
def generate_test_description():
    write_test_model(MODEL_DIR)
    included = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(LAUNCH_FILE),
        launch_arguments={"model": MODEL_DIR, "quantization": "none", "task": "open the drawer"}.items())
    return launch.LaunchDescription([included, launch_testing.actions.ReadyToTest()])


class TestNodeComesUp(unittest.TestCase):
    def test_node_configures(self, proc_output):
        proc_output.assertWaitFor("configured:", timeout=120)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_exit_code(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
