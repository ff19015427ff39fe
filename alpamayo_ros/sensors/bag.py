"""Bag source: the cameras of a rosbag2 recording (sqlite3 or MCAP), and its odometry.

Each rig camera plays one topic of sensor_msgs Image or CompressedImage on the recording's
capture times: the messages' header stamps, mapped onto the node's clock from the earliest
of them (playback.MediaClock). A bag stores messages in receive order, so header stamps are
nearly, not strictly, sorted across topics: the bag is read lazily, with one pass over the
camera topics, only as far ahead of a poll as a late message could trail
(REORDER_WINDOW_NS), and of the frames due at a poll only each camera's newest is decoded;
older ones are passed over with only their header stamp read. The ego pose comes from a
nav_msgs Odometry topic of the same bag, read in a first pass, or from a poses file; the
set speed, where the bag logs one (std_msgs Float64, as the planner's latched
/planning/set_speed), from the same first pass, at the times it was logged: those log
(receive) times are compared with the cameras' header stamps, which holds where both are on
one clock (the project's recorder under sim time, as `demo` records; drivers that stamp
with the system clock), not for a bag whose recorder and cameras ran on different clocks.

Read with rosbags' own ROS 2 Jazzy typestore: the three message types are standard ones,
and the project's replay typestore (a higher layer) only adds alpamayo_ros_msgs to it.
"""

from __future__ import annotations

import struct
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.planar import quaternion_to_yaw
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.encodings import ImageError, compressed_to_rgb, raw_to_rgb
from alpamayo_ros.sensors.playback import (
    MediaClock,
    PoseTrack,
    SourceError,
    StreamPlayback,
    per_camera,
)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
ODOMETRY = "nav_msgs/msg/Odometry"
FLOAT64 = "std_msgs/msg/Float64"

# How far, in header time, a camera message may precede one recorded before it in the bag
# (cameras' transport latencies differ). A poll reads the bag until it has seen a header
# stamp this far past the poll, so that no frame due by then is still unread.
REORDER_WINDOW_NS = 200_000_000

# The header stamp (int32 sec, uint32 nanosec) of a CDR message that starts with a
# std_msgs/Header, as both image types do: right after the 4-byte encapsulation header,
# whose second byte says the byte order (rosbags reads these two kinds).
_STAMP_LAYOUTS = {0: struct.Struct(">iI"), 1: struct.Struct("<iI")}
_ENCAPSULATION_BYTES = 4
_NEVER = -(2**63)  # before any stamp: no frame taken yet


def header_stamp_ns(raw: bytes) -> int:
    """The header stamp of a serialized image message, read without deserializing its
    pixels (a 1080p rgb8 frame costs 0.3 ms to deserialize, and most frames are passed
    over); raises ImageError for bytes that are not such a message."""
    layout = _STAMP_LAYOUTS.get(raw[1]) if len(raw) >= 2 and raw[0] == 0 else None
    if layout is None or len(raw) < _ENCAPSULATION_BYTES + layout.size:
        raise ImageError(f"{len(raw)} bytes are not a CDR message with a header")
    sec, nanosec = layout.unpack_from(raw, _ENCAPSULATION_BYTES)
    return int(sec) * NS_PER_S + int(nanosec)


