"""Throughput and peak memory of the image-version pipeline, against plain Pillow.

    .venv/bin/python bench/versions.py

1. Renders the three `photos` versions (thumb, medium, large) of a generated 12 MP JPEG with
   app.imaging (libvips) and with a plain Pillow implementation, and prints source images
   per second for both (each "image" is all three versions) and the ratio.
2. Renders the same versions of a 50 MP JPEG in a fresh subprocess per library and prints
   the child's peak RSS, so nothing the parent allocated is counted.

Targets: libvips >= 3x Pillow's throughput; peak RSS < 300 MB for a 50 MP source.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyvips
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.imaging import render_version
from app.version_spec import VersionSpec, parse_versions

PHOTOS_VERSIONS = parse_versions(
    [
        {
            "name": "thumb",
            "resize": {"width": 200, "height": 200, "fit": "cover", "position": "center"},
            "output": {"format": "webp", "quality": 80},
        },
        {
            "name": "medium",
            "resize": {"width": 800, "fit": "inside"},
            "output": {"format": "jpeg", "quality": 85, "progressive": True},
        },
        {
            "name": "large",
            "resize": {"width": 1600, "height": 1600, "fit": "inside", "without_enlargement": True},
            "output": {"format": "webp", "quality": 80},
        },
    ]
)
ROUNDS = 6
RSS_TARGET_MB = 300
RATIO_TARGET = 3.0


def make_photo(width: int, height: int, path: Path | None = None) -> bytes:
    """A JPEG that compresses like a photo (~1.5 bits/pixel at Q90).

    Natural scenes have roughly 1/f spectra, so the content is fractal noise (octaves of noise,
    coarse ones strongest) per channel, plus a gradient, hard edges and mild sensor noise.
    """
    xy = pyvips.Image.xyz(width, height)
    edges = ((xy[0] // 211 + xy[1] // 157) % 2) * 30
    base = [_fractal(width, height) for _ in range(3)]
    channels = [base[0], base[0] * 0.6 + base[1] * 0.4, base[0] * 0.5 + base[2] * 0.5]
    red, green, blue = (
        c * 0.25 + 110 + xy[0] * (40 / width) + edges + pyvips.Image.gaussnoise(width, height, sigma=3, mean=0)
        for c in channels
    )
    image = red.bandjoin([green, blue]).cast("uchar").copy(interpretation="srgb")
    if path is None:
        return image.jpegsave_buffer(Q=90)
    image.jpegsave(str(path), Q=90)
    return b""


def _fractal(width: int, height: int) -> pyvips.Image:
    total = pyvips.Image.black(width, height)
    for octave in range(2, 9):
        step = 2**octave
        noise = pyvips.Image.gaussnoise(width // step + 2, height // step + 2, sigma=1, mean=0)
        total += noise.resize(step, kernel="linear").crop(0, 0, width, height) * step
    return total


def render_with_vips(source: bytes) -> list[bytes]:
    return [render_version(source, spec).data for spec in PHOTOS_VERSIONS]


def render_with_pillow(source: bytes) -> list[bytes]:
    """The obvious Pillow version of the same three specs; decodes once for all three (its best case)."""
    with Image.open(io.BytesIO(source)) as opened:
        image = ImageOps.exif_transpose(opened)
    return [_pillow_version(image, spec) for spec in PHOTOS_VERSIONS]


def _pillow_version(image: Image.Image, spec: VersionSpec) -> bytes:
    width, height = spec.resize.width, spec.resize.height
    if spec.resize.fit == "cover" and width and height:
        resized = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    else:
        scale = min((width or image.width) / image.width, (height or image.height) / image.height)
        if spec.resize.without_enlargement:
            scale = min(scale, 1.0)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if spec.output.format == "jpeg":
        resized.save(out, "JPEG", quality=spec.output.quality, progressive=spec.output.progressive)
    else:
        resized.save(out, "WEBP", quality=spec.output.quality)
    return out.getvalue()


def seconds_per_image(renderers: dict[str, Callable[[bytes], list[bytes]]], source: bytes) -> dict[str, float]:
    """Mean seconds per source image, rounds interleaved so neither library gets the warmer machine."""
    spent = dict.fromkeys(renderers, 0.0)
    for render in renderers.values():
        render(source)  # warm-up: first-call library initialisation is not what we measure
    for _ in range(ROUNDS):
        for name, render in renderers.items():
            started = time.perf_counter()
            render(source)
            spent[name] += time.perf_counter() - started
    return {name: total / ROUNDS for name, total in spent.items()}


def throughput() -> None:
    source = make_photo(4000, 3000)
    print(f"12 MP source: 4000x3000 JPEG, {len(source) / 1e6:.1f} MB; {ROUNDS} rounds of thumb+medium+large")
    seconds = seconds_per_image({"vips": render_with_vips, "pillow": render_with_pillow}, source)
    vips, pillow = 1 / seconds["vips"], 1 / seconds["pillow"]
    print(f"  libvips ({pyvips.concurrency_get()} threads): {vips:5.2f} images/s")
    print(f"  Pillow:              {pillow:5.2f} images/s")
    verdict = "meets" if vips / pillow >= RATIO_TARGET else "MISSES"
    print(f"  ratio: {vips / pillow:.2f}x; {verdict} the >= {RATIO_TARGET:g}x target")
    print(
        f"  shared floor: WebP-encoding the 1600px version takes {_webp_floor_ms(source):.0f} ms in both "
        "(same libwebp, effort/method 4)"
    )


def _webp_floor_ms(source: bytes) -> float:
    large = pyvips.Image.thumbnail_buffer(source, 1600, height=1600).copy_memory()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        large.webpsave_buffer(Q=80)
    return (time.perf_counter() - started) / ROUNDS * 1000


def peak_rss() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "50mp.jpg"
        make_photo(8660, 5774, path)
        print(f"50 MP source: 8660x5774 JPEG, {path.stat().st_size / 1e6:.1f} MB")
        for library in ("vips", "pillow"):
            baseline, peak = _child_rss(library, path)
            verdict = (
                "" if library == "pillow" else ("  (meets < 300 MB)" if peak < RSS_TARGET_MB else "  (MISSES < 300 MB)")
            )
            print(f"  {library:7s} peak RSS: {peak:6.0f} MB, of which {baseline:.0f} MB before rendering{verdict}")


def _child_rss(library: str, path: Path) -> tuple[float, float]:
    """Run one library in a fresh interpreter; return (MB after imports and reading, peak MB)."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", library, str(path)], check=True, capture_output=True, text=True
    )
    baseline, peak = result.stdout.split()
    return float(baseline), float(peak)


def _peak_rss_mb() -> float:
    # VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a child would report the
    # parent's peak (the parent has just generated a 50 MP image).
    status = Path("/proc/self/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def child(library: str, path: str) -> None:
    source = Path(path).read_bytes()
    baseline = _peak_rss_mb()
    outputs = render_with_vips(source) if library == "vips" else render_with_pillow(source)
    assert len(outputs) == 3 and all(outputs)
    print(f"{baseline:.1f} {_peak_rss_mb():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    started = time.perf_counter()
    throughput()
    peak_rss()
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
