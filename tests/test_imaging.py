"""The libvips pipeline, fed images made here: geometry, formats, guards against hostile input."""

from __future__ import annotations

import io
import math
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import pyvips
from PIL import Image, ImageCms

from app.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    ImageRejected,
    prepare,
    probe,
    render_version,
)
from app.settings import ROOT
from app.tables import load_tables
from app.version_spec import VersionSpec, parse_versions

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def spec(
    resize: dict[str, Any], output: dict[str, Any] | None = None, manipulate: dict[str, Any] | None = None
) -> VersionSpec:
    (parsed,) = parse_versions([{"name": "v", "resize": resize, "output": output, "manipulate": manipulate}])
    return parsed


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def halves(size: tuple[int, int], first: tuple[int, int, int], second: tuple[int, int, int]) -> Image.Image:
    """Left half `first`, right half `second`: shows where a crop or rotation landed."""
    image = Image.new("RGB", size, first)
    image.paste(second, (size[0] // 2, 0, size[0], size[1]))
    return image


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    value = image.getpixel((x, y))
    assert isinstance(value, tuple)
    return value


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    """Lossy encoders move colours a little; a wrong crop or rotation moves them a lot."""
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected, strict=True))


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG whose IHDR claims a huge size but carries almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 2, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def photo() -> bytes:
    """400x300 JPEG: left half red, right half blue."""
    return encode(halves((400, 300), RED, BLUE), "JPEG", quality=95)


# --- geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resize", "size"),
    [
        ({"width": 200, "height": 200, "fit": "cover"}, (200, 200)),
        ({"width": 200, "height": 200, "fit": "contain"}, (200, 200)),
        ({"width": 200, "height": 200, "fit": "fill"}, (200, 200)),
        ({"width": 200, "height": 200, "fit": "inside"}, (200, 150)),
        ({"width": 200, "height": 200, "fit": "outside"}, (267, 200)),
        ({"width": 100}, (100, 75)),
        ({"height": 150, "fit": "fill"}, (200, 150)),
        ({"width": 800, "fit": "inside"}, (800, 600)),
        ({"width": 123, "height": 45, "fit": "cover", "position": "attention"}, (123, 45)),
        ({"width": 123, "height": 45, "fit": "cover", "position": "entropy"}, (123, 45)),
        ({"width": 123, "height": 45, "fit": "cover", "position": "right_bottom"}, (123, 45)),
        # without_enlargement: never upscale; contain still fills its canvas.
        ({"width": 800, "height": 800, "fit": "cover", "without_enlargement": True}, (400, 300)),
        ({"width": 200, "height": 800, "fit": "cover", "without_enlargement": True}, (200, 300)),
        ({"width": 800, "height": 800, "fit": "inside", "without_enlargement": True}, (400, 300)),
        ({"width": 800, "height": 800, "fit": "outside", "without_enlargement": True}, (400, 300)),
        ({"width": 800, "height": 100, "fit": "fill", "without_enlargement": True}, (400, 100)),
        ({"width": 800, "height": 800, "fit": "contain", "without_enlargement": True}, (800, 800)),
        ({"width": 1000, "without_enlargement": True}, (400, 300)),
    ],
)
def test_output_dimensions_follow_the_fit(photo: bytes, resize: dict[str, Any], size: tuple[int, int]) -> None:
    rendered = render_version(photo, spec(resize, {"format": "png"}))
    assert (rendered.width, rendered.height) == size
    assert decode(rendered.data).size == size


@pytest.mark.parametrize(
    ("position", "left", "right"),
    [
        ("left", RED, RED),
        ("right", BLUE, BLUE),
        ("center", RED, BLUE),
        ("left_top", RED, RED),
    ],
)
def test_cover_crops_at_the_position(position: str, left: tuple[int, ...], right: tuple[int, ...]) -> None:
    # 400x100 covering 100x100 is not scaled at all; three quarters of the width are cropped away.
    wide = encode(halves((400, 100), RED, BLUE), "PNG")
    image = decode(
        render_version(wide, spec({"width": 100, "height": 100, "position": position}, {"format": "png"})).data
    )
    assert close(pixel(image, 2, 50), left)
    assert close(pixel(image, 97, 50), right)


