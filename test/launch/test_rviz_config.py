"""config/alpamayo.rviz shows what the graph publishes, in the frame it publishes it in."""

from __future__ import annotations

import yaml

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.graph import Topics
from alpamayo_ros.parameters import CAMERA_NAMESPACE, FRAME_ID
from alpamayo_ros.resources import repository_root
from alpamayo_ros.visualisation import markers

CONFIG = repository_root() / "config" / "alpamayo.rviz"


def displays() -> dict[str, dict]:
    manager = yaml.safe_load(CONFIG.read_text())["Visualization Manager"]
    return {display["Name"]: display for display in manager["Displays"]}


def test_fixed_frame_is_the_frame_outputs_are_stamped_in() -> None:
    manager = yaml.safe_load(CONFIG.read_text())["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == FRAME_ID.default


def test_every_display_names_a_topic_the_graph_publishes_with_its_qos() -> None:
    cameras = {f"{CAMERA_NAMESPACE.default}/{camera}/image_raw" for camera in CAMERA_ORDER}
    published = {Topics.MARKERS, Topics.PATH, Topics.GROUND_TRUTH} | cameras
    for name, display in displays().items():
        if "Topic" not in display:
            continue
        topic = display["Topic"]
        assert topic["Value"] in published, name
        # Cameras publish with SensorDataQoS (best effort); a reliable reader gets nothing.
        expected = "Best Effort" if topic["Value"] in cameras else "Reliable"
        assert topic["Reliability Policy"] == expected, name


def test_marker_namespaces_are_the_ones_drawn_on_each_topic() -> None:
    drawn = {
        Topics.MARKERS: {
            markers.CANDIDATES_NS,
            markers.SELECTED_NS,
            markers.REASONING_NS,
            markers.CAUSE_NS,
        },
        Topics.GROUND_TRUTH: {markers.AGENTS_NS, markers.LIGHTS_NS, markers.ROAD_NS},
    }
    arrays = [d for d in displays().values() if d["Class"].endswith("/MarkerArray")]
    assert {d["Topic"]["Value"] for d in arrays} == set(drawn)
    for display in arrays:
        assert set(display["Namespaces"]) == drawn[display["Topic"]["Value"]]
