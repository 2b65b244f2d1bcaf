"""Hash a local file into the signal values the consortium shares; the content stays here.

Every file gets md5 and sha256. Images (anything Pillow decodes) also get PDQ and its
quality, computed by the `pdqhash` package (a binding of facebook/ThreatExchange's C++ PDQ)
on the image converted to RGB, so that every Pillow mode hashes the picture a person sees.

python-threatexchange (and so HMA) hands pdqhash the decoded array as it is instead: palette
images give their palette indices as grey levels, CMYK its first three channels (the picture's
negative), LAB and YCbCr their channels as if RGB, 1-bit images 0/1 (the same bits, quality
0). For an image whose hash differs that way, the `FileHash` also carries
python-threatexchange's hash (`threatexchange_value`), so that a match can search both; it is
left out when threatexchange's hasher fails on the array (32-bit integer and float modes, PA)
or gives it a quality below 50 (threatexchange shares no such hash). docs/matching.md, "Two
PDQ conventions", has the table.

Videos get vPDQ from the `vpdq` package
(ThreatExchange's own binding, decoding with FFmpeg's libraries): one PDQ hash a sampled
frame, `vpdq_fps` frames a second (0 hashes every frame), plus `video_md5`, the md5 of the
file. A PDQ quality below 50 is flagged as low: such hashes match poorly and are refused for
submission unless forced. A video's quality is the median of its frames' qualities.
"""

from __future__ import annotations

import hashlib
import mimetypes
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash  # type: ignore[import-untyped]
import vpdq  # type: ignore[import-not-found]
from PIL import Image, UnidentifiedImageError

from node.errors import HashingError
from protocol.errors import ValidationError
from protocol.signals import MAX_VPDQ_FRAMES, VpdqFrame, encode_vpdq, value_text

#: Modes whose array python-threatexchange hashes is the RGB conversion's (alpha and padding
#: dropped, grey repeated, LA and I;16 converted): nothing else to compute for them.
_SAME_PIXELS_EITHER_WAY = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "I;16"})

#: PDQ's own cut-off (ThreatExchange's PDQ and vPDQ code use 50): below it, a hash is flagged.
LOW_QUALITY = 50
_READ_BLOCK = 1 << 20

# Leading bytes of video containers: MP4/MOV/3GP ("ftyp" box at offset 4), Matroska/WebM,
# AVI, FLV, ASF/WMV, MPEG program stream. Pillow is tried first, so images never get here.
_VIDEO_MAGIC = (
    (4, b"ftyp"),
    (0, b"\x1a\x45\xdf\xa3"),
    (8, b"AVI "),
    (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75"),
    (0, b"\x00\x00\x01\xba"),
)


@dataclass(frozen=True, slots=True)
class FileHash:
    """One signal value of a file."""

    signal_type: str
    value: bytes
    #: PDQ quality 0..100 for pdq and vpdq, else None.
    quality: int | None = None
    #: pdq only: the image's hash as python-threatexchange computes it, where that differs
    #: from `value` (the RGB hash), and its quality.
    threatexchange_value: bytes | None = None
    threatexchange_quality: int | None = None

    def to_json(self) -> dict[str, Any]:
        """As the operator API and `hashmesh hash --json` show it."""
        out: dict[str, Any] = {
            "signal_type": self.signal_type,
            "value": value_text(self.signal_type, self.value),
            "quality": self.quality,
            "low_quality": is_low_quality(self.quality),
        }
        if self.threatexchange_value is not None:
            out["threatexchange_value"] = self.threatexchange_value.hex()
            out["threatexchange_quality"] = self.threatexchange_quality
        return out


def is_low_quality(quality: int | None) -> bool:
    return quality is not None and quality < LOW_QUALITY


def hash_file(path: str | Path, vpdq_fps: float = 1.0) -> list[FileHash]:
    """Every signal value of the file at `path`; raises HashingError if it cannot be read,
    or if it looks like an image or video that fails to decode."""
    if vpdq_fps < 0:
        raise HashingError("the vPDQ frame rate is 0 (every frame) or more")
    path = Path(path)
    md5, sha256, head = _digests(path)
    out = [FileHash("md5", md5), FileHash("sha256", sha256)]
    image = _pdq_of_image(path)
    if image is not None:
        out.append(image)
    elif _looks_like_video(path, head):
        out.append(_vpdq_of_video(path, vpdq_fps))
        out.append(FileHash("video_md5", md5))
    return out


def pdq_of_pixels(rgb: np.ndarray) -> tuple[bytes, int]:
    """PDQ hash (32 bytes, the reference's bit order) and quality of an (h, w, 3) uint8 array."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def _digests(path: Path) -> tuple[bytes, bytes, bytes]:
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    head = b""
    try:
        with path.open("rb") as f:
            while block := f.read(_READ_BLOCK):
                if not head:
                    head = block[:64]
                md5.update(block)
                sha256.update(block)
    except OSError as e:
        raise HashingError(f"cannot read {path}: {e}") from e
    return md5.digest(), sha256.digest(), head


def _pdq_of_image(path: Path) -> FileHash | None:
    """PDQ of an image, or None if Pillow does not recognise the file as one."""
    try:
        with Image.open(path) as image:
            rgb = np.asarray(_as_rgb(image))
            same = image.mode in _SAME_PIXELS_EITHER_WAY
            as_decoded = None if same else _threatexchange_pixels(image)
    except UnidentifiedImageError:
        return None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise HashingError(f"cannot decode image {path}: {e}") from e
    value, quality = pdq_of_pixels(rgb)
    other = None if as_decoded is None else _threatexchange_pdq(as_decoded)
    # Below quality 50 python-threatexchange shares no hash; an equal one needs no search.
    if other is None or other[0] == value or other[1] < LOW_QUALITY:
        return FileHash("pdq", value, quality)
    return FileHash("pdq", value, quality, other[0], other[1])


def _as_rgb(image: Image.Image) -> Image.Image:
    """The image in RGB. A palette with transparency goes through RGBA, which gives the same
    colours: Pillow warns when such a palette is converted to RGB at once."""
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _threatexchange_pixels(image: Image.Image) -> np.ndarray | None:
    """The array python-threatexchange's PDQ hasher gives pdqhash for an image of a mode not
    in `_SAME_PIXELS_EITHER_WAY`: the decoded pixels as they are, a single channel repeated
    into three; None for a mode numpy cannot take as it is."""
    try:
        pixels = np.asarray(image)
    except (TypeError, ValueError):  # no array for this mode: threatexchange fails too
        return None
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, np.newaxis], 3, axis=2)
    return pixels


def _threatexchange_pdq(pixels: np.ndarray) -> tuple[bytes, int] | None:
    """pdqhash of the array as it is (no cast, as python-threatexchange calls it); None when
    pdqhash refuses it: 32-bit integer and float modes ("Buffer dtype mismatch"), two
    channels (PA). python-threatexchange's hasher fails on those too."""
    try:
        bits, quality = pdqhash.compute(pixels)
    except (ValueError, IndexError):
        return None
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def _looks_like_video(path: Path, head: bytes) -> bool:
    kind, _ = mimetypes.guess_type(path.name)
    if kind is not None and kind.startswith("video/"):
        return True
    return any(head[at : at + len(magic)] == magic for at, magic in _VIDEO_MAGIC)


def _vpdq_of_video(path: Path, fps: float) -> FileHash:
    seconds_per_hash = 0.0 if fps == 0 else 1.0 / fps
    try:
        features = vpdq.computeHash(str(path), seconds_per_hash=seconds_per_hash)
    # The binding raises a bare Exception for any decoding failure.
    except Exception as e:
        raise HashingError(f"cannot decode video {path}: {e}") from e
    if not features:
        raise HashingError(f"no frames decoded from video {path}")
    if len(features) > MAX_VPDQ_FRAMES:
        raise HashingError(
            f"{len(features)} frames exceed the {MAX_VPDQ_FRAMES} a vPDQ hash may hold; "
            "hash fewer frames a second"
        )
    frames = [
        VpdqFrame(
            pdq=bytes.fromhex(f.hex),
            quality=int(f.quality),
            frame_number=int(f.frame_number),
            timestamp_ms=round(float(f.timestamp) * 1000),
        )
        for f in features
    ]
    try:
        value = encode_vpdq(frames)
    except ValidationError as e:
        raise HashingError(f"vPDQ of {path} is out of range: {e}") from e
    quality = int(statistics.median(f.quality for f in frames))
    return FileHash("vpdq", value, quality)
