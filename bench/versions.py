"""Latency, worker throughput and peak memory of the image-version pipeline, against plain Pillow.

    .venv/bin/python bench/versions.py [--rounds N]

Every "image" is one 4000x3000 (12 MP) JPEG turned into the three `photos` versions (thumb, medium,
large: app/schema/photos.yml), with the same output formats, qualities and WebP effort/method (4) on
both sides. Ours is what a worker job runs: app.imaging.prepare (one decode), then the three
versions rendered side by side in threads. Pillow is the obvious single-threaded implementation.

1. Latency: one image at a time, ours against Pillow (and against our previous pipeline, which
   decoded the file once per version), rounds interleaved.
2. Worker throughput: N images at once (N = CPU count, the WORKER_CONCURRENCY default), ours in N
   threads, against Pillow sequential (a plain Pillow worker) and against Pillow in a pool of N
   processes (Pillow on every core too: the per-core comparison).
3. Where the time goes: CPU milliseconds per stage of one image, on each side.
4. Peak RSS rendering a 50 MP JPEG (ours also with N of them at once), in a fresh subprocess per
   case, so nothing the parent allocated is counted.

Targets: >= 3x Pillow's images per second; peak RSS < 300 MB for a 50 MP source.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyvips
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.imaging import prepare, render_version
from app.settings import ROOT
from app.tables import load_tables
from app.version_spec import VersionSpec

# The three example versions: those of app/schema/photos.yml, as the server reads them.
PHOTOS_VERSIONS = load_tables(ROOT / "app" / "schema")["photos"].properties["image"].upload_options().versions
ROUNDS = 6
CONCURRENCY = os.cpu_count() or 1
RSS_TARGET_MB = 300
RATIO_TARGET = 3.0

# Threads for the versions of the images in flight, as asyncio.to_thread gives the worker.
_VERSION_THREADS = ThreadPoolExecutor(3 * CONCURRENCY, thread_name_prefix="version")


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
    """What a worker job does: one decode, then the three versions side by side."""
    prepared = prepare(source, PHOTOS_VERSIONS)
    return [r.data for r in _VERSION_THREADS.map(prepared.render, PHOTOS_VERSIONS)]


def render_each_alone(source: bytes) -> list[bytes]:
    """Our previous pipeline, for comparison: each version decoded from the file on its own, in turn."""
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
    return _pillow_save(resized, spec)


def _pillow_save(resized: Image.Image, spec: VersionSpec) -> bytes:
    out = io.BytesIO()
    if spec.output.format == "jpeg":
        resized.save(out, "JPEG", quality=spec.output.quality, progressive=spec.output.progressive)
    else:
        resized.save(out, "WEBP", quality=spec.output.quality)
    return out.getvalue()


def seconds_per_image(
    renderers: dict[str, Callable[[bytes], list[bytes]]], source: bytes, rounds: int
) -> dict[str, tuple[float, float]]:
    """Mean (wall, CPU) seconds per image, one at a time, rounds interleaved so neither side gets the
    warmer machine. CPU counts every thread of this process: it moves far less with the machine's load."""
    spent = {name: [0.0, 0.0] for name in renderers}
    for render in renderers.values():
        render(source)  # warm-up: first-call library initialisation is not what we measure
    for _ in range(rounds):
        for name, render in renderers.items():
            wall, cpu = time.perf_counter(), time.process_time()
            render(source)
            spent[name][0] += time.perf_counter() - wall
            spent[name][1] += time.process_time() - cpu
    return {name: (wall / rounds, cpu / rounds) for name, (wall, cpu) in spent.items()}


_pool_source = b""


def _pool_init(source: bytes) -> None:
    global _pool_source
    _pool_source = source


def _pillow_job(_: int) -> int:
    return len(render_with_pillow(_pool_source))


def _vips_job(source: bytes) -> int:
    return len(render_with_vips(source))


