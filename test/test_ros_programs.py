"""Only the tools named in topreward_ros.tools.ROS_PROGRAMS import ROS 2 (rclpy, message packages, or the
package's ros/ layer, directly or through another tool), each of them does, and the README says which programs
need ROS 2. Read from the source (AST), so the check runs without ROS 2 installed."""

import ast
import re
from pathlib import Path

from topreward_ros.tools import ROS_PROGRAMS

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "topreward_ros" / "tools"
ROS_DISTRIBUTION = re.compile(r"rclpy|\w+_(msgs|srvs|interfaces)")  # rclpy and the ROS message packages


def imported_modules(path: Path) -> set[str]:
    """Absolute names of everything a tool module imports, anywhere in it (relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "topreward_ros.tools".rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from ..ros import replay`
    return found


def imports_ros_directly(modules: set[str]) -> bool:
    return any(ROS_DISTRIBUTION.fullmatch(name.split(".")[0]) or name == "topreward_ros.ros"
               or name.startswith("topreward_ros.ros.") for name in modules)


def tools_needing_ros() -> set[str]:
    imports = {path.stem: imported_modules(path) for path in TOOLS.glob("*.py") if path.stem != "__init__"}
    needing = {tool for tool, modules in imports.items() if imports_ros_directly(modules)}
    while True:  # a tool importing a tool that needs ROS needs it too
        more = {tool for tool, modules in imports.items()
                if any(f"topreward_ros.tools.{other}" in modules for other in needing)} - needing
        if not more:
            return needing
        needing |= more


def test_only_the_ros_programs_import_ros():
    assert tools_needing_ros() == set(ROS_PROGRAMS)


def test_the_check_sees_imports_of_rclpy_and_of_the_ros_layer(tmp_path):
    for source in ("import rclpy.node", "from std_msgs.msg import String", "from ..ros.update_listener import X",
                   "from ..ros import parameters", "def f():\n    from rclpy.node import Node\n"):
        (tmp_path / "tool.py").write_text(source)
        assert imports_ros_directly(imported_modules(tmp_path / "tool.py")), source
    (tmp_path / "tool.py").write_text("from ..sources.bags import opened_bag\nfrom .common import run\n")
    assert not imports_ros_directly(imported_modules(tmp_path / "tool.py"))


def test_the_readme_says_which_programs_need_ros():
    scripts = dict(re.findall(r'"([\w-]+) = topreward_ros\.([\w.]+):main"', (ROOT / "setup.py").read_text()))
    needing = {program for program, module in scripts.items()
               if module.startswith("ros.") or module.removeprefix("tools.") in ROS_PROGRAMS}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("**Which programs need ROS 2.**", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`([\w-]+)`", paragraph)) & set(scripts) == needing
