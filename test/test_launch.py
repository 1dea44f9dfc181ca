"""launch/reward.launch.py, config/reward.yaml, setup.py and the node's parameter table agree."""

import re
from pathlib import Path

import pytest
import yaml

import launch_standins
from topreward_ros.ros.parameters import PARAMETERS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "reward.yaml"


def config_parameters():
    return yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]


def test_launch_arguments_are_the_documented_ones():
    declared, _ = launch_standins.launch()
    assert set(declared) == {"model", "quantization", "task", "image_topics", "transport", "sample_fps",
                             "namespace", "params_file", "use_sim_time", "log_level"}
    names = {p.name for p in PARAMETERS}
    for name in set(declared) - {"params_file", "log_level", "use_sim_time", "namespace"}:
        assert name in names, f"launch argument {name} maps to no node parameter"
    assert all(arg.description for arg in declared.values())
    # `ros2 launch --show-args` prints each argument's default itself: the descriptions do not repeat it.
    assert not any("default" in arg.description for arg in declared.values())


def test_node_action_matches_setup_and_config():
    declared, nodes = launch_standins.launch()
    assert len(nodes) == 1
    node = nodes[0].kwargs
    setup = (ROOT / "setup.py").read_text()
    assert node["package"] == "topreward_ros"
    assert re.search(rf'"{node["executable"]} = topreward_ros\.ros\.node_main:main"', setup)
    params_file, overrides = node["parameters"]
    assert Path(params_file) == CONFIG  # the share directory's config/reward.yaml (stand-in: the repo)
    assert '"config/*.yaml"' in setup
    assert overrides == {"use_sim_time": False}  # no argument given: everything from the params file
    assert node["arguments"] == ["--ros-args", "--log-level", "info"]
    assert not node.get("remappings") and not node["namespace"]  # outputs stay where consumers look: /topreward/reward


def test_given_arguments_override_parameters_with_their_types():
    _, nodes = launch_standins.launch({
        "model": "/models/qwen", "quantization": "none", "task": "yes", "sample_fps": "5",
        "image_topics": "[/left/image_raw, /right/image_raw]", "transport": "compressed",
        "namespace": "/robot1", "use_sim_time": "true", "log_level": "debug"})
    overrides = nodes[0].kwargs["parameters"][1]
    assert overrides == {"model": "/models/qwen", "quantization": "none", "task": "yes", "sample_fps": 5.0,
                         "image_topics": ["/left/image_raw", "/right/image_raw"], "transport": ["compressed"],
                         "use_sim_time": True}
    assert nodes[0].kwargs["namespace"] == "/robot1"
    assert nodes[0].kwargs["arguments"][-1] == "debug"
    with pytest.raises(ValueError, match="not a launch argument"):
        launch_standins.launch({"modle": "typo"})


def test_command_line_is_what_launch_ros_builds(tmp_path):
    _, nodes = launch_standins.launch({"task": "open the drawer"})
    argv = launch_standins.command_line(nodes[0], "reward_node", tmp_path)
    assert argv[:4] == ["reward_node", "--ros-args", "--log-level", "info"]
    assert argv[4:7] == ["--ros-args", "-r", "__node:=topreward"]
    assert argv[7:9] == ["--params-file", str(CONFIG)]
    generated = yaml.safe_load(Path(argv[10]).read_text())
    assert generated == {"/**": {"ros__parameters": {"task": "open the drawer", "use_sim_time": False}}}


def test_config_yaml_holds_every_parameter_with_its_default_and_a_comment():
    values = config_parameters()
    assert list(values) == [p.name for p in PARAMETERS]
    for param in PARAMETERS:
        assert values[param.name] == param.default, param.name
    lines = CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"    (\w+):", line)
        if match:
            assert lines[i - 1].strip().startswith("#"), f"{match.group(1)} has no comment"


def test_defaults_respect_their_own_ranges_and_choices():
    for param in PARAMETERS:
        if param.float_range:
            assert param.float_range[0] <= param.default <= param.float_range[1], param.name
        if param.int_range:
            low, high, step = param.int_range
            assert low <= param.default <= high and (param.default - low) % step == 0, param.name
        if param.choices:
            assert param.default in param.choices, param.name


def test_readme_documents_every_parameter_and_topic():
    readme = (ROOT / "README.md").read_text()
    for param in PARAMETERS:
        assert f"| `{param.name}` |" in readme, f"README has no row for {param.name}"
    for topic in ("/topreward/reward", "/topreward/progress", "/topreward/success", "/topreward/update",
                  "/diagnostics", "~/reset", "~/task"):
        assert topic in readme