class BagSource(StreamPlayback):
    """Plays `topics` (one per rig camera, in the rig's order) of the bag at `path` at
    `rate` times real time, each frame stamped at node start + (header stamp - earliest
    camera header stamp) / rate; finished once the bag's last frame has been taken. The ego
    pose comes from `odometry_topic` of the bag or from `poses_file` (times on the header
    stamps' time base), or is unknown; the set speed from `set_speed_topic`, if the bag
    has it (at its log times, taken on the same time base)."""

    def __init__(
        self,
        rig: CameraRig,
        path: str = "",
        topics: Sequence[str] = (),
        odometry_topic: str = "",
        poses_file: str = "",
        rate: float = 1.0,
        set_speed_topic: str = "",
    ) -> None:
        cameras_and_topics = per_camera(rig, "topics", topics)
        if len(set(topics)) != len(topics):
            raise SourceError(f"topics: {', '.join(topics)} repeat a topic; give one per camera")
        if odometry_topic and poses_file:
            raise SourceError("bag source: give odometry_topic or poses_file, not both")
        if not path:
            raise SourceError("bag source: give the path of the bag")
        self.path = Path(path)
        typestore = get_typestore(Stores.ROS2_JAZZY)
        reader = _open_bag(self.path)
        try:
            connections = [
                _topic_connections(reader, self.path, topic, (IMAGE, COMPRESSED_IMAGE))
                for _, topic in cameras_and_topics
            ]
            if poses_file:
                poses = PoseTrack.load(Path(poses_file))
            elif odometry_topic:
                poses = _odometry_track(reader, typestore, self.path, odometry_topic)
            else:
                poses = None
            self._set_speeds = _set_speed_log(reader, typestore, self.path, set_speed_topic)
            self._messages = _CameraMessages(reader, typestore, self.path, connections)
            clock = MediaClock(self._messages.start_ns, rate)
        except BaseException:
            reader.close()
            raise
        streams = [
            _CameraStream(camera, index, self._messages)
            for index, (camera, _) in enumerate(cameras_and_topics)
        ]
        super().__init__(streams, clock, poses)

    @property
    def logs_set_speed(self) -> bool:
        return self._set_speeds is not None

    def set_speed(self, stamp_ns: int) -> float | None:
        """None before the first poll too: asking must not pin where playback starts."""
        if self._set_speeds is None or self._clock.node_start_ns is None:
            return None
        logged_ns, values = self._set_speeds
        # Log (receive) times, on the header stamps' time base as the recorder writes them.
        index = int(np.searchsorted(logged_ns, self._clock.media_ns(stamp_ns), side="right"))
        return float(values[index - 1]) if index else None

    @property
    def skipped_frames(self) -> int:
        """Camera messages that could not be decoded when they were due (or whose header
        could not be read): passed over, as a live camera drops a frame."""
        return self._messages.skipped_frames

    def close(self) -> None:
        self._messages.close()


class _BagMessage(NamedTuple):
    """A camera message read from the bag, its pixels still serialized."""

    camera: int  # index into the rig's cameras
    header_ns: int
    msgtype: str
    raw: bytes


class _CameraMessages:
    """The camera messages of an open bag, read in bag order as polls need them and queued
    per camera until a poll takes (deserializes and decodes) or drops them."""

    def __init__(
        self,
        reader: Reader,
        typestore: Typestore,
        path: Path,
        connections: Sequence[Sequence[Connection]],
    ) -> None:
        self._reader = reader
        self._typestore = typestore
        self.skipped_frames = 0
        self._messages = self._read(connections)
        self._exhausted = False
        self._read_ns = _NEVER  # the newest header stamp read so far
        self._queues: list[list[_BagMessage]] = [[] for _ in connections]
        self._taken_ns = [_NEVER] * len(connections)  # per camera: the newest frame taken
        first = next(self._messages, None)
        if first is None:
            topics = ", ".join(group[0].topic for group in connections)
            raise SourceError(f"{path}: no readable messages on {topics}")
        # Read on until no later message can be stamped earlier than what has been read:
        # the recording's time base starts at the earliest of them.
        self._queues[first.camera].append(first)
        self._read_ns = first.header_ns
        self._read_past(first.header_ns + REORDER_WINDOW_NS, _NEVER)
        self.start_ns = min(message.header_ns for queue in self._queues for message in queue)

    def newest_due(self, camera: int, media_ns: int) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """The newest frame of `camera` at or before `media_ns` newer than the last taken,
        as (header stamp, RGB image); older ones are dropped. None if there is none, or it
        cannot be decoded (counted in `skipped_frames`)."""
        self._read_past(media_ns + REORDER_WINDOW_NS, media_ns)
        queue = self._queues[camera]
        due = [message for message in queue if message.header_ns <= media_ns]
        self._queues[camera] = [message for message in queue if message.header_ns > media_ns]
        newest = max(due, key=lambda message: message.header_ns, default=None)
        # A message later than the reorder window may be older than a frame already taken:
        # dropped, so that a camera's frames never go back in time.
        if newest is None or newest.header_ns <= self._taken_ns[camera]:
            return None
        self._taken_ns[camera] = newest.header_ns
        image = self._decode(newest)
        return None if image is None else (newest.header_ns, image)

    def exhausted(self, camera: int) -> bool:
        return self._exhausted and not self._queues[camera]

    def close(self) -> None:
        self._messages.close()
        if self._reader.is_open:
            self._reader.close()

    def _read(
        self, connections: Sequence[Sequence[Connection]]
    ) -> Generator[_BagMessage, None, None]:
        """Every camera message in bag order; one whose header cannot be read is counted in
        `skipped_frames` and passed over."""
        camera_of = {c.id: camera for camera, group in enumerate(connections) for c in group}
        for connection, _, raw in self._reader.messages([c for g in connections for c in g]):
            try:
                header_ns = header_stamp_ns(raw)
            except ImageError:
                self.skipped_frames += 1
                continue
            yield _BagMessage(camera_of[connection.id], header_ns, connection.msgtype, raw)

    def _read_past(self, limit_ns: int, media_ns: int) -> None:
        """Queue messages until one stamped after `limit_ns` has been read or the bag ends.
        Of a camera's messages due by `media_ns` only the newest can play: the others are
        dropped as they come, so a poll after a long pause holds one frame per camera, not
        the pause's worth."""
        while self._read_ns <= limit_ns and not self._exhausted:
            message = next(self._messages, None)
            if message is None:
                self._exhausted = True
                return
            self._read_ns = max(self._read_ns, message.header_ns)
            queue = self._queues[message.camera]
            queue.append(message)
            if message.header_ns <= media_ns:
                newest_ns = max(m.header_ns for m in queue if m.header_ns <= media_ns)
                queue[:] = [m for m in queue if m.header_ns > media_ns or m.header_ns == newest_ns]

    def _decode(self, message: _BagMessage) -> npt.NDArray[np.uint8] | None:
        try:
            msg: Any = self._typestore.deserialize_cdr(message.raw, message.msgtype)
            if message.msgtype == IMAGE:
                return raw_to_rgb(msg.data, msg.width, msg.height, msg.step, msg.encoding)
            return compressed_to_rgb(msg.data, msg.format)
        except (SerdeError, ImageError):
            self.skipped_frames += 1
            return None


