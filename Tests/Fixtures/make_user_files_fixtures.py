#!/usr/bin/env python3
"""Writes weight files the way users save them into Tests/Fixtures/user-files/. Run by hand,
never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_user_files_fixtures.py

Fixtures written only by tlhub's own scripts prove little; these come from the calls users make:

tf.keras 2 (`TF_USE_LEGACY_KERAS=1`), all in ONE busy session, so automatic names are offset:
    densenet_slash.h5          `save_weights` of DenseNet(blocks=[1, 2, 1, 1]): layer names with
                               `/` (`conv1/conv`), nested groups in HDF5
    mobilenetv3small_slash.h5  `save_weights` of MobileNetV3Small(alpha=0.25, no top): `Conv/BatchNorm`,
                               `expanded_conv/depthwise/BatchNorm`, …
    inception_v3_offset.h5     `save_weights` of an InceptionV3 (filters / 16, no top) built after
                               a small Sequential of unnamed layers: `conv2d_N…`, `batch_normalization_N…` (N > 0)
    efficientnet_offset.h5     `save_weights` of EfficientNet(0.125, 0.5) built after that:
                               `normalization_1`, offset automatic names
Keras 3 (a child process, the two cannot share one):
    finetuned_k3.h5 / .keras   the common fine-tuning recipe: MobileNetV2(alpha=0.35, no top)
                               called with training=False inside a Functional model, then
                               GlobalAveragePooling2D, Dropout, Dense(5, softmax); `model.save`
    finetuned_seq_k3.keras     the same base inside a Sequential
    subclassed_k3.weights.h5   `save_weights` of a subclassed keras.Model (layers as attributes,
                               a Sequential attribute, a list of layers)
    empty_k3.weights.h5        `save_weights` of a model without variables (must be an error)

Beside each: NAME_input.npy (float32 NHWC), NAME_output.npy (Keras' output), and for the
fine-tuned models NAME_features.npy (the base's output, average-pooled). `subclassed_k3.json`
lists the variables Keras itself reports (path, shape). Weights are randomized (BatchNorm
statistics too) and heads scaled, so the outputs are far from uniform.
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "user-files"
sys.path.insert(0, str(HERE))
from make_engine_fixtures import flat_layers, randomize  # noqa: E402


def scale_head(layer, factor=4.0):
    """Scales a classifier so softmax is far from uniform."""
    kernel, *rest = layer.get_weights()
    layer.set_weights([kernel * factor, *rest])


def save_io(name, x, y, features=None):
    np.save(OUT / f"{name}_input.npy", x.astype(np.float32))
    np.save(OUT / f"{name}_output.npy", np.asarray(y, dtype=np.float32))
    if features is not None:
        np.save(OUT / f"{name}_features.npy", np.asarray(features, dtype=np.float32))
    y = np.asarray(y)
    print(f"{name}: out {y.shape}, max |y| {np.abs(y).max():.3g}")


def keras2():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    from tf_keras.src.applications import densenet, efficientnet, inception_v3

    rng = np.random.default_rng(8)
    # One busy session: nothing is cleared between models, as in a notebook.
    model = densenet.DenseNet([1, 2, 1, 1], weights=None, input_shape=(32, 32, 3), classes=10)
    randomize(model, rng)
    scale_head(model.get_layer("predictions"))
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    model.save_weights(str(OUT / "densenet_slash.h5"))
    save_io("densenet_slash", x, model.predict(x, verbose=0))

    model = keras.applications.MobileNetV3Small(alpha=0.25, input_shape=(32, 32, 3), weights=None, include_top=False)
    randomize(model, rng)
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    model.save_weights(str(OUT / "mobilenetv3small_slash.h5"))
    save_io("mobilenetv3small_slash", x, model.predict(x, verbose=0))

    # The user's own experiment earlier in the notebook: unnamed layers take the first numbers.
    # Five convolutions and two BatchNorms, so each prefix has its own offset.
    scratch = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Normalization()]
                               + [keras.layers.Conv2D(2, 2) for _ in range(5)]
                               + [keras.layers.BatchNormalization(), keras.layers.BatchNormalization(),
                                  keras.layers.Flatten(), keras.layers.Dense(2)])
    del scratch

    original = inception_v3.conv2d_bn
    inception_v3.conv2d_bn = lambda x, filters, *a, **k: original(x, max(1, filters // 16), *a, **k)
    try:
        model = inception_v3.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    finally:
        inception_v3.conv2d_bn = original
    names = [layer.name for layer in model.layers if layer.weights]
    assert names[0] != "conv2d", "the busy session should have offset InceptionV3's automatic names"
    randomize(model, rng)
    x = rng.uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)
    model.save_weights(str(OUT / "inception_v3_offset.h5"))
    save_io("inception_v3_offset", x, model.predict(x, verbose=0))
    print("  inception names:", names[:2], "…")

    model = efficientnet.EfficientNet(0.125, 0.5, 32, model_name="efficientnet_small", weights=None,
                                      input_shape=(32, 32, 3), classes=10)
    names = [layer.name for layer in model.layers if layer.weights]
    assert "normalization" not in names, "the busy session should have offset EfficientNet's normalization"
    randomize(model, rng)
    scale_head(model.get_layer("predictions"))
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    model.save_weights(str(OUT / "efficientnet_offset.h5"))
    save_io("efficientnet_offset", x, model.predict(x, verbose=0))
    print("  efficientnet names:", [n for n in names if "normalization" in n and "bn" not in n])


def keras3():
    import keras

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (3, 48, 48, 3)).astype(np.float32)
    preprocessed = x / 127.5 - 1.0

    base = keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None, input_shape=(48, 48, 3))
    randomize(base, rng)
    base.trainable = False
    inputs = keras.Input((48, 48, 3))
    h = base(inputs, training=False)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dropout(0.2)(h)
    outputs = keras.layers.Dense(5, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    scale_head(model.layers[-1])
    model.save(OUT / "finetuned_k3.h5")
    model.save(OUT / "finetuned_k3.keras")
    features = base.predict(preprocessed, verbose=0).mean(axis=(1, 2))
    save_io("finetuned_k3", preprocessed, model.predict(preprocessed, verbose=0), features)

    base = keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None, input_shape=(48, 48, 3))
    randomize(base, rng)
    model = keras.Sequential([keras.Input((48, 48, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax", name="head")])
    scale_head(model.layers[-1])
    model.save(OUT / "finetuned_seq_k3.keras")
    features = base.predict(preprocessed, verbose=0).mean(axis=(1, 2))
    save_io("finetuned_seq_k3", preprocessed, model.predict(preprocessed, verbose=0), features)

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.block1 = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same"),
                                            keras.layers.BatchNormalization()])
            self.side = [keras.layers.Conv2D(3, 1), keras.layers.Conv2D(2, 1, use_bias=False)]
            self.head = keras.layers.Dense(3)

        def call(self, inputs):
            h = self.block1(inputs)
            h = self.side[0](h)
            h = self.side[1](h)
            return self.head(keras.ops.mean(h, axis=(1, 2)))

    net = Net()
    net(np.zeros((1, 8, 8, 3), np.float32))
    net.save_weights(OUT / "subclassed_k3.weights.h5")
    variables = [{"path": v.path, "shape": list(v.shape)} for v in net.weights]
    (OUT / "subclassed_k3.json").write_text(json.dumps(variables, indent=1) + "\n")
    print("subclassed:", [v["path"] for v in variables])

    # A model without a single variable: tlhub must say so, not write an empty conversion.
    empty = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Rescaling(0.5)])
    empty.save_weights(OUT / "empty_k3.weights.h5")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    if sys.argv[1:] == ["--keras3"]:
        keras3()
    else:
        keras2()
        subprocess.run([sys.executable, __file__, "--keras3"], check=True)
