"""Parameter files are validated against the node schema before anything starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.graph import NODES, Topics, default_parameter_file
from alpamayo_ros.parameters import SCHEMA, ParameterError, flatten, load_parameter_file


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def packaged() -> dict:
    return yaml.safe_load(default_parameter_file().read_text())


def test_packaged_file_sets_every_declared_parameter_of_every_node() -> None:
    document = packaged()
    resolved = load_parameter_file(default_parameter_file())
    assert set(resolved) == {node.name for node in NODES} == set(SCHEMA)
    shared = document["/**"]["ros__parameters"]
    for node in NODES:
        written = set(flatten(document[node.name]["ros__parameters"])) | set(shared)
        declared = {parameter.name for parameter in SCHEMA[node.name]}
        assert declared <= written, f"{node.name}: {declared - written} only have code defaults"


def test_a_bag_replay_republishes_the_set_speed_from_the_graphs_own_topic() -> None:
    """A drive the graph recorded logged the set speed on the planner's topic: the camera
    driver's bag source looks there by default, and the packaged file says the same."""
    default = next(p for p in SCHEMA["camera_driver"] if p.name == "bag.set_speed_topic").default
    assert default == Topics.SET_SPEED
    assert load_parameter_file(default_parameter_file())["camera_driver"][
        "bag.set_speed_topic"
    ] == (Topics.SET_SPEED)


def test_node_section_overrides_wildcard(tmp_path: Path) -> None:
    document = packaged()
    document["vla_inference"]["ros__parameters"]["frame_id"] = "ego"
    resolved = load_parameter_file(write(tmp_path, document))
    assert resolved["vla_inference"]["frame_id"] == "ego"
    assert resolved["control_bridge"]["frame_id"] == "base_link"


def test_integer_accepted_for_float_parameter(tmp_path: Path) -> None:
    document = packaged()
    document["control_bridge"]["ros__parameters"]["rate_hz"] = 50
    assert load_parameter_file(write(tmp_path, document))["control_bridge"]["rate_hz"] == 50


@pytest.mark.parametrize(
    ("section", "name", "value", "message"),
    [
        (
            "vla_inference",
            "backend",
            "gpt5",
            "vla_inference.backend: unknown value 'gpt5' (known: alpamayo_r1, alpamayo1_5, "
            "constant_velocity",
        ),
        ("camera_driver", "source", "webcam9", "camera_driver.source: unknown value 'webcam9'"),
        ("camera_driver", "rate_hz", "fast", "camera_driver.rate_hz: must be of type float"),
        ("camera_driver", "rate_hz", -1.0, "camera_driver.rate_hz: must be a positive number"),
        ("camera_driver", "rate_hz", 10**400, "rate_hz: must be of type float, got an integer too"),
        ("diffusion_planner", "num_samples", 6.5, "num_samples: must be of type int"),
        ("diffusion_planner", "noise_scale", 0.0, "noise_scale: must be a positive number"),
        (
            "diffusion_planner",
            "stand_off_stop_line_clearance_m",
            2.0,
            "stand_off_stop_line_clearance_m: must be 0 (off) or at least 3.7",
        ),
        (
            "diffusion_planner",
            "stand_off_memory_s",
            1.0,
            "stand_off_memory_s: must be 0 (off) or at least 2",
        ),
        (
            "control_bridge",
            "executor",
            "multi_threaded",
            "control_bridge.executor: unknown value 'multi_threaded' (known: events, "
            "single_threaded)",
        ),
        (
            "simulator",
            "lockstep_subscriber",
            "/stack/vla_inference",
            "simulator.lockstep_subscriber: '/stack/vla_inference' is not a node name",
        ),
        ("control_bridge", "rate_hz", True, "control_bridge.rate_hz: must be of type float"),
        ("control_bridge", "wheel_base", 2.8, "control_bridge.wheel_base: unknown parameter"),
        ("vla_inference", "cameras", [], "vla_inference.cameras: must name at least one camera"),
        ("vla_inference", "cameras", "front", "vla_inference.cameras: must be a list"),
        ("vla_inference", "cameras", ["a", "a"], "names a camera twice"),
        (
            "control_bridge",
            "emergency_deceleration",
            2.0,
            "control_bridge.emergency_deceleration: 2.0 is below safe_stop_deceleration (3.0)",
        ),
        (
            "diffusion_planner",
            "stand_off_max_deceleration",
            12.0,
            "diffusion_planner.max_abs_acceleration: 9.8 is below stand_off_max_deceleration "
            "(12.0)",
        ),
        (
            "control_bridge",
            "odometry_loss_s",
            0.1,
            "control_bridge.odometry_loss_s: 0.1 is below odometry_timeout_s (0.2)",
        ),
        # A camera set between control instants would never be answered in lock-step.
        (
            "simulator",
            "rate_hz",
            15.0,
            "simulator.control_rate_hz, rate_hz: the camera period (rate_hz 15) is not a "
            "whole number of control periods (control_rate_hz 50)",
        ),
        (
            "simulator",
            "control_rate_hz",
            30.0,
            "simulator.control_rate_hz, rate_hz: control_rate_hz 30 does not divide the "
            "world's 0.1 s step",
        ),
    ],
)
def test_bad_value_is_named(
    tmp_path: Path, section: str, name: str, value: object, message: str
) -> None:
    document = packaged()
    document[section]["ros__parameters"][name] = value
    with pytest.raises(ParameterError) as error:
        load_parameter_file(write(tmp_path, document))
    assert message in str(error.value)
    assert str(tmp_path / "params.yaml") in str(error.value)


