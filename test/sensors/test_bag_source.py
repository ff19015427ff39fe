"""The bag source plays a rosbag2 recording's cameras on their capture times.

The bags are written here with rosbags: a JPEG CompressedImage camera and a raw rgb8 camera
at 10 Hz for 2 s, header stamps jittered, received later than captured (the compressed
camera much later, so the bag's receive order is not header order), odometry at 50 Hz, and
a set speed set 0.2 s in and changed at 1 s. Each image is a uniform grey 10 * its frame
index, so a poll's frames name their index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.planar import quaternion_to_yaw
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import repository_root
from alpamayo_ros.sensors import bag as bag_module
from alpamayo_ros.sensors.bag import FLOAT64, BagSource, header_stamp_ns
from alpamayo_ros.sensors.base import CameraFrame
from alpamayo_ros.sensors.encodings import ImageError
from alpamayo_ros.sensors.playback import SourceError

STORE = get_typestore(Stores.ROS2_JAZZY)
MS = 1_000_000
FRONT, LEFT = "front_wide_120fov", "cross_left_120fov"
RIG = CameraRig.load(repository_root() / "config" / "rig.yaml", (FRONT, LEFT))
FRONT_TOPIC, LEFT_TOPIC, ODOMETRY_TOPIC = (
    "/camera_front/image/compressed",
    "/cam_left/image_raw",
    "/odom",
)
TOPICS = [FRONT_TOPIC, LEFT_TOPIC]
FRAMES = 20  # 2 s at 10 Hz
BAG_START_NS = 1_700_000_000 * NS_PER_S
NODE_START_NS = 5_000 * NS_PER_S

# Capture (header) stamps per camera and frame: front on the 100 ms grid give or take
# 2 ms, left 20 ms after it, give or take 2 ms. Front frame 0 is the earliest of all.
HEADER_NS = {
    FRONT: [BAG_START_NS + i * 100 * MS + (i % 3 - 1) * 2 * MS for i in range(FRAMES)],
    LEFT: [
        BAG_START_NS + i * 100 * MS + 20 * MS + ((i + 1) % 3 - 1) * 2 * MS for i in range(FRAMES)
    ],
}
MEDIA_START_NS = HEADER_NS[FRONT][0]
# Receive time - capture time: JPEG encoding holds the front camera back for 150 ms, so the
# bag holds left frames 0 and 1 before front frame 0.
LATENCY_NS = {FRONT: 150 * MS, LEFT: 5 * MS}
LATE_NS = 1_000 * MS  # a camera hiccup, far beyond the source's reorder window
SPEED, LATERAL_SPEED, YAW_RATE = 5.0, 0.5, 0.1  # m/s, m/s, rad/s of the recorded odometry
ODOMETRY_NS = [BAG_START_NS - 50 * MS + k * 20 * MS for k in range(110)]  # 50 Hz, -50 ms..2.13 s
SET_SPEED_TOPIC = "/planning/set_speed"
SET_SPEEDS = ((BAG_START_NS + 200 * MS, 12.0), (BAG_START_NS + 1_000 * MS, 8.5))  # logged, m/s


def seconds_since_start(stamp_ns: int) -> float:
    return (stamp_ns - BAG_START_NS) / NS_PER_S


def header(stamp_ns: int, frame_id: str) -> Any:
    time = STORE.types["builtin_interfaces/msg/Time"](
        sec=stamp_ns // NS_PER_S, nanosec=stamp_ns % NS_PER_S
    )
    return STORE.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def front_image(index: int, stamp_ns: int, corrupt: bool) -> Any:
    _, jpeg = cv2.imencode(".jpg", np.full((24, 32, 3), 10 * index, np.uint8))
    data = np.frombuffer(b"\xff\xd8 not a jpeg", np.uint8) if corrupt else jpeg.reshape(-1)
    return STORE.types["sensor_msgs/msg/CompressedImage"](
        header=header(stamp_ns, "front"), format="rgb8; jpeg compressed bgr8", data=data
    )


def left_image(index: int, stamp_ns: int, corrupt: bool) -> Any:
    pixels = np.full(24 * 32 * 3, 10 * index, np.uint8)
    return STORE.types["sensor_msgs/msg/Image"](
        header=header(stamp_ns, "left"),
        height=24,
        width=32,
        encoding="rgb8",
        is_bigendian=0,
        step=32 * 3,
        data=pixels[:100] if corrupt else pixels,  # corrupt: too few bytes for its size
    )


def odometry(stamp_ns: int) -> Any:
    types = STORE.types
    t = seconds_since_start(stamp_ns)
    yaw = YAW_RATE * t
    return types["nav_msgs/msg/Odometry"](
        header=header(stamp_ns, "odom"),
        child_frame_id="base_link",
        pose=types["geometry_msgs/msg/PoseWithCovariance"](
            pose=types["geometry_msgs/msg/Pose"](
                position=types["geometry_msgs/msg/Point"](x=SPEED * t, y=LATERAL_SPEED * t, z=0.0),
                orientation=types["geometry_msgs/msg/Quaternion"](
                    x=0.0, y=0.0, z=np.sin(yaw / 2), w=np.cos(yaw / 2)
                ),
            ),
            covariance=np.zeros(36),
        ),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](
                linear=types["geometry_msgs/msg/Vector3"](x=SPEED, y=0.0, z=0.0),
                angular=types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=YAW_RATE),
            ),
            covariance=np.zeros(36),
        ),
    )


def write_bag(
    path: Path,
    storage: StoragePlugin = StoragePlugin.SQLITE3,
    corrupt: frozenset[tuple[str, int]] = frozenset(),
    late: frozenset[tuple[str, int]] = frozenset(),
) -> Path:
    """The recording described above; `corrupt` (camera, index) frames cannot be decoded,
    `late` ones reach the bag LATE_NS later than the others of their camera."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=STORE)
            for topic, msgtype in (
                (FRONT_TOPIC, "sensor_msgs/msg/CompressedImage"),
                (LEFT_TOPIC, "sensor_msgs/msg/Image"),
                (ODOMETRY_TOPIC, "nav_msgs/msg/Odometry"),
                (SET_SPEED_TOPIC, "std_msgs/msg/Float64"),
            )
        }
        records = [
            (stamp + 1 * MS, ODOMETRY_TOPIC, odometry(stamp), "nav_msgs/msg/Odometry")
            for stamp in ODOMETRY_NS
        ]
        records += [
            (logged_ns, SET_SPEED_TOPIC, STORE.types["std_msgs/msg/Float64"](data=value), FLOAT64)
            for logged_ns, value in SET_SPEEDS
        ]
        for camera, topic, make, msgtype in (
            (FRONT, FRONT_TOPIC, front_image, "sensor_msgs/msg/CompressedImage"),
            (LEFT, LEFT_TOPIC, left_image, "sensor_msgs/msg/Image"),
        ):
            for index, stamp in enumerate(HEADER_NS[camera]):
                msg = make(index, stamp, (camera, index) in corrupt)
                delay_ns = LATENCY_NS[camera] + (LATE_NS if (camera, index) in late else 0)
                records.append((stamp + delay_ns, topic, msg, msgtype))
        for receive_ns, topic, msg, msgtype in sorted(records, key=lambda record: record[0]):
            writer.write(connections[topic], receive_ns, STORE.serialize_cdr(msg, msgtype))
    return path


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bag(tmp_path_factory.mktemp("bags") / "drive")


