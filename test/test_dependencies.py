"""The declared dependencies install everywhere the README says they do.

setup.py declares version ranges (install_requires, extras_require); requirements.txt locks
the newest tested set and requirements-lowest.txt the lowest one. Checked here:

* the ranges resolve to wheels for CPython 3.10, 3.11 and 3.12 on manylinux x86_64 and aarch64, and
  the lowest lock does on CPython 3.10 (the oldest supported Python; CI installs it on 3.11, and
  requirements.txt, the newest set, needs 3.11 or later): `pip install --dry-run` for another Python and
  platform, against the package registry (CI reaches it). A failure names the Python, the platform and
  the package pip could not find;
* the check can fail: an impossible requirement fails and is named;
* both locks satisfy the ranges, pin every declared package, and the lowest lock pins the lower bounds.

The ROS 2 wheels (requirements-ros.txt, ros-kilted-*, CPython 3.11/3.12 only and only for machines
without a ROS 2 install) are not part of this check.
"""

import re
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.10", "3.11", "3.12")
ARCHES = ("x86_64", "aarch64")
# pip matches each --platform tag exactly, so list every tag pip accepts on glibc 2.35 (Ubuntu 22.04 and
# JetPack 6, the oldest supported systems): manylinux_2_35 ... manylinux_2_5, the legacy aliases, and `any`
# for pure wheels. Fewer tags mislead: with only 2_28/2_27/2_24/2_17/2014, pip skips torch 2.15 (its CUDA
# libraries are manylinux_2_18 and 2_25 wheels) and quietly resolves an old torch instead.
MANYLINUX = tuple(f"manylinux_2_{minor}" for minor in range(35, 4, -1)) + ("manylinux2014", "manylinux2010",
                                                                           "manylinux1")
LOWEST_LOCK_PYTHON = "3.10"


def declared(setuptools_version: str = "80.9.0") -> dict:
    """setup()'s arguments as pip and colcon read them: setup.py run against a stand-in setuptools of the
    given version (a venv need not have setuptools; Humble's is 59.6) whose setup() records them."""
    captured = {}
    stand_in = types.ModuleType("setuptools")
    stand_in.__version__ = setuptools_version
    stand_in.setup = lambda **kwargs: captured.update(kwargs)
    stand_in.find_packages = lambda **kwargs: []
    real = sys.modules.get("setuptools")
    sys.modules["setuptools"] = stand_in
    try:
        exec(compile((ROOT / "setup.py").read_text(), str(ROOT / "setup.py"), "exec"), {"__name__": "__main__"})
    finally:
        if real is None:
            del sys.modules["setuptools"]
        else:
            sys.modules["setuptools"] = real
    return captured


def lock_lines(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line]


def lock(name: str) -> dict[str, Version]:
    pins = {}
    for line in lock_lines(name):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name}: {line} is not an exact pin"
        pins[canonical(requirement.name)] = Version(spec.version)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(setup_args: dict) -> list[str]:
    """install_requires and every extra (test, annotate, ray)."""
    extras = setup_args["extras_require"]
    return setup_args["install_requires"] + sorted({line for lines in extras.values() for line in lines})


