#!/usr/bin/env python3
"""Writes a tiny labelled photo folder into Tests/Fixtures/finetune/ for the finetune tests.
Run by hand, never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_finetune_fixtures.py

photos/{train,validation}/{cat,dog,fish}/NN.jpg|png: 48×48 images whose class shows in their
colours and stripes (so a head on any base can separate them), saved as JPEG and PNG like a
user's folder; plus broken/ with one class folder holding a file that is no image, and
one_class/ with a single class.
"""
import pathlib
import shutil

import numpy as np
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent / "finetune"
COLOURS = {"cat": (200, 120, 40), "dog": (40, 90, 200), "fish": (60, 180, 80)}


def image(rng, cls, index):
    base = np.array(COLOURS[cls], dtype=np.float32)
    pixels = rng.normal(0, 35, (48, 48, 3)) + base
    if cls == "fish":
        pixels[:, ::6] += 60
    elif cls == "dog":
        pixels[::8] -= 50
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rng = np.random.default_rng(12)
    for split, count in (("train", 8), ("validation", 4)):
        for cls in COLOURS:
            folder = OUT / "photos" / split / cls
            folder.mkdir(parents=True)
            for index in range(count):
                ext = "png" if index % 3 == 0 else "jpg"
                image(rng, cls, index).save(folder / f"{index:02d}.{ext}")
    broken = OUT / "broken" / "cat"
    broken.mkdir(parents=True)
    image(rng, "cat", 0).save(broken / "ok.jpg")
    (broken / "not_a_photo.jpg").write_bytes(b"this is not a jpeg")
    (OUT / "broken" / "dog").mkdir()
    image(rng, "dog", 0).save(OUT / "broken" / "dog" / "ok.png")
    one = OUT / "one_class" / "cat"
    one.mkdir(parents=True)
    image(rng, "cat", 1).save(one / "a.jpg")
    print("wrote", sum(1 for _ in OUT.rglob("*.*")), "files")


if __name__ == "__main__":
    main()