@pytest.fixture
def source(recording: Path) -> Iterator[BagSource]:
    source = BagSource(RIG, path=str(recording), topics=TOPICS, odometry_topic=ODOMETRY_TOPIC)
    yield source
    source.close()


def node_ns(media_ns: int, rate: float = 1.0) -> int:
    """Where a recorded instant lands on the node's clock, the first poll at NODE_START_NS."""
    return NODE_START_NS + round((media_ns - MEDIA_START_NS) / rate)


def mid_frame_ns(index: int) -> int:
    """Between capture `index` and the next of both cameras: both frames `index` are due."""
    return BAG_START_NS + index * 100 * MS + 50 * MS


def played(frames: list[CameraFrame]) -> list[tuple[str, int]]:
    """(camera, frame index) of each frame, read from its grey level."""
    indices = []
    for frame in frames:
        assert frame.image.shape == (24, 32, 3) and frame.image.dtype == np.uint8
        level = float(frame.image.mean())
        assert abs(level - round(level / 10) * 10) < 1.0, (frame.camera, level)
        indices.append((frame.camera, round(level / 10)))
    return indices


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_each_poll_gets_every_cameras_newest_due_frame_at_its_capture_stamp(
    tmp_path: Path, storage: StoragePlugin, rate: float
) -> None:
    path = write_bag(tmp_path / "drive", storage)
    source = BagSource(RIG, path=str(path), topics=TOPICS, rate=rate)
    # The first poll starts the recording at its earliest capture: front frame 0 only.
    first = source.frames(NODE_START_NS)
    assert played(first) == [(FRONT, 0)]
    assert first[0].stamp_ns == NODE_START_NS
    seen = set(played(first))
    for index in range(FRAMES):
        assert not source.finished
        frames = source.frames(node_ns(mid_frame_ns(index), rate))
        expected = [(LEFT, 0)] if index == 0 else [(FRONT, index), (LEFT, index)]
        assert played(frames) == expected
        assert [f.stamp_ns for f in frames] == [
            node_ns(HEADER_NS[camera][i], rate) for camera, i in expected
        ]
        assert seen.isdisjoint(expected)
        seen.update(expected)
    assert source.finished
    assert source.frames(node_ns(mid_frame_ns(FRAMES + 5), rate)) == []
    assert source.skipped_frames == 0
    source.close()


