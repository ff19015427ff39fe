"""rosbag2 bags on rosbags: lossless recording of raw CDR messages, and playback timing.

No rclpy here: the recorder and player nodes hand serialized messages in and out, so a
message is written exactly as it was on the wire and replayed byte for byte, and QoS is
described in plain values (`TopicQos`) that the nodes translate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from rosbags.interfaces import (
    ConnectionExtRosbag2,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError, WriterError
from rosbags.typesys.store import TypesysError

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.replay.typestore import typestore


class BagError(ConfigurationError):
    """A bag that cannot be written or read; the message says which and why."""


@dataclass(frozen=True)
class TopicQos:
    """The QoS a topic was recorded with (the recorder's subscription), kept in the bag's
    offered_qos_profiles so that `ros2 bag play` and our player publish it alike."""

    reliability: Literal["reliable", "best_effort"]
    durability: Literal["volatile", "transient_local"]
    depth: int  # of a keep-last history


# rosbag2 writes "no deadline/lifespan/lease" as a zero duration: the ROS default.
_NO_DURATION = QosTime(0, 0)


class BagRecorder:
    """Writes raw messages to a new MCAP rosbag2 bag, one connection per topic.

    Chunks are zstd-compressed inside the MCAP file (rosbags' storage compression, as
    `ros2 bag record --storage-preset-profile zstd_fast` does): the file stays a plain
    .mcap that `ros2 bag`, Foxglove and the mcap readers open, camera streams shrink, and
    the metadata names no file-level compression."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists; record into a new directory")
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._connections: dict[str, object] = {}
        self.counts: Counter[str] = Counter()
        try:
            self._writer.open()
        except WriterError as error:
            raise BagError(f"cannot create bag {self.path}: {error}") from None

    def add_topic(self, topic: str, msgtype: str, qos: TopicQos | None = None) -> None:
        """Declare a topic before writing it; the type must be known to the typestore so the
        bag carries its definition and hash (`ros2 bag play` needs both). `qos`, the profile
        it is received with, becomes its offered_qos_profiles; without one the bag offers
        none and players choose their default."""
        if topic in self._connections:
            return
        try:
            self._connections[topic] = self._writer.add_connection(
                topic,
                msgtype,
                typestore=typestore(),
                offered_qos_profiles=() if qos is None else (_rosbags_qos(qos),),
            )
        except (TypesysError, KeyError) as error:
            raise BagError(f"cannot record {topic}: unknown type {msgtype} ({error})") from None

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._connections)

    def write(self, topic: str, timestamp_ns: int, raw: bytes) -> None:
        self._writer.write(self._connections[topic], timestamp_ns, raw)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    timestamp_ns: int  # receive time when recorded
    raw: bytes  # CDR, as on the wire


@dataclass(frozen=True)
class BagContents:
    topics: dict[str, str]  # topic -> msgtype
    start_ns: int  # 0, as end_ns, for a bag without messages
    end_ns: int
    message_count: int
    qos: dict[str, TopicQos]  # topic -> its recorded QoS, for topics recorded with one


def bag_contents(path: Path, topics: Sequence[str] = ()) -> BagContents:
    """What a bag holds (only `topics`, if given); raises BagError for a missing one."""
    with _open(path) as reader:
        connections = _selected(reader, path, topics)
        empty = reader.message_count == 0
        qos: dict[str, TopicQos] = {}
        for connection in connections:
            ext = connection.ext
            if isinstance(ext, ConnectionExtRosbag2) and ext.offered_qos_profiles:
                qos.setdefault(connection.topic, recorded_qos(ext.offered_qos_profiles))
        return BagContents(
            topics={c.topic: c.msgtype for c in connections},
            start_ns=0 if empty else reader.start_time,
            end_ns=0 if empty else reader.end_time,
            message_count=sum(c.msgcount for c in connections),
            qos=qos,
        )


def recorded_qos(offered: Sequence[Qos]) -> TopicQos:
    """One profile for a topic from its offered ones (one per recorded publisher, as
    `ros2 bag record` keeps them), as rosbag2's player adapts them: reliable and transient
    local only where every offer is, so that every original subscriber still matches."""
    return TopicQos(
        reliability=(
            "reliable"
            if all(q.reliability == QosReliability.RELIABLE for q in offered)
            else "best_effort"
        ),
        durability=(
            "transient_local"
            if all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offered)
            else "volatile"
        ),
        depth=max(q.depth for q in offered),
    )


def read_messages(path: Path, topics: Sequence[str] = ()) -> Iterator[BagMessage]:
    """The bag's messages in timestamp order."""
    with _open(path) as reader:
        connections = _selected(reader, path, topics)
        for connection, timestamp, raw in reader.messages(connections=connections):
            yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(raw))


def missing_inputs(contents: BagContents, inputs: dict[str, str]) -> list[str]:
    """Why a bag cannot feed inputs (topic -> type, a topic map's), one line each: a topic
    it lacks or holds with another type. Empty when it can."""
    problems = []
    for topic, msgtype in inputs.items():
        held = contents.topics.get(topic)
        if held is None:
            problems.append(f"no topic {topic} ({msgtype})")
        elif held != msgtype:
            problems.append(f"{topic} is {held}, the topic map expects {msgtype}")
    return problems


@dataclass(frozen=True)
class PlaybackClock:
    """Bag time <-> wall time for playback at `rate` times real time from `start_wall_ns`."""

    bag_start_ns: int
    wall_start_ns: int
    rate: float = 1.0

    def __post_init__(self) -> None:
        if not self.rate > 0.0:
            raise BagError(f"playback rate must be positive, got {self.rate}")

    def wall_time(self, bag_ns: int) -> int:
        return self.wall_start_ns + round((bag_ns - self.bag_start_ns) / self.rate)

    def bag_time(self, wall_ns: int) -> int:
        return self.bag_start_ns + round((wall_ns - self.wall_start_ns) * self.rate)


def _rosbags_qos(qos: TopicQos) -> Qos:
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=qos.depth,
        reliability=QosReliability[qos.reliability.upper()],
        durability=QosDurability[qos.durability.upper()],
        deadline=_NO_DURATION,
        lifespan=_NO_DURATION,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_NO_DURATION,
        avoid_ros_namespace_conventions=False,
    )


@contextmanager
def _open(path: Path) -> Iterator[Reader]:
    try:
        reader = Reader(Path(path))
        reader.open()
    except (ReaderError, FileNotFoundError, NotADirectoryError) as error:
        raise BagError(f"cannot read bag {path}: {error}") from None
    try:
        yield reader
    finally:
        reader.close()


def _selected(reader: Reader, path: Path, topics: Sequence[str]) -> list:
    available = {c.topic for c in reader.connections}
    missing = sorted(set(topics) - available)
    if missing:
        raise BagError(f"{path} has no topic(s) {', '.join(missing)} (has: {sorted(available)})")
    return [c for c in reader.connections if not topics or c.topic in topics]
