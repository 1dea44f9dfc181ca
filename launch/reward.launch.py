"""Start the TOPReward node:  ros2 launch topreward_ros reward.launch.py task:="put the cup in the sink"

Parameters come from params_file (default: the package's config/reward.yaml); each launch
argument below that is given overrides the parameter of the same name. image_topics and
transport take a YAML list ("[/cam_left/image_raw, /cam_right/image_raw]") or one name.
"""

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "topreward_ros"
EXECUTABLE = "reward_node"
NODE_NAME = "topreward"

# Launch argument -> node parameter of the same name. Empty means "as in params_file".
PARAMETER_ARGUMENTS = {
    "model": "hub id or checkpoint directory of the Qwen3-VL model",
    "quantization": "auto (4bit on a CUDA GPU, none on the CPU) | none | 4bit | 8bit",
    "task": "instruction the robot is given (with none the node waits for one on ~/task)",
    "image_topics": "camera topic, or a YAML list of topics",
    "transport": "raw | compressed, or a YAML list (one per topic)",
    "sample_fps": "frames per second scored",
}
LIST_ARGUMENTS = ("image_topics", "transport")
FLOAT_ARGUMENTS = ("sample_fps",)


def parameter_overrides(context) -> dict:
    """The launch arguments that were given, typed as the node declares them."""
    overrides = {}
    for name in PARAMETER_ARGUMENTS:
        text = LaunchConfiguration(name).perform(context)
        if text == "":
            continue
        if name in LIST_ARGUMENTS:
            value = yaml.safe_load(text)
            overrides[name] = [str(v) for v in value] if isinstance(value, list) else [text]
        elif name in FLOAT_ARGUMENTS:
            overrides[name] = float(text)
        else:
            overrides[name] = text
    overrides["use_sim_time"] = LaunchConfiguration("use_sim_time").perform(context).lower() in ("true", "1")
    return overrides


def reward_node(context):
    return [Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=LaunchConfiguration("namespace").perform(context),
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("params_file").perform(context), parameter_overrides(context)],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level").perform(context)],
    )]


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory(PACKAGE), "config", "reward.yaml")
    arguments = [DeclareLaunchArgument(name, default_value="", description=f"{text}; empty: as in params_file")
                 for name, text in PARAMETER_ARGUMENTS.items()]
    arguments += [
        DeclareLaunchArgument("namespace", default_value="", description="ROS namespace of the node: its topics "
                              "and services (~/reward, ~/reset, ...) move under it, e.g. /robot1"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="node parameters (YAML)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=reward_node)])
