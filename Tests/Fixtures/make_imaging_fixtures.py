#!/usr/bin/env python3
"""Writes Tests/Fixtures/imaging/: small images in every colour layout TLImaging decodes, and what
Keras makes of them (keras.utils.load_img + img_to_array, resized with each interpolation, and
keras.applications preprocess_input). Run by hand with ~/venv-tf/bin/python; CI never runs it.

Images come from one synthetic 37x23 pattern (smooth gradients, hard edges and seeded noise, so
every resampling filter has something to get wrong). Goldens are .npy files:
  decoded/<image>_<ext>.npy            uint8 [H, W, 3]   load_img(path) -> img_to_array
  resized/<image>_<interp>_<h>x<w>.npy uint8 [h, w, 3]   load_img(path, target_size, interpolation)
  cropped/<image>_<interp>_<h>x<w>.npy uint8             ... keep_aspect_ratio=True
  preprocessed/<mode>.npy              float32 [1, 16, 16, 3]  preprocess_input of the bilinear
                                                               16x16 resize of rgba.png
"""
import io
import json
import pathlib
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, features

import keras
from keras.applications import densenet, mobilenet_v2, vgg16

OUT = pathlib.Path(__file__).resolve().parent / "imaging"
IMAGES = OUT / "images"
WIDTH, HEIGHT = 37, 23


