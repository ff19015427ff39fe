"""The camera driver process over real DDS: the odometry carries the ego pose at every
capture instant, so the VLA node finds the history of a camera set complete when its
frames arrive."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from recorded_drive import SPECS, spin_until
from sensor_msgs.msg import CameraInfo

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.graph import Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.nodes.camera_driver import CameraDriver
from alpamayo_ros.ros.conversions import stamp_ns

FRAME_SETS = 20  # 2 s at 10 Hz
ODOMETRY_PERIOD_NS = 20_000_000  # 50 Hz


@pytest.mark.parametrize(
    ("until_frame_tick_ns", "imminent"),
    [
        (None, False),  # the frame timer is cancelled: the odometry goes on alone
        (-3_000_000, True),  # overdue: the frame tick publishes the pose at its capture
        (0, True),
        (ODOMETRY_PERIOD_NS // 2 - 1, True),
        (ODOMETRY_PERIOD_NS // 2, False),
        (80_000_000, False),  # the frame tick just ran
    ],
)
def test_the_odometry_tick_leaves_a_capture_instant_to_the_frame_tick(
    until_frame_tick_ns: int | None, imminent: bool
) -> None:
    driver = SimpleNamespace(
        frame_timer=SimpleNamespace(time_until_next_call=lambda: until_frame_tick_ns),
        odometry_period_ns=ODOMETRY_PERIOD_NS,
    )
    assert CameraDriver.frame_tick_imminent(driver) is imminent  # type: ignore[arg-type]


def test_the_odometry_holds_the_pose_at_every_capture_instant(rclpy_context: Context) -> None:
    """The 50 Hz odometry timer and the 10 Hz frame timer fall on the same instant every
    fifth odometry tick; whichever runs first, the pose at the capture stamp goes out."""
    probe = Node("probe", context=rclpy_context)
    captures: set[int] = set()
    odometry: set[int] = set()
    # CameraInfo carries its Image's stamp and is cheap to receive.
    probe.create_subscription(
        CameraInfo,
        f"/sensing/camera/{CAMERA_ORDER[0]}/camera_info",
        lambda msg: captures.add(stamp_ns(msg.header.stamp)),
        qos_profile_sensor_data,
    )
    probe.create_subscription(
        Odometry,
        Topics.ODOMETRY,
        lambda msg: odometry.add(stamp_ns(msg.header.stamp)),
        QoSProfile(depth=200),
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(probe)
    try:
        with GraphProcesses(default_parameter_file(), nodes=(SPECS["camera_driver"],)) as graph:
            assert spin_until(executor, lambda: graph.check() or len(captures) > FRAME_SETS, 40.0)
    finally:
        executor.shutdown()
        probe.destroy_node()
    # The captures the odometry the probe received spans (its subscription may have matched
    # after the first ones); it is reliable and in order, so none of theirs was lost.
    checked = [stamp for stamp in captures if odometry and min(odometry) < stamp < max(odometry)]
    assert len(checked) >= FRAME_SETS // 2, (len(captures), len(odometry))
    missing = [stamp for stamp in checked if stamp not in odometry]
    assert not missing, f"{len(missing)} of {len(checked)} captures have no odometry at their stamp"


def test_a_tick_without_frames_still_publishes_the_pose_at_its_instant() -> None:
    """The odometry tick left the capture instant to the frame tick; a source that has no
    frame then (a video slower than the driver's rate) must not leave a gap there."""
    published: list[int] = []
    driver = SimpleNamespace(
        source=SimpleNamespace(frames=lambda stamp_ns: []),
        publish_odometry=published.append,
        output=SimpleNamespace(publish_frames=lambda frames: None),
        frames_published=0,
        source_problem=lambda: "",
        publish_set_speed=lambda stamp_ns: None,  # a recording's, where it logged one
    )
    assert CameraDriver.publish_frames(driver, 5_000_000_000) == []  # type: ignore[arg-type]
    assert published == [5_000_000_000]


def test_a_recordings_set_speed_goes_out_once_per_change() -> None:
    """Latched, each value once: nothing before the first one logged, a repeat not sent, a
    bad value (NaN) sent once for the planner to report, and each change after it."""
    logged = iter([None, 12.0, 12.0, math.nan, math.nan, 12.0, 9.0])
    sent: list[float] = []
    driver = SimpleNamespace(
        source=SimpleNamespace(set_speed=lambda stamp_ns: next(logged)),
        set_speed_publisher=SimpleNamespace(publish=lambda msg: sent.append(msg.data)),
        set_speed_sent=None,
    )
    for tick in range(7):
        CameraDriver.publish_set_speed(driver, tick)  # type: ignore[arg-type]
    assert sent[0] == 12.0 and math.isnan(sent[1]) and sent[2:] == [12.0, 9.0]
