"""Camera image bytes to RGB: the one decoder for live topics and recordings alike.

The ROS conversions decode sensor_msgs Image and CompressedImage messages from rclpy, and
camera sources decode the same messages read from a bag with rosbags; both hand their
fields here, so a frame decodes identically whichever way it arrived. Raw images follow
sensor_msgs/Image (rows of `step` bytes, encodings named as in sensor_msgs/image_encodings);
compressed ones are the JPEG or PNG of image_transport's compressed plugin.
"""

from __future__ import annotations

from array import array
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

# What a message's `data` field may be: bytes or array('B') from rclpy, a numpy array from
# rosbags, all read through the buffer protocol. Quoted: before Python 3.12 array takes a
# subscript only inside annotations.
ImageBytes: TypeAlias = "bytes | bytearray | memoryview | array[int] | npt.NDArray[np.uint8]"

# Encoding -> (bytes per pixel, name of the OpenCV conversion to RGB, or None for RGB
# itself). Names, not cv2's constants: OpenCV is imported only when an image is decoded, so
# the many modules that import the ROS conversions and never decode do not pay its 0.1 s.
# Bayer patterns are named by their first two rows in ROS and by the second row's middle
# pixels in OpenCV, hence the shift.
_LAYOUTS: dict[str, tuple[int, str | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, "COLOR_BGR2RGB"),
    "rgba8": (4, "COLOR_RGBA2RGB"),
    "bgra8": (4, "COLOR_BGRA2RGB"),
    "mono8": (1, "COLOR_GRAY2RGB"),
    "bayer_rggb8": (1, "COLOR_BayerBG2RGB"),
    "bayer_bggr8": (1, "COLOR_BayerRG2RGB"),
    "bayer_gbrg8": (1, "COLOR_BayerGR2RGB"),
    "bayer_grbg8": (1, "COLOR_BayerGB2RGB"),
    "yuv422": (2, "COLOR_YUV2RGB_UYVY"),  # ROS's yuv422 is UYVY byte order
    "uyvy": (2, "COLOR_YUV2RGB_UYVY"),
    "yuv422_yuy2": (2, "COLOR_YUV2RGB_YUY2"),
    "yuyv": (2, "COLOR_YUV2RGB_YUY2"),
}

# The raw encodings accepted from camera topics and recordings.
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)


class ImageError(ValueError):
    """An image message that cannot be turned into an RGB array."""


def raw_to_rgb(
    data: ImageBytes, width: int, height: int, step: int, encoding: str
) -> npt.NDArray[np.uint8]:
    """RGB uint8 [H, W, 3] from a raw image's fields; raises ImageError for what cannot be
    converted (an unsupported encoding, a size that disagrees with the data)."""
    import cv2

    try:
        channels, conversion = _LAYOUTS[encoding]
    except KeyError:
        raise ImageError(
            f"unsupported encoding {encoding!r} (supported: {', '.join(SUPPORTED_ENCODINGS)})"
        ) from None
    row_bytes = width * channels
    if height == 0 or width == 0 or step < row_bytes:
        raise ImageError(f"inconsistent size {width}x{height}, step {step}")
    buffer = np.frombuffer(data, np.uint8)
    if buffer.size < step * height:
        raise ImageError(f"{buffer.size} data bytes, expected {step * height}")
    pixels = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(pixels.reshape(height, width, channels))
    if conversion is None:
        return pixels
    return np.asarray(cv2.cvtColor(pixels, getattr(cv2, conversion)))


def compressed_to_rgb(data: ImageBytes, format: str) -> npt.NDArray[np.uint8]:
    """RGB uint8 [H, W, 3] from a compressed image's data (JPEG or PNG, whatever `format`
    says; OpenCV reads the kind from the bytes); raises ImageError for data it cannot
    decode. `format` only names the image in the error."""
    import cv2

    buffer = np.frombuffer(data, np.uint8)
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if decoded is None:
        raise ImageError(f"cannot decode {buffer.size} bytes of compressed image ({format!r})")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))
