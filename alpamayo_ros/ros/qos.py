"""The subscription QoS for a topic whose publishers are found at run time (the bag
recorder, the Foxglove bridge): one that matches every one of them."""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def matching_every_publisher(offered: Sequence[QoSProfile], depth: int) -> QoSProfile:
    """The strongest subscription that still matches every one of a topic's publishers
    (`offered`, as discovery reports them; at least one): reliable only where every one is
    (a reliable reader never matches a best-effort writer, such as a camera), transient
    local only where every one is (a transient-local reader never matches a volatile
    writer). So nothing a reliable publisher sends is dropped, and a latched topic's last
    messages (/tf_static, a set speed) come to a subscriber that joins late."""
    if not offered:
        raise ValueError("no publisher's QoS to match")
    reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )
