"""Hash a local file into the signal values the consortium shares; the content stays here.

Every file gets md5 and sha256. Images (anything Pillow decodes) also get PDQ and its
quality, computed by the `pdqhash` package (a binding of facebook/ThreatExchange's C++ PDQ)
on the RGB pixels, as python-threatexchange does. Videos get vPDQ from the `vpdq` package
(ThreatExchange's own binding, decoding with FFmpeg's libraries): one PDQ hash a sampled
frame, `vpdq_fps` frames a second (0 hashes every frame), plus `video_md5`, the md5 of the
file. A PDQ quality below 50 is flagged as low: such hashes match poorly and are refused for
submission unless forced. A video's quality is the median of its frames' qualities.
"""

from __future__ import annotations

import hashlib
import mimetypes
import statistics
from pathlib import Path

import numpy as np
import pdqhash  # type: ignore[import-untyped]
import vpdq  # type: ignore[import-not-found]
from PIL import Image, UnidentifiedImageError

from node.errors import HashingError
from protocol.errors import ValidationError
from protocol.signals import MAX_VPDQ_FRAMES, VpdqFrame, encode_vpdq

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


#: (signal type, value, PDQ quality 0..100 for pdq and vpdq, else None)
FileHash = tuple[str, bytes, int | None]


def is_low_quality(quality: int | None) -> bool:
    return quality is not None and quality < LOW_QUALITY


def hash_file(path: str | Path, vpdq_fps: float = 1.0) -> list[FileHash]:
    """Every signal value of the file at `path`; raises HashingError if it cannot be read,
    or if it looks like an image or video that fails to decode."""
    if vpdq_fps < 0:
        raise HashingError("the vPDQ frame rate is 0 (every frame) or more")
    path = Path(path)
    md5, sha256, head = _digests(path)
    out: list[FileHash] = [("md5", md5, None), ("sha256", sha256, None)]
    image = _pdq_of_image(path)
    if image is not None:
        out.append(image)
    elif _looks_like_video(path, head):
        out.append(_vpdq_of_video(path, vpdq_fps))
        out.append(("video_md5", md5, None))
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
            rgb = np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        return None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise HashingError(f"cannot decode image {path}: {e}") from e
    value, quality = pdq_of_pixels(rgb)
    return ("pdq", value, quality)


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
    return ("vpdq", value, quality)