# pip takes wheel tags and Requires-Python from --python-version/--platform, but evaluates environment
# markers (`; python_version >= "3.11"`, torch's `platform_machine == "x86_64"` CUDA libraries) for the
# Python running it. This runs pip with the marker environment of the target Python and machine.
PIP_FOR_TARGET = """
import runpy, sys
from pip._vendor.packaging import markers
python, machine = sys.argv[1:3]
native = markers.default_environment
markers.default_environment = lambda: {**native(), "python_version": python,
                                       "python_full_version": python + ".0", "platform_machine": machine}
sys.argv = ["pip", *sys.argv[3:]]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def dry_run(requirements: list[str], python: str, arch: str, tmp: Path) -> subprocess.CompletedProcess:
    platforms = [f"{tag}_{arch}" for tag in MANYLINUX] + ["any"]
    command = [sys.executable, "-c", PIP_FOR_TARGET, python, arch,
               # fast-deps reads each wheel's metadata with HTTP range requests: without it pip downloads
               # every wheel whole (torch and its CUDA libraries: gigabytes per Python and platform)
               "install", "--dry-run", "--use-feature=fast-deps", "--ignore-installed", "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp",
               *[arg for platform in platforms for arg in ("--platform", platform)],
               "--target", str(tmp / f"target-{python}-{arch}"), "--quiet", "--disable-pip-version-check",
               *requirements]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def failure(result: subprocess.CompletedProcess, python: str, arch: str, what: str) -> str:
    """One line naming the Python, the platform and the packages pip could not install, then pip's errors."""
    text = result.stdout + result.stderr
    packages = sorted(set(re.findall(r"(?:satisfies the requirement|distribution found for) ([A-Za-z0-9_.\-]+)", text))
                      | set(re.findall(r"Cannot install (.+?) because", text)))
    if re.search(r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution", text):
        packages.append("(the package registry is unreachable)")
    errors = [line for line in text.splitlines() if line.startswith("ERROR") or "requested" in line or
              "depends on" in line]
    return (f"CPython {python} ({arch}) cannot install {', '.join(packages) or 'it (see pip output)'} from {what}\n"
            + "\n".join(errors[-12:]))


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory):
    """Every dry run at once (they mostly wait on the registry): {(what, python, arch): result}."""
    tmp = tmp_path_factory.mktemp("resolve")
    ranges = requirement_lines(declared())
    jobs = {("ranges", py, arch): ranges for py in PYTHONS for arch in ARCHES}
    jobs |= {("requirements-lowest.txt", LOWEST_LOCK_PYTHON, arch): lock_lines("requirements-lowest.txt")
             for arch in ARCHES}
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {key: pool.submit(dry_run, reqs, key[1], key[2], tmp / key[0]) for key, reqs in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("python", PYTHONS)
def test_declared_ranges_resolve(resolutions, python, arch):
    result = resolutions[("ranges", python, arch)]
    assert result.returncode == 0, failure(result, python, arch, "setup.py's install_requires and extras")


@pytest.mark.parametrize("arch", ARCHES)
def test_lowest_lock_resolves_on_the_oldest_python(resolutions, arch):
    result = resolutions[("requirements-lowest.txt", LOWEST_LOCK_PYTHON, arch)]
    assert result.returncode == 0, failure(result, LOWEST_LOCK_PYTHON, arch, "requirements-lowest.txt")


def test_an_impossible_requirement_fails_and_is_named(tmp_path):
    # torch 2.15.0 has no CPython 3.10 wheel: the check must fail and say which Python and package.
    result = dry_run(["numpy>=1.26", "torch==2.15.0"], "3.10", "x86_64", tmp_path)
    assert result.returncode != 0
    message = failure(result, "3.10", "x86_64", "this test's list")
    assert message.splitlines()[0] == "CPython 3.10 (x86_64) cannot install torch from this test's list"


def test_colcon_sees_pytest_as_a_test_requirement():
    # colcon runs pytest for an ament_python package that declares it in extras_require["test"] (or, read
    # by older colcon, tests_require, which setuptools 72 and later no longer accept)
    modern, humble = declared("80.9.0"), declared("59.6.0")
    for setup_args in (modern, humble):
        assert "pytest" in [Requirement(r).name for r in setup_args["extras_require"]["test"]]
    assert "tests_require" not in modern
    assert humble["tests_require"] == humble["extras_require"]["test"]


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-lowest.txt"])
def test_locks_satisfy_the_ranges(name):
    pins = lock(name)
    setup_args = declared()
    for line in requirement_lines(setup_args):
        requirement = Requirement(line)
        package = canonical(requirement.name)
        assert package in pins, f"{name} does not pin {requirement.name}, which setup.py declares"
        assert requirement.specifier.contains(pins[package], prereleases=True), \
            f"{name} pins {requirement.name}=={pins[package]}, outside setup.py's range {requirement.specifier}"


def test_lowest_lock_pins_the_lower_bounds():
    pins = lock("requirements-lowest.txt")
    for line in requirement_lines(declared()):
        requirement = Requirement(line)
        floors = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        assert floors, f"setup.py gives {requirement.name} no lower bound"
        assert pins[canonical(requirement.name)] == floors[0], \
            f"requirements-lowest.txt pins {requirement.name}=={pins[canonical(requirement.name)]}, " \
            f"not setup.py's lower bound {floors[0]}"
