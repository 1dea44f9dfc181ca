"""Every option of every console script is checked as the command line is parsed, before any work (issue 21).

The programs are read from setup.py's console_scripts and their options from each program's
``build_parser()``: a new program or option is covered without editing this test. Each numeric
option gets nan, inf, -inf, 1e308, -1, 0 and a huge integer; each size option zero, negative and
huge sizes; each output path a file, a folder that cannot be created and an unwritable folder
(/proc and /sys, which refuse even root). Which values are valid comes from the limits each
argparse type carries. Every invalid value must end the program's own ``main`` with exit status 2
and one `error:` line, and leave nothing written. A few real subprocesses check the same exit
from the console scripts: no traceback, nothing written."""

import importlib
import importlib.util
import math
import re
from pathlib import Path

import pytest

from topreward_ros.options import Number, OutputPath, Size
from topreward_ros.tools import ROS_PROGRAMS

from test_eval_video import run_tool

ROOT = Path(__file__).resolve().parent.parent
ENTRY = re.compile(r'"([\w-]+) = ([\w.]+):main"')
NO_COMMAND_LINE = {"reward_node": "takes ROS parameters (--ros-args), checked by their descriptors' ranges"}
HUGE = str(10**30)
NUMBERS = ("nan", "inf", "-inf", "1e308", "-1", "0", HUGE)
SIZES = ("0x0", "-1x240", "320x-1", "1e308x240", "nanx240", f"{HUGE}x{HUGE}", "320")


def console_scripts() -> dict[str, str]:
    scripts = dict(ENTRY.findall((ROOT / "setup.py").read_text()))
    assert len(scripts) >= 10 and "topreward-eval-video" in scripts
    return scripts


def parsers():
    """(program, module) for every console script that parses a command line."""
    found = []
    for program, module_name in sorted(console_scripts().items()):
        if program in NO_COMMAND_LINE:
            continue
        needs_ros = module_name.startswith("topreward_ros.ros.") or \
            module_name.removeprefix("topreward_ros.tools.") in ROS_PROGRAMS
        if needs_ros and importlib.util.find_spec("rclpy") is None:
            continue  # the dependency set without ROS 2
        found.append(pytest.param(program, module_name, id=program))
    return found


def options_of(parser):
    """Each option (or positional) with the name to give it by: ``--fps``, or None for a positional."""
    for action in parser._actions:
        if action.dest == "help":
            continue
        yield (action.option_strings[-1] if action.option_strings else None), action


def valid_number(check: Number, text: str) -> bool:
    try:
        value = check.kind(text)
    except ValueError:
        return False
    return math.isfinite(value) and check.low <= value <= check.high and not (check.even and value % 2)


def valid_size(check: Size, text: str) -> bool:
    try:
        sides = [int(v) for v in text.split("x")]
    except ValueError:
        return False
    return len(sides) == 2 and all(check.low <= v <= check.high and v % check.multiple == 0 for v in sides)


def path_cases(tmp_path):
    """(path, the kinds of output path it is valid for): a file, a folder that cannot be created (under a file,
    or in /proc), an existing folder nothing can be written in (/sys)."""
    (tmp_path / "a_file").write_text("not a folder")
    return [(tmp_path / "a_file", {"file"}), (tmp_path / "a_file" / "out", set()),
            (Path("/proc/topreward-nope"), set()), (Path("/sys"), set())]


def command_line(parser, tmp_path, given=None, value=None) -> list[str]:
    """A command line the parser accepts (a value for each positional and required option; a new path for an
    output), with ``value`` given to the action ``given``."""
    positionals, options = [], []
    for name, action in options_of(parser):
        placeholder = str(tmp_path / f"new-{action.dest}") if isinstance(action.type, OutputPath) else "x"
        if name is None:
            positionals.append(value if action is given else placeholder)
        elif action is given:
            options += [name, value]
        elif action.required:
            options += [name, placeholder]
    return positionals + options


def cases(parser, tmp_path):
    """(option name, its action, value, whether the option accepts it) for every checked option of ``parser``."""
    for name, action in options_of(parser):
        label = name or action.dest
        if isinstance(action.type, Number):
            yield from ((label, action, v, valid_number(action.type, v)) for v in NUMBERS)
        elif isinstance(action.type, Size):
            yield from ((label, action, v, valid_size(action.type, v)) for v in SIZES)
        elif isinstance(action.type, OutputPath):
            for path, valid_for in path_cases(tmp_path):
                yield label, action, str(path), action.type.kind in valid_for


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.is_dir()) for p in folder.rglob("*"))


@pytest.mark.parametrize("program,module_name", parsers())
def test_every_option_refuses_bad_values_before_any_work(program, module_name, tmp_path, monkeypatch, capsys):
    module = importlib.import_module(module_name)
    parser = module.build_parser()
    assert parser.prog == program
    monkeypatch.chdir(tmp_path)  # default outputs (out/...) land here, where the snapshot sees them
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a check that let a value through must not reach the hub
    for name, action in options_of(parser):
        assert action.type not in (int, float), f"{program} {name}: a bare {action.type.__name__} has no range; " \
            "use topreward_ros.options.float_between / int_between"
    parser.parse_args(command_line(parser, tmp_path))
    checked = 0
    for label, action, value, valid in list(cases(parser, tmp_path)):
        argv = command_line(parser, tmp_path, action, value)
        if valid:
            parser.parse_args(argv)  # the limits the type carries are the ones it applies
            continue
        before = snapshot(tmp_path)
        try:
            status = module.main(argv)
        except SystemExit as exit_:  # argparse's exit
            status = exit_.code
        err = capsys.readouterr().err
        assert status == 2, f"{program} {label} {value}: exit {status}\n{err}"
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and label.lstrip("-") in errors[0], f"{program} {label} {value}:\n{err}"
        assert "Traceback" not in err
        assert snapshot(tmp_path) == before, f"{program} {label} {value} wrote files"
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("program,options,expected", [
    ("topreward-eval-video", ["clip.mp4", "--task", "t", "--fps", "1e308"],
     "argument --sample-fps/--fps: must be a number"),
    ("topreward-eval-video", ["clip.mp4", "--task", "t", "--output", "/proc/nope"], "cannot write in /proc"),
    ("topreward-eval-bag", ["bag", "--sample-fps", "1e308"], "argument --sample-fps: must be a number"),
    ("topreward-eval-bag", ["bag", "--output", "/proc/nope/report"], "cannot write in /proc"),
    ("topreward-make-sample-bag", ["bag", "--size", "0x0"], "argument --size: width and height must be"),
    ("topreward-make-sample-bag", ["bag", "--fps", "0"], "argument --fps: must be a number"),
    ("topreward-make-sample-bag", ["bag", "--progress", "nan"], "argument --progress: must be a number"),
    ("topreward-make-sample-bag", ["bag", "--seconds", "-1"], "argument --seconds: must be a number"),
    ("topreward-make-sample-bag", ["/sys/bag"], "cannot write in /sys"),
])
def test_console_scripts_exit_2_without_a_traceback(program, options, expected, tmp_path):
    result = run_tool(program, *options, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