class _CameraStream:
    """One camera of the bag as playback.CameraStream: a view of the shared messages."""

    def __init__(self, camera: str, index: int, messages: _CameraMessages) -> None:
        self.camera = camera
        self._index = index
        self._messages = messages

    def newest_due(self, media_ns: int) -> tuple[int, npt.NDArray[np.uint8]] | None:
        return self._messages.newest_due(self._index, media_ns)

    @property
    def exhausted(self) -> bool:
        return self._messages.exhausted(self._index)


def _open_bag(path: Path) -> Reader:
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, OSError) as error:
        raise SourceError(f"{path}: cannot read bag ({error})") from None
    return reader


def _topic_connections(
    reader: Reader, path: Path, topic: str, msgtypes: tuple[str, ...]
) -> list[Connection]:
    connections = [c for c in reader.connections if c.topic == topic]
    if not connections:
        available = sorted({c.topic for c in reader.connections})
        raise SourceError(f"{path} has no topic {topic} (has: {', '.join(available)})")
    for connection in connections:
        if connection.msgtype not in msgtypes:
            raise SourceError(
                f"{path}: {topic} is {connection.msgtype}, expected {' or '.join(msgtypes)}"
            )
    return connections


def _set_speed_log(
    reader: Reader, typestore: Typestore, path: Path, topic: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """The set speeds the bag logged on `topic` and their log times, in log order; None
    when the bag has no such topic."""
    if not topic or not any(c.topic == topic for c in reader.connections):
        return None
    logged = []
    for _, logged_ns, raw in reader.messages(_topic_connections(reader, path, topic, (FLOAT64,))):
        try:
            logged.append((logged_ns, typestore.deserialize_cdr(raw, FLOAT64).data))
        except SerdeError as error:
            raise SourceError(f"{path}: unreadable {topic} message ({error})") from None
    logged.sort(key=lambda entry: entry[0])
    return (
        np.array([ns for ns, _ in logged], np.int64),
        np.array([value for _, value in logged], np.float64),
    )


def _odometry_track(reader: Reader, typestore: Typestore, path: Path, topic: str) -> PoseTrack:
    """The planar poses of an Odometry topic at its header stamps, sorted (the bag is in
    receive order) and with a repeated stamp kept once."""
    samples = []
    for _, _, raw in reader.messages(_topic_connections(reader, path, topic, (ODOMETRY,))):
        try:
            msg: Any = typestore.deserialize_cdr(raw, ODOMETRY)
        except SerdeError as error:
            raise SourceError(f"{path}: unreadable {topic} message ({error})") from None
        pose = msg.pose.pose
        q = pose.orientation
        samples.append(
            (
                msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec,
                pose.position.x,
                pose.position.y,
                quaternion_to_yaw(q.x, q.y, q.z, q.w),
            )
        )
    stamps, first = np.unique(np.array([s[0] for s in samples], np.int64), return_index=True)
    x, y, yaw = np.array([s[1:] for s in samples], np.float64).reshape(-1, 3)[first].T
    return PoseTrack.from_samples(stamps, x, y, yaw, origin=f"{path}:{topic}")
