"""The same picture in every Pillow mode a file keeps, as ThreatExchange's reference set
`pdq/data/misc-images/modes/` holds it (made there with `image.convert(mode).save(...)`),
made here from one of its sample images, plus the files where the two PDQ conventions part:
GIF (a palette, one frame or animated) and a palette quantised from RGBA.

Shared by the hashing unit tests and the cluster test of matching both conventions."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

PICTURE = Path(__file__).parent / "data" / "pdq" / "q0746.jpg"

#: file name -> the mode it is saved in (each format keeps that mode when read back).
SAVED_AS = {
    "RGB.png": "RGB",
    "RGBA.png": "RGBA",
    "L.png": "L",
    "LA.png": "LA",
    "1.png": "1",
    "I16.png": "I;16",
    "I.tiff": "I",
    "F.tiff": "F",
    "P.png": "P",
    "P.gif": "P",
    "CMYK.jpg": "CMYK",
    "CMYK.tiff": "CMYK",
    "YCbCr.tiff": "YCbCr",
    "LAB.tiff": "LAB",
}

#: The files whose python-threatexchange hash differs from the RGB one (measured: palette
#: 10..234 bits, CMYK all 256, LAB and YCbCr read as if they were RGB).
CONVENTIONS_DIFFER = frozenset(
    {"P.png", "P.gif", "animated.gif", "quantized.png", "CMYK.jpg", "CMYK.tiff"}
    | {"YCbCr.tiff", "LAB.tiff"}
)


def pillow_modes(directory: Path) -> dict[str, Path]:
    """Write the set into `directory`: file name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with Image.open(PICTURE) as opened:
        rgb = opened.convert("RGB")
    for name, mode in SAVED_AS.items():
        out[name] = directory / name
        rgb.convert(mode).save(out[name])
    out["animated.gif"] = directory / "animated.gif"
    mirrored = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rgb.save(out["animated.gif"], save_all=True, append_images=[mirrored], duration=100, loop=0)
    out["quantized.png"] = directory / "quantized.png"
    rgb.convert("RGBA").quantize().save(out["quantized.png"])
    return out