def test_wildcard_parameter_no_node_declares(tmp_path: Path) -> None:
    document = packaged()
    document["/**"]["ros__parameters"]["backnd"] = "constant_velocity"
    with pytest.raises(ParameterError, match=r"/\*\*: no node declares backnd"):
        load_parameter_file(write(tmp_path, document))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("camera_driver: [1, 2", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("planner:\n  ros__parameters: {}\n", "unknown node 'planner'"),
        ("camera_driver:\n  rate_hz: 5.0\n", "camera_driver: expected a 'ros__parameters' mapping"),
    ],
)
def test_malformed_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ParameterError) as error:
        load_parameter_file(write(tmp_path, content))
    assert message in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="parameter file not found"):
        load_parameter_file(tmp_path / "nope.yaml")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ParameterError, match=re.escape(f"{tmp_path}: cannot read the parameter file")
    ):
        load_parameter_file(tmp_path)  # a folder
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ParameterError, match=r"binary\.yaml: cannot read the parameter file"):
        load_parameter_file(binary)


def test_an_integer_beyond_64_bits_is_refused_before_a_node_sees_it(tmp_path: Path) -> None:
    """rclpy takes 2**63 for a double and the node exits; the check names it first."""
    for seed in (2**63, -(2**63) - 1):
        document = f"simulator:\n  ros__parameters:\n    seed: {seed}\n"
        with pytest.raises(ParameterError, match=r"simulator\.seed: must fit a 64-bit integer"):
            load_parameter_file(write(tmp_path, document))
    document = f"simulator:\n  ros__parameters:\n    seed: {2**63 - 1}\n"
    assert load_parameter_file(write(tmp_path, document))["simulator"]["seed"] == 2**63 - 1


def test_source_options_are_nested_under_the_source_and_checked_per_camera(
    tmp_path: Path,
) -> None:
    document = packaged()
    driver = document["camera_driver"]["ros__parameters"]
    driver["source"] = "video"
    driver["video"]["files"] = ["a.mp4", "b.mp4"]
    path = tmp_path / "video.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ParameterError, match=r"video\.files: 2 entries for 4 cameras"):
        load_parameter_file(path)
    driver["video"]["files"] = ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    driver["video"]["rate"] = 2.0
    path.write_text(yaml.safe_dump(document))
    resolved = load_parameter_file(path)["camera_driver"]
    assert resolved["video.files"][3] == "d.mp4" and resolved["video.rate"] == 2.0
    assert resolved["synthetic.seed"] == 0