def pattern():
    """A deterministic RGB uint8 [23, 37, 3] test pattern."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rng = np.random.RandomState(20261123)
    r = 255 * x / (WIDTH - 1)
    g = 255 * y / (HEIGHT - 1)
    b = 127.5 + 127.5 * np.sin(x / 3.0) * np.cos(y / 4.0)
    rgb = np.stack([r, g, b], axis=-1)
    rgb[5:12, 8:20] = [250, 10, 30]        # a hard-edged block
    rgb[::7, :] = 255 - rgb[::7, :]        # thin stripes
    rgb += rng.normal(0, 12, rgb.shape)    # noise
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, bit_depth, interlaced=False):
    """A PNG writer for layouts Pillow cannot save (16-bit RGB, Adam7 interlacing).
    `samples` is [H, W, C] of ints < 2**bit_depth (bit_depth 8 or 16)."""
    height, width, _ = samples.shape
    dtype = ">u2" if bit_depth == 16 else "u1"

    def scanlines(block):
        return b"".join(b"\x00" + row.astype(dtype).tobytes() for row in block)

    if interlaced:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                raw += scanlines(sub)
    else:
        raw = scanlines(samples)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    path.write_bytes(data)


def exif_with_orientation(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def make_images():
    IMAGES.mkdir(parents=True, exist_ok=True)
    rgb = pattern()
    base = Image.fromarray(rgb, "RGB")
    gray = base.convert("L")
    alpha = Image.fromarray(((np.arange(WIDTH)[None, :] * 7 + np.arange(HEIGHT)[:, None] * 11) % 256).astype(np.uint8), "L")

    base.save(IMAGES / "rgb.jpg", quality=90)
    base.save(IMAGES / "rgb444.jpg", quality=95, subsampling=0)
    base.save(IMAGES / "progressive.jpg", quality=85, progressive=True)
    gray.save(IMAGES / "gray.jpg", quality=90)
    base.convert("CMYK").save(IMAGES / "cmyk.jpg", quality=90)
    base.save(IMAGES / "rotated.jpg", quality=90, exif=exif_with_orientation(6))

    base.save(IMAGES / "rotated.png", exif=exif_with_orientation(8))
    rgba = base.copy()
    rgba.putalpha(alpha)
    rgba.save(IMAGES / "rgba.png")
    gray.save(IMAGES / "gray.png")
    la = gray.copy()
    la.putalpha(alpha)
    la.save(IMAGES / "gray_alpha.png")
    palette = base.quantize(colors=50)
    palette.info["transparency"] = 3
    palette.save(IMAGES / "palette.png", transparency=3)
    base.quantize(colors=16).save(IMAGES / "palette4bit.png", bits=4)
    gray.point(lambda v: 255 if v > 128 else 0).convert("1").save(IMAGES / "bilevel.png")
    # 16-bit: scale to the full range, and keep a dark region below 256 so Pillow's I;16 -> RGB
    # clipping (low byte if the high byte is zero, else 255) is exercised on both sides.
    gray16 = gray.copy()
    wide = np.asarray(gray16).astype(np.uint32) * 257
    wide[:, :6] = np.asarray(gray16)[:, :6] // 2
    write_png(IMAGES / "gray16.png", wide[:, :, None], color_type=0, bit_depth=16)
    rgb16 = rgb.astype(np.uint32) * 257 + (np.arange(WIDTH)[None, :, None] % 200)
    write_png(IMAGES / "rgb16.png", rgb16, color_type=2, bit_depth=16)
    write_png(IMAGES / "interlaced.png", rgb, color_type=2, bit_depth=8, interlaced=True)
    rgba16 = np.concatenate([rgb16, (np.asarray(alpha).astype(np.uint32) * 257)[:, :, None]], axis=-1)
    write_png(IMAGES / "rgba16_interlaced.png", rgba16, color_type=6, bit_depth=16, interlaced=True)

    # A larger image for strong downscaling (wide filter supports) and long nearest-neighbour
    # stepping; smooth plus noisy so it compresses to a few tens of kilobytes.
    rng = np.random.RandomState(7)
    y, x = np.mgrid[0:97, 0:151].astype(np.float64)
    large = np.stack([128 + 120 * np.sin(x / 9.0 + y / 13.0), 255 * (x * y) / (150 * 96),
                      128 + 100 * np.cos(np.hypot(x - 75, y - 48) / 6.0)], axis=-1)
    large += rng.normal(0, 20, large.shape)
    Image.fromarray(np.clip(np.rint(large), 0, 255).astype(np.uint8), "RGB").save(IMAGES / "large.png")

    # Not images, or broken ones.
    (IMAGES / "not_an_image.jpg").write_bytes(b"this is a text file, not a JPEG\n")
    jpeg = (IMAGES / "rgb.jpg").read_bytes()
    (IMAGES / "truncated.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    png = (IMAGES / "rgba.png").read_bytes()
    (IMAGES / "truncated.png").write_bytes(png[: len(png) * 2 // 3])
    # A PNG whose extension lies: format is detected from the bytes.
    (IMAGES / "png_named.jpg").write_bytes(png)


DECODED = ["rgb.jpg", "rgb444.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg", "rotated.jpg",
           "rgba.png", "gray.png", "gray_alpha.png", "palette.png", "palette4bit.png", "bilevel.png",
           "gray16.png", "rgb16.png", "interlaced.png", "rgba16_interlaced.png"]
INTERPOLATIONS = ["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"]
SIZES = [(16, 16), (50, 64), (29, 11), (23, 100)]   # (height, width): down, up, mixed, width only
LARGE_SIZES = [(7, 10), (41, 33), (97, 20), (13, 151), (60, 160)]  # from 97x151


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def load(name, **kwargs):
    return keras.utils.img_to_array(keras.utils.load_img(str(IMAGES / name), **kwargs), dtype="uint8")


def make_goldens():
    for name in DECODED:
        save(OUT / "decoded" / f"{name.replace('.', '_')}.npy", load(name))
    transposed = ImageOps.exif_transpose(keras.utils.load_img(str(IMAGES / "rotated.jpg")))
    save(OUT / "decoded" / "rotated_jpg_exif_transposed.npy", np.asarray(transposed, dtype=np.uint8))
    transposed = ImageOps.exif_transpose(keras.utils.load_img(str(IMAGES / "rotated.png")))
    save(OUT / "decoded" / "rotated_png_exif_transposed.npy", np.asarray(transposed, dtype=np.uint8))
    for name in ["rgba.png", "rgb.jpg"]:
        sizes = SIZES if name.endswith(".png") else SIZES[:2]
        for interpolation in INTERPOLATIONS:
            for height, width in sizes:
                array = load(name, target_size=(height, width), interpolation=interpolation)
                save(OUT / "resized" / f"{pathlib.Path(name).stem}_{interpolation}_{height}x{width}.npy", array)
    for interpolation in INTERPOLATIONS:
        for height, width in LARGE_SIZES:
            array = load("large.png", target_size=(height, width), interpolation=interpolation)
            save(OUT / "resized" / f"large_{interpolation}_{height}x{width}.npy", array)
    array = load("large.png", target_size=(120, 200), interpolation="nearest")
    save(OUT / "resized" / "large_nearest_120x200.npy", array)
    for interpolation in ["nearest", "bilinear", "bicubic"]:
        for height, width in [(16, 16), (20, 50), (40, 9)]:
            array = load("rgba.png", target_size=(height, width), interpolation=interpolation, keep_aspect_ratio=True)
            save(OUT / "cropped" / f"rgba_{interpolation}_{height}x{width}.npy", array)

    batch = load("rgba.png", target_size=(16, 16), interpolation="bilinear").astype("float32")[None]
    save(OUT / "preprocessed" / "input.npy", batch)
    save(OUT / "preprocessed" / "caffe.npy", vgg16.preprocess_input(batch.copy()))
    save(OUT / "preprocessed" / "tf.npy", mobilenet_v2.preprocess_input(batch.copy()))
    save(OUT / "preprocessed" / "torch.npy", densenet.preprocess_input(batch.copy()))

    versions = {"pillow": Image.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"),
                "zlib": features.version("zlib"), "keras": keras.__version__, "numpy": np.__version__}
    (OUT / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")


if __name__ == "__main__":
    make_images()
    make_goldens()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} files, {total} bytes, into {OUT}")