def test_contain_pads_with_transparency_where_the_format_has_alpha(photo: bytes) -> None:
    image = decode(render_version(photo, spec({"width": 200, "height": 200, "fit": "contain"}, {"format": "png"})).data)
    assert image.mode == "RGBA"
    assert pixel(image, 100, 10) == (0, 0, 0, 0)  # padding: 25 rows above the 200x150 picture
    assert close(pixel(image, 10, 100), (*RED, 255))


def test_contain_pads_jpeg_with_white_by_default_and_with_the_background_when_given(photo: bytes) -> None:
    white = decode(
        render_version(photo, spec({"width": 200, "height": 200, "fit": "contain"}, {"format": "jpeg"})).data
    )
    green = decode(
        render_version(
            photo, spec({"width": 200, "height": 200, "fit": "contain", "background": "#00ff00"}, {"format": "jpeg"})
        ).data
    )
    assert close(pixel(white, 100, 5), WHITE)
    assert close(pixel(green, 100, 5), GREEN)


def test_contain_position_places_the_picture(photo: bytes) -> None:
    image = decode(
        render_version(
            photo,
            spec(
                {"width": 200, "height": 200, "fit": "contain", "position": "top", "background": "#000"},
                {"format": "png"},
            ),
        ).data
    )
    assert close(pixel(image, 10, 5), RED)  # picture at the top...
    assert close(pixel(image, 10, 195), BLACK)  # ...padding below


def test_fill_ignores_the_aspect_ratio(photo: bytes) -> None:
    image = decode(render_version(photo, spec({"width": 50, "height": 300, "fit": "fill"}, {"format": "png"})).data)
    assert image.size == (50, 300)
    assert close(pixel(image, 5, 150), RED) and close(pixel(image, 45, 150), BLUE)


# --- orientation, animation, alpha, colour ------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    # Stored 300x200 with orientation 6 (rotate 90 degrees clockwise to display): shown 200x300,
    # the stored left half (blue) on top.
    stored = halves((300, 200), BLUE, RED)
    exif = stored.getexif()
    exif[0x0112] = 6
    source = encode(stored, "JPEG", quality=95, exif=exif.tobytes())

    assert probe(source) == ImageInfo(width=200, height=300, format="jpeg", pages=1)
    rendered = render_version(source, spec({"width": 100, "height": 100, "fit": "inside"}, {"format": "jpeg"}))
    image = decode(rendered.data)
    assert image.size == (rendered.width, rendered.height) == (67, 100)
    assert close(pixel(image, 33, 10), BLUE) and close(pixel(image, 33, 90), RED)
    assert 0x0112 not in image.getexif()  # no orientation tag left to rotate it a second time


def frames() -> list[Image.Image]:
    return [Image.new("RGB", (64, 48), colour) for colour in (RED, GREEN, BLUE)]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animations_render_their_first_frame(fmt: str) -> None:
    first, *rest = frames()
    source = encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0)
    assert probe(source).pages == 3
    rendered = render_version(source, spec({"width": 32}, {"format": "png"}))
    image = decode(rendered.data)
    assert image.size == (32, 24)
    assert getattr(image, "n_frames", 1) == 1
    assert close(pixel(image, 16, 12)[:3], RED)


def transparent_with_red_square() -> bytes:
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((*RED, 255), (25, 25, 75, 75))
    return encode(image, "PNG")


def test_alpha_survives_into_formats_that_have_it() -> None:
    image = decode(render_version(transparent_with_red_square(), spec({"width": 50}, {"format": "webp"})).data)
    assert image.mode == "RGBA"
    assert pixel(image, 2, 2)[3] == 0
    assert close(pixel(image, 25, 25), (*RED, 255))


def test_jpeg_flattens_onto_white() -> None:
    image = decode(render_version(transparent_with_red_square(), spec({"width": 50}, {"format": "jpeg"})).data)
    assert image.mode == "RGB"
    assert close(pixel(image, 2, 2), WHITE) and close(pixel(image, 25, 25), RED)


def test_flatten_removes_alpha_onto_the_colour() -> None:
    rendered = render_version(
        transparent_with_red_square(), spec({"width": 50}, {"format": "png"}, {"flatten": "#0000ff"})
    )
    image = decode(rendered.data)
    assert image.mode == "RGB"
    assert pixel(image, 2, 2) == BLUE and pixel(image, 25, 25) == RED


def test_greyscale_output_is_grey(photo: bytes) -> None:
    jpeg = decode(render_version(photo, spec({"width": 40}, {"format": "jpeg"}, {"greyscale": True})).data)
    webp = decode(render_version(photo, spec({"width": 40}, {"format": "webp"}, {"greyscale": True})).data)
    assert jpeg.mode == "L"
    red, green, blue = pixel(webp.convert("RGB"), 5, 5)
    assert abs(red - green) <= 3 and abs(green - blue) <= 3


def test_blur_softens_edges() -> None:
    checkerboard = Image.new("L", (64, 64), 0)
    for x in range(0, 64, 8):
        for y in range(0, 64, 8):
            if (x + y) // 8 % 2:
                checkerboard.paste(255, (x, y, x + 8, y + 8))
    source = encode(checkerboard, "PNG")
    sharp = pyvips.Image.new_from_buffer(render_version(source, spec({"width": 64}, {"format": "png"})).data, "")
    soft = pyvips.Image.new_from_buffer(
        render_version(source, spec({"width": 64}, {"format": "png"}, {"blur": 3})).data, ""
    )
    assert soft.deviate() < sharp.deviate() * 0.7


@pytest.mark.parametrize("mode", ["L", "I;16", "CMYK", "P", "LA"])
def test_unusual_colour_modes_come_out_as_8_bit_srgb(mode: str) -> None:
    image = Image.linear_gradient("L").resize((80, 60)).convert("RGB").convert(mode)
    source = encode(image, "JPEG" if mode == "CMYK" else "PNG")
    rendered = pyvips.Image.new_from_buffer(render_version(source, spec({"width": 40}, {"format": "webp"})).data, "")
    assert (rendered.width, rendered.format, rendered.interpretation) == (40, "uchar", "srgb")


def test_tiff_and_avif_inputs_are_read() -> None:
    tiff = encode(halves((80, 60), RED, BLUE), "TIFF")
    avif = pyvips.Image.black(80, 60, bands=3).cast("uchar").heifsave_buffer(compression="av1")
    assert probe(tiff) == ImageInfo(width=80, height=60, format="tiff", pages=1)
    assert probe(avif) == ImageInfo(width=80, height=60, format="avif", pages=1)
    for source in (tiff, avif):
        assert render_version(source, spec({"width": 40})).width == 40


# --- output -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "magic", "content_type"),
    [
        ("webp", (0, b"RIFF"), "image/webp"),
        ("jpeg", (0, b"\xff\xd8\xff"), "image/jpeg"),
        ("png", (0, b"\x89PNG\r\n\x1a\n"), "image/png"),
        ("avif", (4, b"ftypavif"), "image/avif"),
    ],
)
def test_each_format_has_its_magic_bytes(photo: bytes, fmt: str, magic: tuple[int, bytes], content_type: str) -> None:
    rendered = render_version(photo, spec({"width": 50}, {"format": fmt}))
    offset, signature = magic
    assert rendered.data[offset : offset + len(signature)] == signature
    assert (rendered.format, rendered.content_type) == (fmt, content_type)
    if fmt == "webp":
        assert rendered.data[8:12] == b"WEBP"


@pytest.mark.parametrize(("fmt", "default"), [("jpeg", 85), ("webp", 80), ("avif", 60)])
def test_quality_defaults_reach_the_encoder(photo: bytes, fmt: str, default: int) -> None:
    def render(quality: int | None) -> bytes:
        output = {"format": fmt} if quality is None else {"format": fmt, "quality": quality}
        return render_version(photo, spec({"width": 120}, output)).data

    assert render(None) == render(default)
    assert render(None) != render(default - 30)


def test_jpeg_quality_85_uses_the_standard_q85_tables(photo: bytes) -> None:
    ours = decode(render_version(photo, spec({"width": 120}, {"format": "jpeg"})).data)
    reference = decode(encode(Image.new("RGB", (8, 8)), "JPEG", quality=85))
    assert ours.quantization == reference.quantization  # type: ignore[attr-defined]


def test_progressive_jpeg_and_interlaced_png(photo: bytes) -> None:
    jpeg = decode(render_version(photo, spec({"width": 120}, {"format": "jpeg", "progressive": True})).data)
    baseline = decode(render_version(photo, spec({"width": 120}, {"format": "jpeg"})).data)
    png = decode(render_version(photo, spec({"width": 120}, {"format": "png", "progressive": True})).data)
    assert jpeg.info.get("progressive") == 1 and "progressive" not in baseline.info
    assert png.info.get("interlace") == 1


def source_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0131] = "secret-software"  # Software
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        halves((200, 100), RED, BLUE), "JPEG", exif=exif.tobytes(), icc_profile=icc, comment=b"private comment"
    )


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_metadata_is_stripped(fmt: str) -> None:
    source = source_with_metadata()
    assert b"SpyCam" in source  # the test input really carries it
    data = render_version(source, spec({"width": 100}, {"format": fmt})).data
    for marker in (b"SpyCam", b"secret-software", b"Exif\x00\x00", b"private comment"):
        assert marker not in data
    if fmt != "avif":  # Pillow reads the other three
        image = decode(data)
        assert not image.getexif()
        assert "icc_profile" not in image.info and "exif" not in image.info


# --- refusals -----------------------------------------------------------------------------


def test_decompression_bomb_is_refused_from_the_header() -> None:
    bomb = png_declaring(30000, 30000)
    assert len(bomb) < 1000
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as caught:
        render_version(bomb, spec({"width": 100}))
    assert time.perf_counter() - started < 0.5
    assert caught.value.reason == "image is 30000x30000 = 900000000 pixels, over the limit of 100000000"
    with pytest.raises(ImageRejected, match="over the limit"):
        probe(bomb)


def test_a_50_megapixel_header_is_within_the_default_limit() -> None:
    assert 8688 * 5792 <= DEFAULT_MAX_PIXELS
    with pytest.raises(ImageRejected, match=r"^not a decodable image"):  # passes the limit, then fails on data
        render_version(png_declaring(8688, 5792), spec({"width": 100}))


def test_the_limit_is_configurable(photo: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        probe(photo, max_pixels=100_000)
    assert caught.value.reason == "image is 400x300 = 120000 pixels, over the limit of 100000"


def test_the_output_size_is_limited_too(photo: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        render_version(photo, spec({"width": 1000, "height": 1000, "fit": "fill"}), max_pixels=500_000)
    assert caught.value.reason == "version is 1000x1000 = 1000000 pixels, over the limit of 500000"


def test_an_aspect_ratio_bomb_is_refused_before_resizing() -> None:
    needle = encode(Image.new("RGB", (1, 2000)), "PNG")  # 2000 pixels, but cover stretches it
    with pytest.raises(ImageRejected) as caught:
        render_version(needle, spec({"width": 1000, "height": 1000, "fit": "cover"}))
    assert caught.value.reason == ("the resized image is 1000x2000000 = 2000000000 pixels, over the limit of 100000000")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.mark.parametrize(
    "source",
    [
        SVG,
        b'\xef\xbb\xbf<?xml version="1.0"?>\n' + SVG,
        b"\n  <!-- drawn by hand -->\n" + SVG,
    ],
)
def test_svg_is_never_rasterised(source: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        render_version(source, spec({"width": 100}))
    assert caught.value.reason == "SVG is never rasterised; upload a PNG, JPEG, WebP, GIF, AVIF or TIFF instead"


def test_libvips_svg_loader_is_blocked_even_without_the_sniff() -> None:
    with pytest.raises(pyvips.Error, match="not in a known format"):
        pyvips.Image.new_from_buffer(SVG, "")


def test_pdf_is_refused() -> None:
    with pytest.raises(ImageRejected) as caught:
        probe(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n")
    assert caught.value.reason == "PDF is never rasterised; upload a PNG, JPEG, WebP, GIF, AVIF or TIFF instead"


@pytest.mark.parametrize("source", [b"", b"hello world", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200])
def test_garbage_is_refused(source: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        render_version(source, spec({"width": 10}))
    assert caught.value.reason.startswith("not a decodable image")
    assert "\n" not in caught.value.reason


def test_truncated_jpeg_is_refused_not_rendered_grey(photo: bytes) -> None:
    noisy = pyvips.Image.gaussnoise(400, 300, sigma=60).cast("uchar").jpegsave_buffer()
    for truncated in (noisy[: len(noisy) // 2], photo[: len(photo) // 2]):
        with pytest.raises(ImageRejected) as caught:
            render_version(truncated, spec({"width": 100}))
        assert caught.value.reason == "not a decodable image (VipsJpeg: premature end of JPEG image)"


# --- one decode for several versions ------------------------------------------------------

# The three versions of app/schema/photos.yml, as the server reads them.
PHOTOS = load_tables(ROOT / "app" / "schema")["photos"].properties["image"].upload_options().versions


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """3200x2400 JPEG with detail at every scale (gradients, rings, stripes): big enough for shrink-on-load."""
    xy = pyvips.Image.xyz(3200, 2400)
    rings = (((xy[0] - 1600) ** 2 + (xy[1] - 1200) ** 2) ** 0.5 / 9).sin() * 60
    red = xy[0] * (255 / 3200)
    green = xy[1] * (255 / 2400)
    blue = rings + 128 + ((xy[0] // 40) % 2) * 40
    image = red.bandjoin([green, blue]).cast("uchar").copy(interpretation="srgb")
    data: bytes = image.jpegsave_buffer(Q=90)
    return data


def psnr(a: bytes, b: bytes) -> float:
    """Peak signal-to-noise ratio between two decoded images of one size, in dB."""
    first, second = pyvips.Image.new_from_buffer(a, ""), pyvips.Image.new_from_buffer(b, "")
    assert (first.width, first.height, first.bands) == (second.width, second.height, second.bands)
    mse = ((first.cast("float") - second.cast("float")) ** 2).avg()
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_several_versions_share_one_decode_at_the_largest_size(big_photo: bytes) -> None:
    prepared = prepare(big_photo, PHOTOS)
    assert prepared.info == ImageInfo(width=3200, height=2400, format="jpeg", pages=1)
    assert prepared.shared_size == (1600, 1200)  # the large version's own size: it needs no second resize
    sizes = {spec.name: (r.width, r.height, r.format) for spec in PHOTOS for r in [prepared.render(spec)]}
    assert sizes == {"thumb": (200, 200, "webp"), "medium": (800, 600, "jpeg"), "large": (1600, 1200, "webp")}


def test_shared_decode_matches_decoding_per_version(big_photo: bytes) -> None:
    # Same encoders and settings either way; only the resampling path differs. The large version
    # comes out of the same thumbnail call, so it is identical; the smaller ones are resized from
    # the 1600x1200 decode instead of their own shrink-on-load. Measured against the ideal (the
    # whole source decoded at full size, then resized), both paths are equally close.
    prepared = prepare(big_photo, PHOTOS)
    full = pyvips.Image.new_from_buffer(big_photo, "").copy_memory()
    for spec in PHOTOS:
        shared, alone = prepared.render(spec), render_version(big_photo, spec)
        assert (shared.width, shared.height, shared.format) == (alone.width, alone.height, alone.format)
        if spec.name == "large":
            assert shared.data == alone.data
            continue
        assert psnr(shared.data, alone.data) > 40, spec.name  # visually the same
        w, h = (267, 200) if spec.name == "thumb" else (800, 600)
        ideal = full.thumbnail_image(w, height=h, size="force").extract_area((w - alone.width) // 2, 0, *_size(alone))
        reference = ideal.pngsave_buffer()  # the thumb's crop: centred, full height
        assert psnr(shared.data, reference) >= psnr(alone.data, reference) - 0.1, spec.name


def _size(rendered: Any) -> tuple[int, int]:
    return rendered.width, rendered.height


def test_versions_render_concurrently_from_one_preparation(big_photo: bytes) -> None:
    prepared = prepare(big_photo, PHOTOS)
    alone = [prepared.render(spec).data for spec in PHOTOS]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda s: prepared.render(s).data, PHOTOS * 2))
    assert together == alone * 2


def test_shared_decode_applies_exif_orientation_once() -> None:
    stored = halves((600, 400), BLUE, RED)  # orientation 6: upright 400x600, blue on top
    exif = stored.getexif()
    exif[0x0112] = 6
    source = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    specs = parse_versions(
        [
            {"name": "a", "resize": {"width": 200}, "output": {"format": "jpeg"}},
            {"name": "b", "resize": {"width": 50}, "output": {"format": "png"}},
        ]
    )
    prepared = prepare(source, specs)
    assert prepared.shared_size == (200, 300)
    for spec, size in zip(specs, [(200, 300), (50, 75)], strict=True):
        image = decode(prepared.render(spec).data)
        assert image.size == size
        middle = size[0] // 2
        assert close(pixel(image, middle, 2)[:3], BLUE) and close(pixel(image, middle, size[1] - 3)[:3], RED)
        assert 0x0112 not in image.getexif()


def test_shared_decode_keeps_alpha_and_flattens_jpeg() -> None:
    source = transparent_with_red_square()
    specs = parse_versions(
        [
            {"name": "a", "resize": {"width": 60}, "output": {"format": "webp"}},
            {"name": "b", "resize": {"width": 40}, "output": {"format": "jpeg"}},
        ]
    )
    prepared = prepare(source, specs)
    assert prepared.shared_size == (60, 60)
    webp, jpeg = (decode(prepared.render(spec).data) for spec in specs)
    assert webp.mode == "RGBA" and pixel(webp, 2, 2)[3] == 0 and close(pixel(webp, 30, 30), (*RED, 255))
    assert jpeg.mode == "RGB" and close(pixel(jpeg, 2, 2), WHITE) and close(pixel(jpeg, 20, 20), RED)


def test_shared_decode_of_an_animation_is_its_first_frame() -> None:
    first, *rest = frames()
    source = encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)
    specs = parse_versions([{"name": "a", "resize": {"width": 32}}, {"name": "b", "resize": {"width": 16}}])
    prepared = prepare(source, specs)
    assert prepared.info.pages == 3 and prepared.shared_size == (32, 24)
    for spec in specs:
        image = decode(prepared.render(spec).data)
        assert getattr(image, "n_frames", 1) == 1 and close(pixel(image, 8, 6)[:3], RED)


def test_shared_decode_covers_every_fit_and_enlargement(photo: bytes) -> None:
    resizes = [
        {"width": 123, "height": 45, "fit": "cover", "position": "attention"},
        {"width": 123, "height": 45, "fit": "cover", "position": "entropy"},
        {"width": 50, "height": 300, "fit": "fill"},
        {"width": 200, "height": 200, "fit": "contain"},
        {"width": 800, "fit": "inside"},  # enlarges: shared is then the source's own size
    ]
    specs = parse_versions([{"name": f"v{i}", "resize": r, "output": {"format": "png"}} for i, r in enumerate(resizes)])
    prepared = prepare(photo, specs)
    assert prepared.shared_size == (400, 300)
    for spec, size in zip(specs, [(123, 45), (123, 45), (50, 300), (200, 200), (800, 600)], strict=True):
        rendered = prepared.render(spec)
        assert (rendered.width, rendered.height) == decode(rendered.data).size == size
    # Enlarging from the shared full-size decode is what the version alone does from the file.
    assert prepared.render(specs[-1]).data == render_version(photo, specs[-1]).data


def test_a_version_refused_alone_leaves_the_others_and_the_shared_size_alone() -> None:
    needle = encode(Image.new("RGB", (10, 2000), RED), "PNG")
    specs = parse_versions(
        [
            {"name": "bomb", "resize": {"width": 1000, "height": 1000, "fit": "cover"}},  # 1000x200000 before the crop
            {"name": "a", "resize": {"height": 200}},
            {"name": "b", "resize": {"height": 100}},
        ]
    )
    prepared = prepare(needle, specs, max_pixels=1_000_000)
    assert prepared.shared_size == (1, 200)
    with pytest.raises(ImageRejected, match="the resized image is 1000x200000"):
        prepared.render(specs[0])
    assert (prepared.render(specs[1]).height, prepared.render(specs[2]).height) == (200, 100)


def test_too_big_to_share_streams_each_version_instead(big_photo: bytes) -> None:
    prepared = prepare(big_photo, PHOTOS, shared_max_bytes=1600 * 1200 * 3 - 1)
    assert prepared.shared_size is None
    for spec in PHOTOS:
        assert prepared.render(spec).data == render_version(big_photo, spec).data


def test_a_version_not_prepared_is_still_rendered(big_photo: bytes) -> None:
    prepared = prepare(big_photo, PHOTOS[:2])  # shared at 800x600: too small for the large version
    assert prepared.shared_size == (800, 600)
    assert prepared.render(PHOTOS[2]).data == render_version(big_photo, PHOTOS[2]).data


def test_an_undecodable_image_is_refused_once_for_all_versions(photo: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        prepare(photo[: len(photo) // 2], PHOTOS)
    assert caught.value.reason == "not a decodable image (VipsJpeg: premature end of JPEG image)"
    with pytest.raises(ImageRejected, match="over the limit"):
        prepare(png_declaring(30000, 30000), PHOTOS)
