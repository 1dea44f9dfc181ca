from glob import glob

import setuptools
from setuptools import find_packages, setup

package_name = "topreward_ros"

# Supported: CPython 3.10, 3.11, 3.12 on x86_64 and aarch64 Linux, numpy 1.26 and 2.x (docs/VERSIONS.md).
# Ranges, not pins: each lower bound is the version requirements-lowest.txt tests (CI, `make test-lowest`),
# the newest set is requirements.txt (`make test`), and test/test_dependencies.py checks that these ranges
# resolve to wheels on every supported Python and platform. A bound's reason, when it is not simply the
# oldest version tested:
install_requires = [
    "torch>=2.3,<3",                      # 2.3: first wheels built against numpy 2 (runs with 1.26 and 2.x)
    "torchvision>=0.18",                  # the torchvision of torch 2.3
    "transformers>=4.57.1,<6",            # 4.57: first with Qwen3-VL (4.57.0 is not on PyPI); 6 is untested
    "tokenizers>=0.22",                   # what transformers 4.57 needs
    "accelerate>=1.0",
    "bitsandbytes>=0.46",                 # 0.46: first with aarch64 wheels; 4-bit on the CPU works
    "numpy>=1.26.4,<3",                   # 1.26: ROS 2 Humble's Python packages need numpy 1.x
    "scipy>=1.13",                        # 1.13: first built against numpy 2
    "opencv-python-headless>=4.10.0.84",  # 4.10.0.84: first built against numpy 2
    "rosbags>=0.10.10",                   # 0.10.10: first with Stores.ROS2_KILTED
    "matplotlib>=3.8.4",                  # 3.8.4: first built against numpy 2
    "tqdm>=4.66.1",
    "PyYAML>=6.0.1",                      # 6.0.1: first with CPython 3.12 wheels
    "pillow>=10.1",                       # 10.1: first with CPython 3.12 wheels
    # More runtime dependencies go here, each with the lowest tested version (and the same package
    # pinned in requirements.txt and requirements-lowest.txt).
]

# topreward-annotate (LeRobot v3 datasets, parquet tables) and its Ray actor pool: extras, which a robot
# running only the node does not need. Their floors are tested like the others (requirements-lowest.txt).
annotate_requires = [
    "pyarrow>=16.0",                      # 16.0: first built against numpy 2
    "av>=12.0",                           # PyAV: decodes AV1 (bundled dav1d), which OpenCV cannot
]
ray_requires = ["ray>=2.31"]             # 2.31: ActorPool and the actor-death errors test_annotate uses
# The Gymnasium reward wrappers (topreward_ros.rl): an extra, which the node does not need.
rl_requires = [
    "gymnasium>=1.0.0",                   # 1.0: VectorWrapper and the autoreset modes the vector wrapper handles
]
# The tests also render a pygame environment and train stable-baselines3 PPO on a wrapped one.
rl_test_requires = [
    "pygame>=2.1.3",                      # gymnasium[classic-control]'s floor; renders rgb_array headless
    "stable-baselines3>=2.4.0",           # 2.4: first that accepts gymnasium 1.0
]

# Test requirements. colcon runs pytest for an ament_python package only when pytest is declared here.
# pytest < 9: launch_testing's pytest plugin fails to load under pytest 9 in the ROS 2 releases without
# its fix (Humble has none, ros2/launch#979); >= 7.4: first with CPython 3.12 support.
tests_require = [
    "pytest>=7.4,<9",
    # 2.15: the newest with CPython 3.10 wheels (2.16 and later need 3.11); test_layers runs it on every Python
    "import-linter>=2.15",
    # test_lint: the linter and type checker, each below the next release that may add findings
    "ruff>=0.17.6,<0.18",
    "mypy>=2.4.1,<3",
    "psutil>=6.0",                        # memory checks of the node tests; 6.0: first with aarch64 wheels
] + annotate_requires + ray_requires + rl_requires + rl_test_requires  # test_annotate: a local Ray cluster
# Older colcon reads tests_require; setuptools 72 and later dropped the option (and warn about it).
legacy_options = {"tests_require": tests_require} if int(setuptools.__version__.split(".")[0]) < 72 else {}

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, f"{package_name}.*"]),
    package_data={package_name: ["py.typed"], f"{package_name}.method": ["prompts.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
    install_requires=install_requires,
    extras_require={"test": tests_require, "annotate": annotate_requires, "ray": annotate_requires + ray_requires,
                    "rl": rl_requires},
    **legacy_options,
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Operating System :: POSIX :: Linux",
    ],
    zip_safe=True,
    maintainer="topreward_ros team",
    maintainer_email="team@topreward.dev",
    description="Zero-shot dense robot rewards from a video VLM (TOPReward on Qwen3-VL) for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "topreward-make-test-model = topreward_ros.tools.make_test_model:main",
            "topreward-make-sample-video = topreward_ros.tools.make_sample_video:main",
            "topreward-eval-video = topreward_ros.tools.eval_video:main",
            "topreward-eval-bag = topreward_ros.tools.eval_bag:main",
            "topreward-make-sample-bag = topreward_ros.tools.make_sample_bag:main",
            "topreward-replay = topreward_ros.tools.replay:main",
            "topreward-calibrate = topreward_ros.tools.calibrate:main",
            "topreward-annotate = topreward_ros.tools.annotate:main",
            "topreward-demo = topreward_ros.tools.demo:main",
            "topreward-play-video = topreward_ros.tools.play_video:main",
            "reward_node = topreward_ros.ros.node_main:main",
        ],
    },
)
