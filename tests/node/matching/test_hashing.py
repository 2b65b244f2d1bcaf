"""Hashing files: reference PDQ and vPDQ hashes are reproduced, exact hashes are right."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from node.errors import HashingError
from node.matching.hashing import (
    LOW_QUALITY,
    FileHash,
    hash_file,
    is_low_quality,
    pdq_of_pixels,
)
from protocol.signals import decode_vpdq
from tests.pdq_modes import CONVENTIONS_DIFFER, pillow_modes

DATA = Path(__file__).resolve().parents[2] / "data"


def _expected_pdq() -> list[tuple[str, str]]:
    lines = (DATA / "pdq" / "expected.txt").read_text().splitlines()
    return [(ln.split()[0], ln.split()[1]) for ln in lines if ln and not ln.startswith("#")]


def _by_type(results: list[FileHash]) -> dict[str, tuple[bytes, int | None]]:
    return {h.signal_type: (h.value, h.quality) for h in results}


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@pytest.mark.parametrize(("name", "expected"), _expected_pdq())
def test_reference_images_hash_to_the_reference_pdq(name: str, expected: str) -> None:
    got = _by_type(hash_file(DATA / "pdq" / name))
    assert got["pdq"][0].hex() == expected
    assert set(got) == {"md5", "sha256", "pdq"}


def test_every_file_gets_md5_and_sha256_of_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not an image or a video\n" * 1000)
    got = _by_type(hash_file(path))
    assert got == {
        "md5": (hashlib.md5(path.read_bytes()).digest(), None),
        "sha256": (hashlib.sha256(path.read_bytes()).digest(), None),
    }


def test_low_quality_is_flagged() -> None:
    # small.jpg is a nearly flat gradient: the reference gives it quality 0.
    _, quality = _by_type(hash_file(DATA / "pdq" / "small.jpg"))["pdq"]
    assert quality is not None and quality < LOW_QUALITY and is_low_quality(quality)
    _, quality = _by_type(hash_file(DATA / "pdq" / "q0122.jpg"))["pdq"]
    assert quality == 100 and not is_low_quality(quality)
    assert not is_low_quality(None)


def _pattern(width: int, height: int, phase: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = [(xx * 3 + phase * 7) % 256, (yy * 5 + phase * 60) % 256, (xx * yy // (phase + 1)) % 256]
    return np.stack(rgb, axis=2).astype(np.uint8)


def test_re_encoded_copy_is_near_and_mirror_is_far(tmp_path: Path) -> None:
    original = Image.open(DATA / "pdq" / "q0291.jpg").convert("RGB")
    original.resize((180, 180)).save(tmp_path / "smaller.jpg", quality=60)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirror.png")
    a = _by_type(hash_file(DATA / "pdq" / "q0291.jpg"))["pdq"][0]
    b = _by_type(hash_file(tmp_path / "smaller.jpg"))["pdq"][0]
    c = _by_type(hash_file(tmp_path / "mirror.png"))["pdq"][0]
    assert a == pdq_of_pixels(np.asarray(original))[0]
    assert _distance(a, b) <= 16
    assert _distance(a, c) > 64


def test_broken_image_and_missing_file_raise_hashing_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    whole = (DATA / "pdq" / "q0291.jpg").read_bytes()
    broken.write_bytes(whole[: len(whole) // 3])  # a JPEG cut short
    with pytest.raises(HashingError):
        hash_file(broken)
    with pytest.raises(HashingError):
        hash_file(tmp_path / "absent.jpg")


def test_reference_video_hashes_to_the_reference_vpdq() -> None:
    video = DATA / "vpdq" / "test-padded-dimensions.mp4"
    got = _by_type(hash_file(video, vpdq_fps=0))
    assert got["video_md5"] == (hashlib.md5(video.read_bytes()).digest(), None)
    frames = decode_vpdq(got["vpdq"][0])
    reference = [
        line.split(",")
        for line in (DATA / "vpdq" / "test-padded-dimensions.txt").read_text().split()
    ]
    assert len(frames) == len(reference) == 150
    for frame, (number, quality, pdq_hex, seconds) in zip(frames, reference, strict=True):
        assert frame.frame_number == int(number)
        assert frame.quality == int(quality)
        assert frame.pdq.hex() == pdq_hex
        assert frame.timestamp_ms == round(float(seconds) * 1000)


def test_one_frame_a_second_samples_the_reference_frames() -> None:
    video = DATA / "vpdq" / "test-padded-dimensions.mp4"
    frames = decode_vpdq(_by_type(hash_file(video, vpdq_fps=1.0))["vpdq"][0])
    assert [f.frame_number for f in frames] == [0, 30, 60, 90, 120]
    assert [f.timestamp_ms for f in frames] == [0, 1000, 2000, 3000, 4000]


def test_generated_video_frames_hash_as_pdq_of_the_same_pixels(tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is installed by scripts/setup.sh"
    frames = [_pattern(160, 120, i // 10) for i in range(30)]
    video = tmp_path / "clip.mkv"
    # Lossless RGB (PNG frames) so the decoder hands vPDQ exactly these pixels.
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            "160x120",
            "-r",
            "10",
            "-i",
            "-",
            "-c:v",
            "png",
            str(video),
        ],
        input=b"".join(f.tobytes() for f in frames),
        check=True,
    )
    got = _by_type(hash_file(video, vpdq_fps=2.0))
    vframes = decode_vpdq(got["vpdq"][0])
    assert [f.frame_number for f in vframes] == [0, 5, 10, 15, 20, 25]
    assert [f.timestamp_ms for f in vframes] == [0, 500, 1000, 1500, 2000, 2500]
    for f in vframes:
        assert (f.pdq, f.quality) == pdq_of_pixels(frames[f.frame_number])
    assert got["vpdq"][1] == 100


def test_a_file_that_claims_to_be_video_but_is_not_raises(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200)
    with pytest.raises(HashingError):
        hash_file(fake)


def test_negative_frame_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HashingError):
        hash_file(DATA / "pdq" / "wee.jpg", vpdq_fps=-1)


def test_every_pillow_mode_carries_threatexchanges_pdq_exactly_where_it_differs(
    tmp_path: Path,
) -> None:
    differ = set()
    for name, path in pillow_modes(tmp_path).items():
        [got] = [h for h in hash_file(path) if h.signal_type == "pdq"]
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGBA" if image.mode == "P" else "RGB"))[:, :, :3]
        assert (got.value, got.quality) == pdq_of_pixels(rgb), name
        try:
            theirs, quality = pdq_from_bytes(path.read_bytes())
        except (ValueError, IndexError):  # 32-bit integer and float modes: no hash of theirs
            assert got.threatexchange_value is None, name
            continue
        if theirs == got.value.hex() or quality < LOW_QUALITY:
            assert got.threatexchange_value is None, name
            continue
        differ.add(name)
        assert got.threatexchange_value is not None, name
        assert (got.threatexchange_value.hex(), got.threatexchange_quality) == (theirs, quality)
    assert differ == CONVENTIONS_DIFFER


def test_a_one_bit_image_hashes_alike_both_ways_with_threatexchange_quality_zero(
    tmp_path: Path,
) -> None:
    path = pillow_modes(tmp_path)["1.png"]
    [got] = [h for h in hash_file(path) if h.signal_type == "pdq"]
    assert pdq_from_bytes(path.read_bytes()) == (got.value.hex(), 0)
    assert got.quality == 100 and got.threatexchange_value is None


def test_a_palette_image_with_transparency_hashes_its_colours_without_a_warning(
    tmp_path: Path,
) -> None:
    path = pillow_modes(tmp_path)["quantized.png"]
    with Image.open(path) as image:
        assert image.mode == "P" and isinstance(image.info["transparency"], bytes)
        colours = np.asarray(image.convert("RGBA"))[:, :, :3]
    [got] = [h for h in hash_file(path) if h.signal_type == "pdq"]  # warnings are errors here
    assert (got.value, got.quality) == pdq_of_pixels(colours)
