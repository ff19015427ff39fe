"""A separate process that echoes every alpamayo_ros_msgs type: in/<Name> -> out/<Name>.

Run by test_interfaces_dds.py so that messages cross a process boundary over real DDS
both ways.
"""

from __future__ import annotations

import rclpy
from interface_samples import INTERFACE_NAMES, interface_class
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

QOS = QoSProfile(
    depth=5,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("interface_echo")
    keep = []
    for name in INTERFACE_NAMES:
        msg_type = interface_class(name)
        publisher = node.create_publisher(msg_type, f"out/{name}", QOS)
        keep.append(node.create_subscription(msg_type, f"in/{name}", publisher.publish, QOS))
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
