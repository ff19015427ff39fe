"""Camera bytes to RGB, straight from a message's fields (no ROS message types): each
supported encoding is produced here the way a camera would produce it, then decoded."""

from __future__ import annotations

from array import array

import cv2
import numpy as np
import pytest

from alpamayo_ros.sensors.encodings import (
    SUPPORTED_ENCODINGS,
    ImageError,
    compressed_to_rgb,
    raw_to_rgb,
)

PATTERN = np.random.default_rng(4).integers(0, 256, (4, 6, 3), dtype=np.uint8)
COLOUR = np.array([200, 100, 50], np.uint8)  # R, G, B all different: a swap shows
UNIFORM = np.broadcast_to(COLOUR, (8, 8, 3))


def with_alpha(pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([pixels, np.full((*pixels.shape[:2], 1), 77, np.uint8)], axis=-1)


def bayer_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """[H, W, 1]: at each pixel the one channel the sensor's filter there lets through,
    filters laid out as `pattern` names its first two rows ("rggb": R G / G B)."""
    mosaic = np.zeros((*rgb.shape[:2], 1), np.uint8)
    for k, channel in enumerate(pattern):
        rows, columns = slice(k // 2, None, 2), slice(k % 2, None, 2)
        mosaic[rows, columns, 0] = rgb[rows, columns, "rgb".index(channel)]
    return mosaic


def yuv422_pairs(rgb: np.ndarray, order: str) -> np.ndarray:
    """[H, W, 2]: BT.601 video-range luma per pixel, chroma per horizontal pixel pair, in
    the byte `order` of two pixels ("uyvy" or "yuyv")."""
    r, g, b = (rgb[..., channel].astype(float) for channel in range(3))
    planes = {
        "y": 16 + 0.257 * r + 0.504 * g + 0.098 * b,
        "u": 128 - 0.148 * r - 0.291 * g + 0.439 * b,
        "v": 128 + 0.439 * r - 0.368 * g - 0.071 * b,
    }
    height, width = rgb.shape[:2]
    pairs = np.empty((height, width // 2, 4))
    lumas = iter((planes["y"][:, 0::2], planes["y"][:, 1::2]))
    for position, component in enumerate(order):
        if component == "y":
            pairs[..., position] = next(lumas)
        else:
            plane = planes[component]
            pairs[..., position] = 0.5 * (plane[:, 0::2] + plane[:, 1::2])
    return np.round(pairs).astype(np.uint8).reshape(height, width, 2)


# Encoding -> (its bytes [H, W, bytes per pixel], the RGB they hold).
LOSSLESS = {
    "rgb8": (PATTERN, PATTERN),
    "bgr8": (PATTERN[..., ::-1], PATTERN),
    "rgba8": (with_alpha(PATTERN), PATTERN),
    "bgra8": (with_alpha(PATTERN[..., ::-1]), PATTERN),
    "mono8": (PATTERN[..., 1:2], np.repeat(PATTERN[..., 1:2], 3, axis=-1)),
}
# Demosaicked or chroma-subsampled: a uniform colour comes back within a few levels.
APPROXIMATE = {
    "bayer_rggb8": bayer_mosaic(UNIFORM, "rggb"),
    "bayer_bggr8": bayer_mosaic(UNIFORM, "bggr"),
    "bayer_gbrg8": bayer_mosaic(UNIFORM, "gbrg"),
    "bayer_grbg8": bayer_mosaic(UNIFORM, "grbg"),
    "yuv422": yuv422_pairs(UNIFORM, "uyvy"),
    "uyvy": yuv422_pairs(UNIFORM, "uyvy"),
    "yuv422_yuy2": yuv422_pairs(UNIFORM, "yuyv"),
    "yuyv": yuv422_pairs(UNIFORM, "yuyv"),
}


def decode(encoding: str, pixels: np.ndarray, step_padding: int = 0) -> np.ndarray:
    """raw_to_rgb of `pixels` sent as a message would carry them, rows padded to `step`."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.zeros((height, step_padding), np.uint8)], axis=1)
    return raw_to_rgb(padded.tobytes(), width, height, padded.shape[1], encoding)


def test_every_supported_encoding_is_tested() -> None:
    assert sorted(SUPPORTED_ENCODINGS) == sorted([*LOSSLESS, *APPROXIMATE])


@pytest.mark.parametrize("encoding", LOSSLESS)
def test_lossless_encodings_give_back_their_pixels_exactly(encoding: str) -> None:
    pixels, rgb = LOSSLESS[encoding]
    for padding in (0, 3):
        decoded = decode(encoding, pixels, step_padding=padding)
        assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous
        np.testing.assert_array_equal(decoded, rgb)


@pytest.mark.parametrize("encoding", APPROXIMATE)
def test_camera_encodings_give_back_the_colour_they_hold(encoding: str) -> None:
    decoded = decode(encoding, APPROXIMATE[encoding], step_padding=2)
    assert decoded.shape == UNIFORM.shape
    inner = decoded[2:-2, 2:-2].reshape(-1, 3).astype(int)  # demosaicking borders aside
    assert np.abs(inner - COLOUR.astype(int)).max() <= 3, (encoding, inner[0])


def test_data_as_rclpy_and_rosbags_carry_it_decodes_alike() -> None:
    """rclpy hands bytes or array('B'), rosbags a numpy array."""
    data = PATTERN.tobytes()
    for buffer in (data, array("B", data), np.frombuffer(data, np.uint8).copy()):
        np.testing.assert_array_equal(raw_to_rgb(buffer, 6, 4, 18, "rgb8"), PATTERN)


@pytest.mark.parametrize(
    ("width", "height", "step", "encoding", "size", "message"),
    [
        (6, 4, 36, "16UC1", 144, r"unsupported encoding '16UC1' \(supported: rgb8, bgr8, "),
        (6, 4, 18, "rgb8", 71, "71 data bytes, expected 72"),
        (6, 4, 17, "rgb8", 72, "inconsistent size 6x4, step 17"),
        (0, 4, 0, "rgb8", 0, "inconsistent size 0x4, step 0"),
        (6, 0, 18, "mono8", 18, "inconsistent size 6x0, step 18"),
    ],
)
def test_raw_images_that_cannot_be_decoded_raise_image_error(
    width: int, height: int, step: int, encoding: str, size: int, message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        raw_to_rgb(bytes(size), width, height, step, encoding)


def test_compressed_jpeg_and_png_decode() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0], rgb[:, 24:, 2] = 220, 180  # red, and a magenta right half
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    _, png = cv2.imencode(".png", bgr)
    np.testing.assert_array_equal(compressed_to_rgb(png.tobytes(), "png"), rgb)
    _, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = compressed_to_rgb(jpeg, "rgb8; jpeg compressed bgr8")
    assert decoded.shape == rgb.shape and np.abs(decoded.astype(int) - rgb).mean() < 3.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xd8 not a jpeg", r"cannot decode 13 bytes of compressed image \('jpeg'\)"),
        (b"", r"cannot decode 0 bytes of compressed image \('jpeg'\)"),
    ],
)
def test_compressed_data_that_cannot_be_decoded_raises_image_error(
    data: bytes, message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        compressed_to_rgb(data, "jpeg")
