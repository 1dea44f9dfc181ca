from glob import glob

from setuptools import find_packages, setup

package_name = "topreward_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, f"{package_name}.*"]),
    package_data={f"{package_name}.method": ["prompts.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
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
            "topreward-replay = topreward_ros.ros.replay:main",
            "topreward-calibrate = topreward_ros.tools.calibrate:main",
            "topreward-annotate = topreward_ros.tools.annotate:main",
            "topreward-demo = topreward_ros.tools.demo:main",
            "topreward-play-video = topreward_ros.ros.play_video:main",
            "reward_node = topreward_ros.ros.node_main:main",
        ],
    },
)
