"""The subscription QoS matched to a topic's publishers (the recorder's, the Foxglove
bridge's), without ROS: reliable and transient local only where every publisher is."""

from __future__ import annotations

import pytest
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from alpamayo_ros.nodes.bag_recorder import recorded_as
from alpamayo_ros.replay.bag import TopicQos
from alpamayo_ros.ros.qos import matching_every_publisher

RELIABLE = QoSProfile(depth=10)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def test_one_best_effort_publisher_makes_the_subscription_best_effort() -> None:
    qos = matching_every_publisher([RELIABLE, qos_profile_sensor_data], depth=7)
    assert qos.reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos.durability == DurabilityPolicy.VOLATILE
    assert qos.depth == 7


def test_a_topic_latched_by_every_publisher_is_subscribed_transient_local() -> None:
    qos = matching_every_publisher([LATCHED, LATCHED], depth=3)
    assert (qos.reliability, qos.durability) == (
        ReliabilityPolicy.RELIABLE,
        DurabilityPolicy.TRANSIENT_LOCAL,
    )
    # One volatile publisher beside: a transient-local reader would never match it.
    mixed = matching_every_publisher([LATCHED, RELIABLE], depth=3)
    assert mixed.durability == DurabilityPolicy.VOLATILE


def test_no_publisher_is_refused() -> None:
    with pytest.raises(ValueError, match="no publisher"):
        matching_every_publisher([], depth=1)


def test_the_bag_records_the_subscription_it_was_recorded_with() -> None:
    assert recorded_as(matching_every_publisher([LATCHED], depth=5)) == TopicQos(
        "reliable", "transient_local", 5
    )
    assert recorded_as(matching_every_publisher([qos_profile_sensor_data], depth=5)) == TopicQos(
        "best_effort", "volatile", 5
    )
