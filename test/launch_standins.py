"""Stand-ins for the launch, launch_ros and ament_index modules, which have no PyPI wheels here.

They record what reward.launch.py declares and builds, and turn its Node into the command
line that launch_ros would run (executable, arguments, then --ros-args with the node name
and one --params-file per parameters entry, a dict written to a temporary YAML file as
launch_ros does). Where launch_ros is installed, test_launch_testing.py runs the real thing.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILE = ROOT / "launch" / "reward.launch.py"


class LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


class DeclareLaunchArgument:
    def __init__(self, name, default_value=None, description=""):
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction:
    def __init__(self, function):
        self.function = function


class LaunchDescription:
    def __init__(self, entities):
        self.entities = entities


class Node:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _module(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def load_launch_file(share_directory: Path = ROOT):
    """Import reward.launch.py against the stand-ins; returns the module."""
    stand_ins = {
        "launch": _module("launch", LaunchDescription=LaunchDescription),
        "launch.actions": _module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
                                  OpaqueFunction=OpaqueFunction),
        "launch.substitutions": _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module("launch_ros.actions", Node=Node),
        "ament_index_python": _module("ament_index_python"),
        "ament_index_python.packages": _module("ament_index_python.packages",
                                               get_package_share_directory=lambda package: str(share_directory)),
    }
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location("reward_launch", LAUNCH_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def launch(arguments: dict | None = None):
    """Evaluate the launch description with ``arguments`` as `ros2 launch` would; returns (declared, nodes)."""
    module = load_launch_file()
    description = module.generate_launch_description()
    declared = {e.name: e for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    unknown = set(arguments or {}) - set(declared)
    if unknown:
        raise ValueError(f"not a launch argument: {sorted(unknown)}")
    context = {name: arg.default_value for name, arg in declared.items()}
    context.update(arguments or {})
    nodes = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            nodes += entity.function(context)
    return declared, nodes


def command_line(node: Node, executable: str, workdir: Path) -> list[str]:
    """The argv launch_ros builds for a Node: [exe, *arguments, --ros-args, -r __node:=NAME, --params-file ...]."""
    kwargs = node.kwargs
    argv = [executable, *kwargs.get("arguments", []), "--ros-args", "-r", f"__node:={kwargs['name']}"]
    if kwargs.get("namespace"):
        argv += ["-r", f"__ns:={kwargs['namespace']}"]
    for index, entry in enumerate(kwargs.get("parameters", [])):
        if isinstance(entry, dict):
            path = workdir / f"launch_params_{index}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": entry}}))
            entry = str(path)
        argv += ["--params-file", str(entry)]
    for source, target in kwargs.get("remappings", []) or []:
        argv += ["-r", f"{source}:={target}"]
    return argv
