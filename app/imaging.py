"""Render image versions with libvips: bytes in, bytes out.

The input is untrusted (anyone who can upload can send it), so everything here is
defensive: the format is sniffed and only raster loaders are reachable, the pixel count
is checked from the header before a single pixel is decoded, and a decoding error becomes
`ImageRejected` with a one-line reason rather than an exception from deep in libvips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pyvips

from app.version_spec import OutputSpec, ResizeSpec, VersionSpec

# 100 megapixels: a 50 MP camera frame (8688x5792 = 50.3 MP) passes with room to spare, while
# a decompression bomb (a few KB that declare 30000x30000) is refused. JPEG, PNG, TIFF and WebP
# stream through the thumbnailer, so even the largest accepted image costs ~100 MB beyond its own
# bytes; GIF and HEIF decode a whole frame first (up to 4 bytes/pixel, ~400 MB at this limit), so
# a memory-tight worker should pass a lower max_pixels.
DEFAULT_MAX_PIXELS = 100_000_000

# Loader nickname -> the format name we report. Anything else (SVG, PDF, ImageMagick, matrix,
# raw, vips, ...) is blocked process-wide below, so it cannot be reached even by mistake.
_ALLOWED_LOADERS = {
    "jpegload_source": "jpeg",
    "pngload_source": "png",
    "webpload_source": "webp",
    "gifload_source": "gif",
    "heifload_source": "heif",
    "tiffload_source": "tiff",
}
_ALLOWED_LOADER_CLASSES = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadHeif",
    "VipsForeignLoadTiff",
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")

# Passed to every load: fail on truncated or damaged data instead of rendering grey garbage.
# It has to go in the option string: the thumbnailer's own fail_on argument does not reach
# the JPEG loader in libvips 8.18 (a half-truncated JPEG renders without error).
_LOAD_OPTIONS = "fail_on=error"

# Several versions of one image share one in-memory decode (see `Prepared`) up to this size; a
# bigger one (versions as large as a huge original) is not worth the memory: each version then
# streams from the source through the thumbnailer instead, as a lone version always does.
SHARED_MAX_BYTES = 64 * 1024 * 1024
_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4, "double": 8}
_SMART_CROPS = ("entropy", "attention")

_ORIENTATIONS_SWAPPING_AXES = (5, 6, 7, 8)
_WHITE = (255.0, 255.0, 255.0)
_ALPHA_FORMATS = ("png", "webp", "avif")


class ImageRejected(Exception):
    """The input cannot or must not be turned into a version; `.reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int
    format: str
    content_type: str


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    pages: int


@dataclass(frozen=True)
class _Plan:
    """Geometry worked out from the header: resize to `scaled`, then crop or embed to `box`."""

    scaled: tuple[int, int]
    box: tuple[int, int]
    mode: str  # "crop", "embed" or "none"


def _configure_libvips() -> None:
    """Block every loader but the raster ones, and turn off the operation cache.

    The block is the backstop for `_sniff`: even a path that skips it (a future caller of
    pyvips elsewhere in the process) cannot make libvips parse SVG, PDF or other vector or
    scriptable formats. The cache only helps when the same image is processed repeatedly,
    which a version worker never does, and it would keep source buffers alive.
    """
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in _ALLOWED_LOADER_CLASSES:
        pyvips.operation_block_set(name, False)
    pyvips.cache_set_max(0)


_configure_libvips()


def probe(source: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read the header only: format, upright dimensions, page count; enforce the pixel limit."""
    header = _open_header(source, max_pixels)
    width, height = _upright_size(header)
    return ImageInfo(width=width, height=height, format=_format_name(header), pages=_pages(header))


def render_version(source: bytes, spec: VersionSpec, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Rendered:
    """Build one version of `source` as described by `spec` (first frame of animations)."""
    return prepare(source, [spec], max_pixels=max_pixels).render(spec)


def prepare(
    source: bytes,
    specs: Sequence[VersionSpec],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shared_max_bytes: int = SHARED_MAX_BYTES,
) -> Prepared:
    """Read `source` once for all of `specs`; then `render` each (from any thread, concurrently).

    With two or more versions, the source is decoded once, with shrink-on-load, to the smallest
    size that still covers every version (the largest version's own size, usually), kept in
    memory, and each version is resized from that; see `Prepared`. Raises `ImageRejected` when the
    image itself is refused (format, pixel limit, undecodable); a version that alone is refused
    (its own size over the limit) raises from `render` instead, so the others still get built.
    """
    header = _open_header(source, max_pixels)
    upright = _upright_size(header)
    plans: dict[VersionSpec, _Plan | ImageRejected] = {}
    for spec in specs:
        try:
            plans[spec] = _checked_plan(upright, spec.resize, max_pixels)
        except ImageRejected as rejected:
            plans[spec] = rejected
    has_icc = bool(header.get_typeof("icc-profile-data"))
    usable = [plan for plan in plans.values() if isinstance(plan, _Plan)]
    shared = None
    size = _shared_size(upright, usable)
    if len(usable) > 1 and size[0] * size[1] * _bytes_per_pixel(header) <= shared_max_bytes:
        try:
            # size="force": the size already keeps the aspect ratio (to the pixel), and must be
            # exact so that the largest version needs no second resize.
            shared = pyvips.Image.thumbnail_source(
                _reader(source),
                size[0],
                height=size[1],
                size="force",
                option_string=_LOAD_OPTIONS,
                **_colour(has_icc),
            ).copy_memory()
        except pyvips.Error as error:
            raise _undecodable(error) from None
    info = ImageInfo(width=upright[0], height=upright[1], format=_format_name(header), pages=_pages(header))
    return Prepared(source, info, plans, shared, has_icc=has_icc, max_pixels=max_pixels)


class Prepared:
    """An image read once, ready to render versions from.

    When several versions are wanted, `shared` holds the source decoded once at the smallest size
    covering them all (a 12 MP JPEG for the `photos` versions: one 1600x1200 decode instead of
    three decodes of the whole file), and each version is resized from it in memory. Quality is
    kept: libvips picks the same shrink-on-load for `shared` as for the largest version alone, and
    the smaller ones are resized from more pixels than their own shrink-on-load would keep (against
    a full-resolution resize they score the same PSNR; tests/test_imaging.py measures it). A
    version not covered by `shared` (not prepared, or `shared` too big to hold) streams from the
    source as a single version does.
    """

    def __init__(
        self,
        source: bytes,
        info: ImageInfo,
        plans: dict[VersionSpec, _Plan | ImageRejected],
        shared: pyvips.Image | None,
        *,
        has_icc: bool,
        max_pixels: int,
    ) -> None:
        self.info = info
        self._source = source
        self._plans = plans
        self._shared = shared
        self._has_icc = has_icc
        self._max_pixels = max_pixels

    @property
    def shared_size(self) -> tuple[int, int] | None:
        """The size of the in-memory decode the versions are resized from, if there is one."""
        return None if self._shared is None else (self._shared.width, self._shared.height)

    def render(self, spec: VersionSpec) -> Rendered:
        plan = self._plans.get(spec)
        if plan is None:
            plan = _checked_plan((self.info.width, self.info.height), spec.resize, self._max_pixels)
        if isinstance(plan, ImageRejected):
            raise ImageRejected(plan.reason)
        try:
            image = self._resized(plan, spec.resize)
            image = _fit(_to_srgb8(image), plan, spec)
            image = _manipulate(image, spec)
            data = _save(image, spec.output)
        except pyvips.Error as error:
            raise _undecodable(error) from None
        return Rendered(
            data=data,
            width=image.width,
            height=image.height,
            format=spec.output.format,
            content_type=spec.content_type,
        )

    def _resized(self, plan: _Plan, resize: ResizeSpec) -> pyvips.Image:
        shared = self._shared
        covered = shared is not None and (
            (shared.width, shared.height) == (self.info.width, self.info.height)  # all there is: enlarge from it
            or (plan.scaled[0] <= shared.width and plan.scaled[1] <= shared.height)
        )
        if shared is None or not covered:
            return _shrink(self._source, plan, resize, has_icc=self._has_icc)
        if plan.mode == "crop" and resize.position in _SMART_CROPS:
            return shared.thumbnail_image(plan.box[0], height=plan.box[1], crop=resize.position)
        if (shared.width, shared.height) == plan.scaled:
            return shared
        return shared.thumbnail_image(plan.scaled[0], height=plan.scaled[1], size="force")


# --- reading the header -------------------------------------------------------------------


def _open_header(source: bytes, max_pixels: int) -> pyvips.Image:
    _sniff(source)
    try:
        header = pyvips.Image.new_from_source(_reader(source), _LOAD_OPTIONS, access="sequential")
    except pyvips.Error as error:
        raise _undecodable(error) from None
    if header.get("vips-loader") not in _ALLOWED_LOADERS:
        raise ImageRejected(f"loader {header.get('vips-loader')} is not allowed")
    _check_pixels("image", header.width, header.height, max_pixels)
    return header


def _reader(source: bytes) -> pyvips.Source:
    # Zero-copy. The *_buffer entry points copy the whole input first (pyvips hands bytes to
    # libvips as a copied blob), which doubled peak memory for a large PNG.
    return pyvips.Source.new_from_memory(source)


def _sniff(source: bytes) -> None:
    """Refuse anything that is not one of the allowed raster formats, by its magic bytes."""
    head = source[:16]
    if (
        head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
        or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
    ):
        return
    raise ImageRejected(_why_unsupported(source))


def _why_unsupported(source: bytes) -> str:
    start = source[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<?xml", b"<svg", b"<!doctype svg", b"<!--")) and b"<svg" in start:
        return "SVG is never rasterised; upload a PNG, JPEG, WebP, GIF, AVIF or TIFF instead"
    if start.startswith(b"%pdf"):
        return "PDF is never rasterised; upload a PNG, JPEG, WebP, GIF, AVIF or TIFF instead"
    return "not a decodable image (not JPEG, PNG, WebP, GIF, AVIF/HEIF or TIFF)"


def _check_pixels(what: str, width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if pixels > max_pixels:
        raise ImageRejected(f"{what} is {width}x{height} = {pixels} pixels, over the limit of {max_pixels}")


def _upright_size(header: pyvips.Image) -> tuple[int, int]:
    if _int_field(header, "orientation", default=1) in _ORIENTATIONS_SWAPPING_AXES:
        return header.height, header.width
    return header.width, header.height


def _format_name(header: pyvips.Image) -> str:
    name = _ALLOWED_LOADERS[str(header.get("vips-loader"))]
    if name == "heif" and header.get_typeof("heif-compression") and header.get("heif-compression") == "av1":
        return "avif"
    return name


def _pages(header: pyvips.Image) -> int:
    return _int_field(header, "n-pages", default=1)


def _int_field(header: pyvips.Image, name: str, *, default: int) -> int:
    value = header.get(name) if header.get_typeof(name) else default
    return value if isinstance(value, int) else default


def _undecodable(error: pyvips.Error) -> ImageRejected:
    """One line from libvips' multi-line message: the first that names the actual problem."""
    lines = (line.strip() for line in str(error).splitlines())
    detail = next((line for line in lines if line and not line.startswith("unable to ")), "")
    return ImageRejected(f"not a decodable image ({detail})" if detail else "not a decodable image")


# --- geometry -----------------------------------------------------------------------------


def _plan(source: tuple[int, int], resize: ResizeSpec) -> _Plan:
    """Sharp's fit rules, computed up front so the output size is exact and known in advance."""
    w, h = source
    target_w, target_h = resize.width, resize.height
    if target_w is None or target_h is None:
        # One side given: the other follows the aspect ratio, whatever the fit.
        scale = target_w / w if target_w is not None else (target_h or h) / h
        scaled = _scaled(source, _no_enlargement(scale, resize))
        return _Plan(scaled=scaled, box=scaled, mode="none")
    if resize.fit == "fill":
        if resize.without_enlargement:
            target_w, target_h = min(target_w, w), min(target_h, h)
        return _Plan(scaled=(target_w, target_h), box=(target_w, target_h), mode="none")
    covering = resize.fit in ("cover", "outside")
    scale = (max if covering else min)(target_w / w, target_h / h)
    scaled = _scaled(source, _no_enlargement(scale, resize))
    if resize.fit == "cover":
        return _Plan(scaled=scaled, box=(min(scaled[0], target_w), min(scaled[1], target_h)), mode="crop")
    if resize.fit == "contain":
        return _Plan(scaled=scaled, box=(target_w, target_h), mode="embed")
    return _Plan(scaled=scaled, box=scaled, mode="none")


def _checked_plan(upright: tuple[int, int], resize: ResizeSpec, max_pixels: int) -> _Plan:
    plan = _plan(upright, resize)
    _check_pixels("version", *plan.box, max_pixels)
    # Cover resizes before it crops: a 1x2000 source covering 1000x1000 would first be
    # stretched to 1000x2000000, a bomb made of aspect ratio rather than of pixels.
    _check_pixels("the resized image", *plan.scaled, max_pixels)
    return plan


def _shared_size(upright: tuple[int, int], plans: Sequence[_Plan]) -> tuple[int, int]:
    """The smallest upright-aspect size at least as large as every plan's resize on both axes
    (the source's own size if any version enlarges: enlarging from it is what that version does)."""
    if not plans:
        return upright
    w, h = upright
    scale = min(1.0, max(max(plan.scaled[0] / w, plan.scaled[1] / h) for plan in plans))
    # ceil, less a hair for float error: never a pixel short of a version (round could be).
    return max(1, math.ceil(w * scale - 1e-6)), max(1, math.ceil(h * scale - 1e-6))


def _bytes_per_pixel(header: pyvips.Image) -> int:
    return int(header.bands) * _SAMPLE_BYTES.get(str(header.format), 8)


def _no_enlargement(scale: float, resize: ResizeSpec) -> float:
    return min(scale, 1.0) if resize.without_enlargement else scale


def _scaled(source: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(source[0] * scale)), max(1, round(source[1] * scale))


def _offsets(position: str, free_x: int, free_y: int) -> tuple[int, int]:
    """Where a `position` puts the image: `free_*` is the slack to share out on each axis."""
    parts = position.split("_")
    x = 0 if "left" in parts else free_x if "right" in parts else free_x // 2
    y = 0 if "top" in parts else free_y if "bottom" in parts else free_y // 2
    return x, y


# --- pixels -------------------------------------------------------------------------------


def _shrink(source: bytes, plan: _Plan, resize: ResizeSpec, *, has_icc: bool) -> pyvips.Image:
    """Decode at reduced size (JPEG/WebP shrink-on-load) and auto-rotate, via thumbnail."""
    colour = _colour(has_icc)
    if plan.mode == "crop" and resize.position in _SMART_CROPS:
        width, height = plan.box
        return pyvips.Image.thumbnail_source(
            _reader(source), width, height=height, crop=resize.position, option_string=_LOAD_OPTIONS, **colour
        )
    width, height = plan.scaled
    # "force" resizes to exactly this size; the plan already chose it to keep the aspect ratio.
    return pyvips.Image.thumbnail_source(
        _reader(source), width, height=height, size="force", option_string=_LOAD_OPTIONS, **colour
    )


def _colour(has_icc: bool) -> dict[str, str]:
    # An embedded profile is about to be stripped on save, so convert to sRGB while we still
    # know it; skipping this when there is none saves ~20% of the time on a 12 MP JPEG.
    return {"output_profile": "srgb"} if has_icc else {}


def _to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """One working space (8-bit sRGB, optional alpha) so later steps need no special cases."""
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _fit(image: pyvips.Image, plan: _Plan, spec: VersionSpec) -> pyvips.Image:
    box_w, box_h = plan.box
    if plan.mode == "none" or (image.width, image.height) == plan.box:
        return image
    if plan.mode == "crop":
        x, y = _offsets(spec.resize.position, image.width - box_w, image.height - box_h)
        return image.extract_area(x, y, box_w, box_h)
    image, background = _canvas_background(image, spec)
    x, y = _offsets(spec.resize.position, box_w - image.width, box_h - image.height)
    return image.embed(x, y, box_w, box_h, extend="background", background=background)


def _canvas_background(image: pyvips.Image, spec: VersionSpec) -> tuple[pyvips.Image, list[float]]:
    """Contain's padding: the given colour, else transparent (or white where there is no alpha)."""
    colour = spec.resize.background
    if colour is None:
        rgba = (0.0, 0.0, 0.0, 0.0) if spec.output.format in _ALPHA_FORMATS else (*_WHITE, 255.0)
    else:
        rgba = _rgba(colour)
    if rgba[3] < 255 and not image.hasalpha():
        image = image.bandjoin_const([255])
    return image, list(rgba if image.hasalpha() else rgba[:3])


def _manipulate(image: pyvips.Image, spec: VersionSpec) -> pyvips.Image:
    # Flatten before greyscale so the flatten colour is mixed in colour, then made grey.
    flatten = spec.manipulate.flatten or ("#ffffff" if spec.output.format == "jpeg" else None)
    if flatten is not None and image.hasalpha():
        image = image.flatten(background=list(_rgba(flatten)[:3]))
    if spec.manipulate.greyscale:
        image = image.colourspace("b-w")
    if spec.manipulate.blur > 0:
        image = _blur(image, spec.manipulate.blur)
    return image


def _blur(image: pyvips.Image, sigma: float) -> pyvips.Image:
    if not image.hasalpha():
        return image.gaussblur(sigma)
    # Premultiplied, so transparent pixels' (invisible) colour does not bleed into the edges.
    return image.premultiply().gaussblur(sigma).unpremultiply().cast("uchar")


def _save(image: pyvips.Image, output: OutputSpec) -> bytes:
    keep = pyvips.ForeignKeep.NONE  # no EXIF/XMP/IPTC/ICC: no GPS leaks, and sRGB is implied
    if output.format == "jpeg":
        return image.jpegsave_buffer(Q=output.quality, interlace=output.progressive, optimize_coding=True, keep=keep)
    if output.format == "png":
        # PNG stays lossless, as in sharp unless a palette is asked for: `quality` has no effect.
        return image.pngsave_buffer(interlace=output.progressive, keep=keep)
    if output.format == "avif":
        return image.heifsave_buffer(Q=output.quality, compression="av1", bitdepth=8, keep=keep)
    return image.webpsave_buffer(Q=output.quality, keep=keep)


def _rgba(colour: str) -> tuple[float, float, float, float]:
    """Channel values of a "#rrggbb" or "#rrggbbaa" colour, as version_spec normalises them."""
    digits = colour[1:]
    alpha = int(digits[6:8], 16) if len(digits) == 8 else 255
    return float(int(digits[0:2], 16)), float(int(digits[2:4], 16)), float(int(digits[4:6], 16)), float(alpha)
