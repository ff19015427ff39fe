"""Every interface type survives an MCAP rosbag2 file written and read with rosbags.

Messages are serialized by rclpy (as a recorder would), written by rosbags, read back and
deserialized by both rosbags and rclpy; the bag's type hashes must equal the ones rosidl
generated, or `ros2 bag play` would refuse the bag.
"""

from __future__ import annotations

import json
from pathlib import Path

from interface_samples import INTERFACE_NAMES, interface_class, sample
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from alpamayo_ros.replay.typestore import MSG_PACKAGE, message_directory, typestore


def msgtype(name: str) -> str:
    return f"{MSG_PACKAGE}/msg/{name}"


def test_every_interface_round_trips_through_mcap(tmp_path: Path) -> None:
    store = typestore()
    bag = tmp_path / "interfaces"
    expected = {name: sample(name, seed=5 + i) for i, name in enumerate(INTERFACE_NAMES)}
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for i, name in enumerate(INTERFACE_NAMES):
            connection = writer.add_connection(f"/test/{name}", msgtype(name), typestore=store)
            writer.write(connection, 1_000 + i, serialize_message(expected[name]))

    assert list(bag.glob("*.mcap")), "writer did not produce an MCAP file"
    seen = set()
    with Reader(bag) as reader:
        assert reader.message_count == len(INTERFACE_NAMES)
        for connection, _timestamp, raw in reader.messages():
            name = connection.msgtype.rsplit("/", 1)[-1]
            seen.add(name)
            assert deserialize_message(bytes(raw), interface_class(name)) == expected[name], name
            # rosbags decodes every field: re-encoded by rosbags, rclpy reads the same message.
            decoded = store.deserialize_cdr(raw, connection.msgtype)
            reencoded = bytes(store.serialize_cdr(decoded, connection.msgtype))
            assert deserialize_message(reencoded, interface_class(name)) == expected[name], name
    assert sorted(seen) == INTERFACE_NAMES


def test_bag_type_hashes_match_rosidl() -> None:
    """rosidl writes each type's RIHS01 hash next to the .msg; rosbags must agree."""
    store = typestore()
    for name in INTERFACE_NAMES:
        description = json.loads((message_directory() / f"{name}.json").read_text())
        rosidl_hash = description["type_hashes"][0]["hash_string"]
        assert store.hash_rihs01(msgtype(name)) == rosidl_hash, name
