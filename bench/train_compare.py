#!/usr/bin/env python3
"""Training speed, tlhub against Keras 3 `fit` on the same images, the same network and the same
optimizer, interleaved rounds, medians. Run by hand with a release build:

    swift build -c release
    ~/venv-tf/bin/python bench/train_compare.py [--rounds 3] [--images 64] [--size 227] [--epochs 2]

Cases: AlexNet from scratch (`tlhub train --model alexnet`, every layer trained, ReLU, he_normal,
Adam) and a MobileNetV2 (alpha 0.35, random weights) fine-tuned with its last 10 layers unfrozen
(`tlhub finetune --unfreeze 10`, SGD with momentum; Keras: `base.trainable=True`, layers before
the last 10 frozen, `base(x, training=False)`). Images are random JPEGs in three class folders.
Keras runs from tf.data-free `flow_from_directory` batches as users write it, in a child
process. Two timings each: the fit alone (tlhub's own "training N s", Keras' `fit` call) and the
whole command (process start, imports, model build, fit, saving model.h5).
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TLHUB = ROOT / ".build" / "release" / "tlhub"


def make_images(folder, count, size, rng):
    for index in range(count):
        cls = ["a", "b", "c"][index % 3]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / cls / f"{index:04d}.jpg", quality=90)


def keras_alexnet(keras, classes, size):
    L = keras.layers
    init = "he_normal"
    inp = keras.Input((size, size, 3))
    x = L.Conv2D(96, 11, strides=4, activation="relu", kernel_initializer=init)(inp)
    x = L.MaxPooling2D(3, strides=2)(x)
    x = L.Conv2D(256, 5, padding="same", activation="relu", kernel_initializer=init)(x)
    x = L.MaxPooling2D(3, strides=2)(x)
    x = L.Conv2D(384, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    x = L.Conv2D(384, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    x = L.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    x = L.MaxPooling2D(3, strides=2)(x)
    x = L.Flatten()(x)
    for units in (4096, 4096, 1000):
        x = L.Dense(units, activation="relu", kernel_initializer=init)(x)
    out = L.Dense(classes, activation="softmax")(x)
    return keras.Model(inp, out)


def keras_fit(case, data, size, epochs, batch, save_to=None):
    import keras
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
    keras.utils.set_random_seed(0)
    if case == "alexnet":
        model = keras_alexnet(keras, 3, size)
        generator = ImageDataGenerator(rescale=1 / 255.0)
        optimizer = keras.optimizers.Adam(0.001)
    else:
        base = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35, input_shape=(size, size, 3))
        base.trainable = True
        for layer in base.layers[:-10]:
            layer.trainable = False
        inp = keras.Input((size, size, 3))
        x = base(inp, training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(3, activation="softmax")(x)
        model = keras.Model(inp, out)
        generator = ImageDataGenerator(preprocessing_function=keras.applications.mobilenet_v2.preprocess_input)
        optimizer = keras.optimizers.SGD(0.001, momentum=0.9)
    flow = generator.flow_from_directory(str(data), target_size=(size, size), batch_size=batch, shuffle=True)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(flow, epochs=epochs, verbose=0)
    elapsed = time.perf_counter() - started
    if save_to:
        model.save(save_to)  # as tlhub writes model.h5: part of the whole command's time
    return elapsed


def keras_run(case, data, size, epochs, batch):
    """`keras_fit` in a child process, as tlhub runs in one: an idle TensorFlow in this process
    would otherwise share the machine with tlhub's runs."""
    saved = data.parent / f"keras-{case}-{time.time_ns()}.h5"
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import pathlib, train_compare as t; "
            f"print('FIT', t.keras_fit({case!r}, pathlib.Path({str(data)!r}), {size}, {epochs}, {batch}, {str(saved)!r}))")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    whole = time.perf_counter() - started
    saved.unlink(missing_ok=True)
    return float([line for line in result.stdout.splitlines() if line.startswith("FIT ")][-1].split()[1]), whole


def tlhub_run(case, data, size, epochs, batch, work, model_file):
    output = work / f"out-{case}-{time.time_ns()}"
    if case == "alexnet":
        command = [str(TLHUB), "train", "--model", "alexnet", "--size", str(size), "--preprocess", "unit",
                   "--optimizer", "adam", "--lr", "0.001"]
    else:
        command = [str(TLHUB), "finetune", "--model", str(model_file), "--head", "dense3", "--unfreeze", "10",
                   "--size", str(size), "--optimizer", "sgd", "--lr", "0.001", "--momentum", "0.9"]
    command += ["--data", str(data), "--epochs", str(epochs), "--batch", str(batch), "-o", str(output),
                "--cache-dir", str(work / "cache")]
    started = time.perf_counter()
    result = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    whole = time.perf_counter() - started
    # "…, training 4.71 s → OUT": the fit part alone, comparable with Keras' `fit` call.
    training = float(result.stderr.split("training ")[-1].split(" s")[0])
    return training, whole


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cases", default="alexnet,mobilenetv2")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as temporary:
        work = pathlib.Path(temporary)
        results = {}
        for case in args.cases.split(","):
            size = 227 if case == "alexnet" else 160
            data = work / f"data-{case}"
            make_images(data, args.images, size, rng)
            model_file = None
            if case != "alexnet":
                import keras  # only to save the base's weights; fits run in child processes
                model_file = work / "mobilenet_v2_035.weights.h5"
                base = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35, input_shape=(size, size, 3))
                base.save_weights(model_file)
            ours, theirs = [], []
            for _ in range(args.rounds):
                # The first tlhub run of a finetune case fills the feature cache; later ones reuse it,
                # as a user's second run would. Both are reported.
                ours.append(tlhub_run(case, data, size, args.epochs, args.batch, work, model_file))
                theirs.append(keras_run(case, data, size, args.epochs, args.batch))
            results[case] = (ours, theirs)
            for index, what in ((0, "fit only"), (1, "whole command (start, build, fit, save .h5)")):
                mine, keras_times = [t[index] for t in ours], [t[index] for t in theirs]
                print(f"{case}, {what}: tlhub {[round(t, 2) for t in mine]} s, Keras {[round(t, 2) for t in keras_times]} s, "
                      f"median ratio Keras/tlhub {statistics.median(keras_times) / statistics.median(mine):.2f}x", flush=True)

if __name__ == "__main__":
    sys.exit(main())