@contextmanager
def pillow_pool(source: bytes) -> Iterator[Executor]:
    """N Pillow processes (spawned: clean interpreters), each given the source once, started and warm."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(CONCURRENCY, mp_context=context, initializer=_pool_init, initargs=(source,)) as pool:
        list(pool.map(_pillow_job, range(CONCURRENCY)))
        yield pool


def images_per_second(source: bytes, pool: Executor, rounds: int) -> dict[str, float]:
    """Images/s with N images in flight: ours in N threads, Pillow in N processes; rounds interleaved."""
    spent = {"vips": 0.0, "pillow_pool": 0.0}
    count = 3 * CONCURRENCY  # images per round and side
    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="image") as images:
        list(images.map(_vips_job, [source] * CONCURRENCY))  # warm-up
        for _ in range(rounds):
            started = time.perf_counter()
            list(images.map(_vips_job, [source] * count))
            spent["vips"] += time.perf_counter() - started
            started = time.perf_counter()
            list(pool.map(_pillow_job, range(count)))
            spent["pillow_pool"] += time.perf_counter() - started
    return {name: count * rounds / seconds for name, seconds in spent.items()}


def _verdict(ratio: float) -> str:
    return f"{ratio:.2f}x ({'meets' if ratio >= RATIO_TARGET else 'MISSES'} >= {RATIO_TARGET:g}x)"


def throughput(rounds: int) -> None:
    source = make_photo(4000, 3000)
    print(
        f"12 MP source: 4000x3000 JPEG, {len(source) / 1e6:.1f} MB, into thumb+medium+large; {rounds} rounds; "
        f"{CONCURRENCY} CPUs; libvips {pyvips.concurrency_get()} threads per pipeline; "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    renderers: dict[str, Callable[[bytes], list[bytes]]] = {
        "vips": render_with_vips,
        "alone": render_each_alone,
        "pillow": render_with_pillow,
    }
    seconds = seconds_per_image(renderers, source, rounds)
    vips, alone, pillow = (1 / seconds[name][0] for name in ("vips", "alone", "pillow"))
    print("  one image at a time (latency; CPU ms per image, all threads):")
    for name, label in (
        ("vips", "ours (one decode, versions in parallel)"),
        ("alone", "ours before (a decode per version)"),
        ("pillow", "Pillow (single-threaded)"),
    ):
        wall, cpu = seconds[name]
        print(f"    {label:40s} {wall * 1000:5.0f} ms = {1 / wall:5.2f} images/s; CPU {cpu * 1000:4.0f} ms")
    print(f"    ours / Pillow: {_verdict(vips / pillow)}; before: {alone / pillow:.2f}x")
    cpu_ratio = seconds["pillow"][1] / seconds["vips"][1]
    print(f"    Pillow's CPU per image / ours: {cpu_ratio:.2f}x (the ceiling for any equal use of the cores)")
    with pillow_pool(source) as pool:
        rates = images_per_second(source, pool, rounds)
    ours, pooled = rates["vips"], rates["pillow_pool"]
    print(f"  {CONCURRENCY} images at a time (a worker's throughput with WORKER_CONCURRENCY={CONCURRENCY}):")
    n = CONCURRENCY
    print(f"    ours, {n} images in threads        {ours:5.2f} images/s")
    print(f"    Pillow sequential (one process)  {pillow:5.2f} images/s; ours / it: {_verdict(ours / pillow)}")
    print(f"    Pillow, pool of {n} processes      {pooled:5.2f} images/s; ours / it: {_verdict(ours / pooled)}")
    print(f"  load average {os.getloadavg()[0]:.2f} at the end")
    profile(source)


def profile(source: bytes) -> None:
    """CPU ms per stage of one image on each side (all of the process's threads counted)."""
    thumb, medium, large = PHOTOS_VERSIONS
    prepared = prepare(source, PHOTOS_VERSIONS)
    shared = pyvips.Image.thumbnail_buffer(source, 1600, height=1200, size="force").copy_memory()
    decoded = _pillow_decode(source)
    pil_large = decoded.resize((1600, 1200), Image.Resampling.LANCZOS)
    lanczos = Image.Resampling.LANCZOS
    stages: list[tuple[str, Callable[[], object]]] = [
        ("ours: decode once, to 1600x1200 (shrink-on-load + resize)", lambda: prepare(source, PHOTOS_VERSIONS)),
        ("ours: large, WebP-encode 1600x1200", lambda: prepared.render(large)),
        ("ours: medium, resize from the decode + JPEG-encode", lambda: prepared.render(medium)),
        ("ours: thumb, resize from the decode + crop + WebP-encode", lambda: prepared.render(thumb)),
        ("Pillow: decode 4000x3000 + exif_transpose", lambda: _pillow_decode(source)),
        ("Pillow: large, LANCZOS resize from 4000x3000", lambda: decoded.resize((1600, 1200), lanczos)),
        ("Pillow: large, WebP-encode 1600x1200", lambda: _pillow_save(pil_large, large)),
        ("Pillow: medium, LANCZOS resize + JPEG-encode", lambda: _pillow_version(decoded, medium)),
        ("Pillow: thumb, ImageOps.fit + WebP-encode", lambda: _pillow_version(decoded, thumb)),
        ("libvips WebP-encode of the same 1600x1200 pixels, for comparison", lambda: shared.webpsave_buffer(Q=80)),
    ]
    print("  CPU ms per stage, one image (mean of 5 after a warm-up):")
    for label, run in stages:
        run()
        started = time.process_time()
        for _ in range(5):
            run()
        print(f"    {label:66s} {(time.process_time() - started) / 5 * 1000:5.0f}")


def _pillow_decode(source: bytes) -> Image.Image:
    with Image.open(io.BytesIO(source)) as opened:
        return ImageOps.exif_transpose(opened)


def peak_rss() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "50mp.jpg"
        make_photo(8660, 5774, path)
        print(f"50 MP source: 8660x5774 JPEG, {path.stat().st_size / 1e6:.1f} MB")
        labels = {
            "vips": "ours, one image",
            "vips-concurrent": f"ours, {CONCURRENCY} images at once",
            "pillow": "Pillow, one image",
        }
        for library, label in labels.items():
            baseline, peak = _child_rss(library, path)
            verdict = "meets" if peak < RSS_TARGET_MB else "MISSES"
            print(
                f"  {label:22s} peak RSS {peak:4.0f} MB, of which {baseline:.0f} MB before rendering"
                f" ({verdict} < {RSS_TARGET_MB} MB)"
            )


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
    if library == "vips-concurrent":  # a worker with WORKER_CONCURRENCY images in hand
        with ThreadPoolExecutor(CONCURRENCY) as images:
            outputs = [v for vs in images.map(render_with_vips, [source] * CONCURRENCY) for v in vs]
    else:
        outputs = render_with_vips(source) if library == "vips" else render_with_pillow(source)
    assert outputs and all(outputs)
    print(f"{baseline:.1f} {_peak_rss_mb():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"measurement rounds (default {ROUNDS})")
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    started = time.perf_counter()
    throughput(args.rounds)
    peak_rss()
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
