"""ament_python package: `colcon build` in a ROS workspace, or `pip install -e .` (make setup)."""

from glob import glob

from setuptools import find_packages, setup

from alpamayo_ros.graph import NODES
from alpamayo_ros.resources import PACKAGE

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.model": ["weights/*.safetensors"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="alpamayo_ros maintainers",
    maintainer_email="maintainers@alpamayo-ros.dev",
    description="ROS 2 node suite for reasoning vision-language-action driving models.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            *(f"{node.executable} = {node.entry_point}" for node in NODES),
            f"alpamayo-ros = {PACKAGE}.cli:main",
            # The model in a process (and Python environment) of its own: backend `worker`.
            f"alpamayo-ros-model-worker = {PACKAGE}.backends.worker_server:main",
        ],
    },
)