def test_a_late_poll_gets_only_the_newest_frames_and_decodes_no_other(
    source: BagSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = []

    def counting(decode: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            decoded.append(decode.__name__)
            return decode(*args)

        return wrapper

    for name in ("raw_to_rgb", "compressed_to_rgb"):
        monkeypatch.setattr(bag_module, name, counting(getattr(bag_module, name)))
    assert played(source.frames(NODE_START_NS)) == [(FRONT, 0)]
    frames = source.frames(node_ns(mid_frame_ns(7)))
    assert played(frames) == [(FRONT, 7), (LEFT, 7)]
    assert decoded == ["compressed_to_rgb", "compressed_to_rgb", "raw_to_rgb"]
    # Polled again at the same instant, or before the next capture: nothing new.
    assert source.frames(node_ns(mid_frame_ns(7))) == []
    assert source.frames(node_ns(HEADER_NS[FRONT][8] - 1)) == []
    # A poll exactly at a capture stamp gets that frame.
    exactly = source.frames(node_ns(HEADER_NS[FRONT][8]))
    assert played(exactly) == [(FRONT, 8)]
    assert exactly[0].stamp_ns == node_ns(HEADER_NS[FRONT][8])
    assert source.skipped_frames == 0


def test_polled_slower_than_the_cameras_capture_each_poll_gets_the_newest(
    source: BagSource,
) -> None:
    """Every other frame: the two frames due at a poll were both read ahead at the one
    before, and the older one is dropped."""
    source.frames(NODE_START_NS)
    for index in range(2, FRAMES, 2):
        frames = source.frames(node_ns(mid_frame_ns(index)))
        assert played(frames) == [(FRONT, index), (LEFT, index)]
        assert [f.stamp_ns for f in frames] == [
            node_ns(HEADER_NS[FRONT][index]),
            node_ns(HEADER_NS[LEFT][index]),
        ]


def test_the_ego_pose_follows_the_recorded_odometry(source: BagSource) -> None:
    source.frames(NODE_START_NS)
    for media_ns in (MEDIA_START_NS, BAG_START_NS + 333 * MS, BAG_START_NS + 1_999 * MS):
        stamp = node_ns(media_ns)
        pose = source.ego_pose(stamp)
        assert pose is not None and pose.stamp_ns == stamp
        t = seconds_since_start(media_ns)
        np.testing.assert_allclose(pose.position, [SPEED * t, LATERAL_SPEED * t, 0.0], atol=1e-9)
        assert quaternion_to_yaw(*pose.orientation_xyzw) == pytest.approx(YAW_RATE * t)
        forward = SPEED * np.cos(YAW_RATE * t) + LATERAL_SPEED * np.sin(YAW_RATE * t)
        assert pose.linear_velocity[0] == pytest.approx(forward, rel=1e-3)
        assert pose.angular_velocity[2] == pytest.approx(YAW_RATE)
    assert source.ego_pose(node_ns(ODOMETRY_NS[-1] + 1)) is None


def test_the_set_speed_is_the_last_one_logged(recording: Path) -> None:
    source = BagSource(
        RIG, path=str(recording), topics=TOPICS, set_speed_topic=SET_SPEED_TOPIC, rate=2.0
    )
    source.frames(NODE_START_NS)
    (first_ns, first), (second_ns, second) = SET_SPEEDS
    assert source.set_speed(node_ns(first_ns - MS, rate=2.0)) is None  # nothing logged yet
    assert source.set_speed(node_ns(first_ns, rate=2.0)) == first
    assert source.set_speed(node_ns(second_ns - MS, rate=2.0)) == first
    assert source.set_speed(node_ns(second_ns, rate=2.0)) == second
    assert source.set_speed(node_ns(BAG_START_NS + 10 * NS_PER_S, rate=2.0)) == second
    source.close()
    # Not asked for, or not in the bag: not known, as the graph's replay would leave it.
    for topic in ("", "/other/set_speed"):
        source = BagSource(RIG, path=str(recording), topics=TOPICS, set_speed_topic=topic)
        source.frames(NODE_START_NS)
        assert source.set_speed(node_ns(second_ns)) is None
        source.close()
    with pytest.raises(SourceError, match="/odom is nav_msgs/msg/Odometry, expected std_msgs"):
        BagSource(RIG, path=str(recording), topics=TOPICS, set_speed_topic=ODOMETRY_TOPIC)


def test_the_ego_pose_can_come_from_a_poses_file(recording: Path, tmp_path: Path) -> None:
    poses = tmp_path / "poses.csv"
    start_s = BAG_START_NS / NS_PER_S
    poses.write_text(f"t,x,y,yaw\n{start_s - 1},0,0,0\n{start_s + 3},8,0,0\n")
    source = BagSource(RIG, path=str(recording), topics=TOPICS, poses_file=str(poses))
    source.frames(NODE_START_NS)
    pose = source.ego_pose(node_ns(BAG_START_NS + NS_PER_S))
    assert pose is not None
    np.testing.assert_allclose(pose.position, [4.0, 0.0, 0.0], atol=1e-6)
    source.close()


def test_frames_that_cannot_be_decoded_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write_bag(tmp_path / "drive", corrupt=frozenset({(FRONT, 3), (LEFT, 5)}))
    source = BagSource(RIG, path=str(path), topics=TOPICS)
    source.frames(NODE_START_NS)
    played_indices = [played(source.frames(node_ns(mid_frame_ns(i)))) for i in range(FRAMES)]
    assert played_indices[3] == [(LEFT, 3)]
    assert played_indices[5] == [(FRONT, 5)]
    assert played_indices[6] == [(FRONT, 6), (LEFT, 6)]
    assert source.skipped_frames == 2
    assert source.finished
    source.close()


def test_a_frame_later_than_the_reorder_window_is_dropped_not_played_out_of_order(
    tmp_path: Path,
) -> None:
    """Left frame 4 reaches the bag a second late, read at the poll at 1.218 s, after left
    frames up to 11 have been played and before 12 is due: polled more often than the
    cameras capture, it would otherwise come out alone there, stamped back in time."""
    path = write_bag(tmp_path / "drive", late=frozenset({(LEFT, 4)}))
    source = BagSource(RIG, path=str(path), topics=TOPICS)
    frames = [
        frame
        for poll_ms in range(0, 2_100, 10)
        for frame in source.frames(node_ns(MEDIA_START_NS + poll_ms * MS))
    ]
    assert source.finished
    for camera, expected in ((FRONT, range(FRAMES)), (LEFT, [*range(4), *range(5, FRAMES)])):
        mine = [frame for frame in frames if frame.camera == camera]
        assert [index for _, index in played(mine)] == list(expected)
        assert [frame.stamp_ns for frame in mine] == [
            node_ns(HEADER_NS[camera][i]) for i in expected
        ]
    source.close()


def test_header_stamps_are_read_without_deserializing_in_either_byte_order() -> None:
    stamp = BAG_START_NS + 123_456_789
    msg = left_image(3, stamp, corrupt=False)
    for little_endian in (True, False):
        raw = STORE.serialize_cdr(msg, "sensor_msgs/msg/Image", little_endian=little_endian)
        assert header_stamp_ns(bytes(raw)) == stamp
    for garbage in (b"", b"\x00\x01\x00\x00\x05", b"\x01\x00" + bytes(12)):
        with pytest.raises(ImageError, match="not a CDR message with a header"):
            header_stamp_ns(garbage)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"topics": ["/camera_front/image_raw", LEFT_TOPIC]},
            "has no topic /camera_front/image_raw "
            r"\(has: /cam_left/image_raw, /camera_front/image/compressed, /odom, "
            r"/planning/set_speed\)",
        ),
        (
            {"topics": [ODOMETRY_TOPIC, LEFT_TOPIC]},
            "/odom is nav_msgs/msg/Odometry, "
            "expected sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage",
        ),
        ({"topics": [FRONT_TOPIC]}, r"topics: 1 given for 2 cameras \(front_wide_120fov, "),
        ({"topics": [FRONT_TOPIC, FRONT_TOPIC]}, "repeat a topic; give one per camera"),
        ({"path": ""}, "bag source: give the path of the bag"),
        ({"odometry_topic": "/odometry"}, "has no topic /odometry"),
        ({"odometry_topic": LEFT_TOPIC}, "is sensor_msgs/msg/Image, expected nav_msgs/msg/Odo"),
        ({"odometry_topic": ODOMETRY_TOPIC, "poses_file": "poses.csv"}, "not both"),
        ({"path": "/nonexistent/bag"}, "/nonexistent/bag: cannot read bag"),
        ({"rate": 0.0}, "playback rate must be a positive number"),
    ],
)
def test_a_bag_that_cannot_play_raises_a_one_line_source_error(
    recording: Path, options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"path": str(recording), "topics": TOPICS, **options}
    with pytest.raises(SourceError, match=message) as error:
        BagSource(RIG, **arguments)
    assert "\n" not in str(error.value)


def test_a_bag_without_camera_messages_cannot_play(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    with Writer(path, version=9) as writer:
        for topic in TOPICS:
            writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=STORE)
    with pytest.raises(SourceError, match="no readable messages on /camera_front"):
        BagSource(RIG, path=str(path), topics=TOPICS)
