"""Folder source: one folder of images per camera (an exported dataset, a frame dump),
played on the node's clock at the images' recorded times.

Image folders carry their times in one of three ways, tried in this order: a `stamps.csv`
(`file,t`, t in seconds) beside the images, a fixed frame rate given as `rate_hz`, or the
file names themselves (`1700000000.250.png`, in `stamp_unit`). Times are parsed as exact
decimals, so a name in nanoseconds keeps every digit. The folders share one time base: the
earliest first image of all cameras starts the playback, and the poses file's `t` is in the
same seconds.

Images are decoded when they are due, only the newest due one per camera and poll, so a
long folder costs nothing until it plays; one that fails to decode then is skipped and
counted, as a live camera drops a frame.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.playback import (
    MediaClock,
    PoseTrack,
    SourceError,
    StreamPlayback,
    per_camera,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
STAMPS_FILE = "stamps.csv"
NS_PER_UNIT = {"s": NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _exact_ns(text: str, ns_per_unit: int) -> int | None:
    """A decimal number of `ns_per_unit` as whole nanoseconds; None if it is not a number."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return int((value * ns_per_unit).to_integral_value()) if value.is_finite() else None


def _listed_stamps_ns(listing: Path, images: list[Path]) -> list[int]:
    try:
        with listing.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as error:
        raise SourceError(f"{listing}: cannot read ({error.strerror})") from None
    stamp_by_name = {}
    for line, row in enumerate(rows, start=2):
        stamp_ns = _exact_ns(row.get("t") or "", NS_PER_S)
        if not row.get("file") or stamp_ns is None:
            raise SourceError(f"{listing}:{line}: expected the columns file,t (t in seconds)")
        stamp_by_name[row["file"]] = stamp_ns
    unlisted = [image.name for image in images if image.name not in stamp_by_name]
    if unlisted:
        raise SourceError(
            f"{listing}: {len(unlisted)} image(s) without a time, first {unlisted[0]}; "
            "every image must be listed"
        )
    return [stamp_by_name[image.name] for image in images]


def _named_stamp_ns(image: Path, ns_per_unit: int) -> int:
    stamp_ns = _exact_ns(image.stem, ns_per_unit)
    if stamp_ns is None:
        raise SourceError(
            f"{image}: the file name is not a stamp; set rate_hz, or give the times in a "
            f"{STAMPS_FILE} (file,t) in the folder"
        )
    return stamp_ns


def _stamps_ns(folder: Path, images: list[Path], rate_hz: float, ns_per_unit: int) -> list[int]:
    """The images' times on the recording's time base, by the first rule that applies."""
    if (folder / STAMPS_FILE).is_file():
        stamps = _listed_stamps_ns(folder / STAMPS_FILE, images)
    elif rate_hz > 0.0:
        stamps = [round(index * NS_PER_S / rate_hz) for index in range(len(images))]
    else:
        stamps = [_named_stamp_ns(image, ns_per_unit) for image in images]
    for earlier_ns, later_ns, image in zip(stamps, stamps[1:], images[1:], strict=False):
        if later_ns <= earlier_ns:
            raise SourceError(
                f"{image}: its time is not after the image before it; times must increase "
                "strictly in file-name order"
            )
    return stamps


class _ImageFolder:
    """One camera's images in name order with their times; each is taken (decoded or
    skipped) at most once."""

    def __init__(self, camera: str, folder: Path, rate_hz: float, ns_per_unit: int) -> None:
        self.camera = camera
        if not folder.is_dir():
            raise SourceError(f"camera {camera}: image folder '{folder}' not found")
        self._images = sorted(
            (path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda path: path.name,
        )
        if not self._images:
            patterns = ", ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
            raise SourceError(f"camera {camera}: no images ({patterns}) in folder '{folder}'")
        self.stamps_ns = _stamps_ns(folder, self._images, rate_hz, ns_per_unit)
        self._last_taken = -1
        self.skipped_files = 0

    def newest_due(self, media_ns: int) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """The newest image at or before `media_ns` not taken before, as (time, RGB image);
        None when there is none or it does not decode (then it is counted as skipped)."""
        due = bisect.bisect_right(self.stamps_ns, media_ns) - 1
        if due <= self._last_taken:
            return None
        self._last_taken = due
        bgr = cv2.imread(str(self._images[due]), cv2.IMREAD_COLOR)
        if bgr is None:
            self.skipped_files += 1
            return None
        return self.stamps_ns[due], np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)

    @property
    def exhausted(self) -> bool:
        return self._last_taken == len(self._images) - 1


class FolderSource(StreamPlayback):
    """Images of one folder per camera (in the rig's camera order), stamped on the node's
    clock at `first poll + (image time - earliest first image time) / playback_rate`."""

    def __init__(
        self,
        rig: CameraRig,
        paths: Sequence[str] = (),
        rate_hz: float = 0.0,
        stamp_unit: str = "s",
        playback_rate: float = 1.0,
        poses_file: str = "",
    ) -> None:
        if stamp_unit not in NS_PER_UNIT:
            raise SourceError(
                f"stamp_unit must be one of {', '.join(NS_PER_UNIT)}, got {stamp_unit!r}"
            )
        if rate_hz < 0.0:
            raise SourceError(f"rate_hz must be 0 (times from the folder) or more, got {rate_hz}")
        self._folders = [
            _ImageFolder(camera, Path(path), rate_hz, NS_PER_UNIT[stamp_unit])
            for camera, path in per_camera(rig, "paths", paths)
        ]
        super().__init__(
            self._folders,
            MediaClock(min(folder.stamps_ns[0] for folder in self._folders), playback_rate),
            PoseTrack.load(Path(poses_file)) if poses_file else None,
        )

    @property
    def skipped_files(self) -> int:
        """Images that failed to decode when they were due (corrupt or removed)."""
        return sum(folder.skipped_files for folder in self._folders)
