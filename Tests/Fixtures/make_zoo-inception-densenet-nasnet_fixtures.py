#!/usr/bin/env python3
"""Writes the golden fixtures of the InceptionV3 / Xception / InceptionResNetV2 / DenseNet / NASNet
builders into Tests/Fixtures/zoo-inception-densenet-nasnet/. Run by hand, never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_zoo-inception-densenet-nasnet_fixtures.py

The full networks are far too large to commit, so parity is tested on reduced copies built by
keras.applications' own code (tf.keras 2, a fresh session per model so automatic layer names
start at `conv2d`):

- DenseNet and NASNet through their general constructors (`DenseNet(blocks=...)`,
  `NASNet(penultimate_filters=..., num_blocks=..., ...)`) at tiny sizes;
- InceptionV3, InceptionResNetV2 and Xception, whose constructors have no width option, with
  every convolution's filter count divided by 16 (their `conv2d_bn` helper, or `layers.Conv2D` /
  `layers.SeparableConv2D` for Xception, wrapped); same layers, names and topology.

Weights are randomized (BatchNorm statistics, gamma, beta too; heads scaled), rounded to float16
and stored as F16 safetensors; Keras runs with exactly those rounded values. Per case NAME:

    NAME.safetensors   `<layer>/<weight>` F16 tensors, __metadata__ {"layer_order": JSON array}
    NAME_input.npy     float32 NHWC input
    NAME_output.npy    Keras' float32 output

`cases.json` lists the cases with their builder arguments; `names.json` lists, for each full-size
published model, every layer's name and per-sample output shape, in Keras' layer order.
"""
import json
import os
import pathlib
import sys
import types

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "zoo-inception-densenet-nasnet"
sys.path.insert(0, str(HERE))
from make_engine_fixtures import flat_layers, randomize, short_name, write_safetensors  # noqa: E402

import tf_keras as keras  # noqa: E402
from tf_keras.src import layers as keras_layers  # noqa: E402
from tf_keras.src.applications import densenet, inception_resnet_v2, inception_v3, nasnet, xception  # noqa: E402

DIVISOR = 16



def finish(model, rng, head_scale=4.0):
    """Randomizes, scales the head, and rounds every weight to float16."""
    randomize(model, rng)
    for layer in flat_layers(model):
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name == "predictions":
            weights[0] = weights[0] * head_scale
        layer.set_weights([w.astype(np.float16).astype(np.float32) for w in weights])


def save_case(name, model, x, arguments):
    y = model.predict(x, verbose=0)
    tensors, order = [], []
    for layer in flat_layers(model):
        if layer.weights:
            order.append(layer.name)
        for variable in layer.weights:
            tensors.append((f"{layer.name}/{short_name(variable)}", variable.numpy()))
    metadata = {"layer_order": json.dumps(order)}
    write_safetensors(OUT / f"{name}.safetensors", tensors, metadata, dtype="F16")
    np.save(OUT / f"{name}_input.npy", x.astype(np.float32))
    np.save(OUT / f"{name}_output.npy", np.asarray(y, dtype=np.float32))
    count = sum(t.size for _, t in tensors)
    print(f"{name}: out {np.asarray(y).shape}, max |y| {np.abs(y).max():.3g}, max p {np.max(y):.3g}, {count} weights")
    return {"name": name, **arguments}


class NarrowLayers(types.ModuleType):
    """`layers` with Conv2D/SeparableConv2D filter counts divided, everything else unchanged."""

    def __init__(self):
        super().__init__("narrow_layers")

    def __getattr__(self, attribute):
        return getattr(keras_layers, attribute)

    @staticmethod
    def Conv2D(filters, *args, **kwargs):
        return keras_layers.Conv2D(max(1, filters // DIVISOR), *args, **kwargs)

    @staticmethod
    def SeparableConv2D(filters, *args, **kwargs):
        return keras_layers.SeparableConv2D(max(1, filters // DIVISOR), *args, **kwargs)


def narrow_inception_v3(**options):
    original = inception_v3.conv2d_bn
    inception_v3.conv2d_bn = lambda x, filters, *a, **k: original(x, max(1, filters // DIVISOR), *a, **k)
    try:
        return inception_v3.InceptionV3(weights=None, **options)
    finally:
        inception_v3.conv2d_bn = original


def narrow_inception_resnet_v2(**options):
    original = inception_resnet_v2.conv2d_bn

    def conv2d_bn(x, filters, *a, use_bias=False, **k):
        # The biased block projections restore the input width: already divided.
        return original(x, filters if use_bias else max(1, filters // DIVISOR), *a, use_bias=use_bias, **k)

    inception_resnet_v2.conv2d_bn = conv2d_bn
    try:
        return inception_resnet_v2.InceptionResNetV2(weights=None, **options)
    finally:
        inception_resnet_v2.conv2d_bn = original


def narrow_xception(**options):
    original = xception.layers
    xception.layers = NarrowLayers()
    try:
        return xception.Xception(weights=None, **options)
    finally:
        xception.layers = original


def cases():
    rng = np.random.default_rng(23)
    result = []

    def case(name, factory, input_side, arguments, batch=2, head_scale=4.0):
        keras.backend.clear_session()
        model = factory()
        finish(model, rng, head_scale)
        x = rng.uniform(-1, 1, (batch, input_side, input_side, 3)).astype(np.float32)
        result.append(save_case(name, model, x, {"side": input_side, **arguments}))

    case("inception_v3_narrow", lambda: narrow_inception_v3(input_shape=(75, 75, 3), classes=10), 75,
         {"family": "inceptionv3", "divisor": DIVISOR, "top": True, "classes": 10})
    case("inception_v3_narrow_notop", lambda: narrow_inception_v3(include_top=False, pooling="max",
                                                                  input_shape=(83, 83, 3)), 83,
         {"family": "inceptionv3", "divisor": DIVISOR, "top": False, "pooling": "max"}, batch=1)
    case("xception_narrow", lambda: narrow_xception(input_shape=(71, 71, 3), classes=10), 71,
         {"family": "xception", "divisor": DIVISOR, "top": True, "classes": 10})
    case("inception_resnet_v2_narrow", lambda: narrow_inception_resnet_v2(input_shape=(75, 75, 3), classes=10), 75,
         {"family": "inceptionresnetv2", "divisor": DIVISOR, "top": True, "classes": 10})
    case("densenet_tiny", lambda: densenet.DenseNet([1, 2, 1, 1], weights=None, input_shape=(32, 32, 3), classes=10), 32,
         {"family": "densenet", "blocks": [1, 2, 1, 1], "top": True, "classes": 10})
    case("nasnet_tiny", lambda: nasnet.NASNet(input_shape=(32, 32, 3), penultimate_filters=96, num_blocks=1,
                                              stem_block_filters=8, skip_reduction=False, weights=None, classes=10), 32,
         {"family": "nasnet", "penultimate": 96, "blocks": 1, "stem": 8, "skip": False, "top": True, "classes": 10},
         head_scale=0.5)
    case("nasnet_tiny_skip", lambda: nasnet.NASNet(input_shape=(45, 45, 3), penultimate_filters=192, num_blocks=2,
                                                   stem_block_filters=8, skip_reduction=True, weights=None,
                                                   include_top=False, pooling="avg"), 45,
         {"family": "nasnet", "penultimate": 192, "blocks": 2, "stem": 8, "skip": True, "top": False, "pooling": "avg"},
         batch=1)
    return result


def names():
    """Every layer's name and per-sample output shape for each published model at full size."""
    models = {
        "inceptionv3": lambda: keras.applications.InceptionV3(weights=None),
        "xception": lambda: keras.applications.Xception(weights=None),
        "inceptionresnetv2": lambda: keras.applications.InceptionResNetV2(weights=None),
        "densenet121": lambda: keras.applications.DenseNet121(weights=None),
        "densenet169": lambda: keras.applications.DenseNet169(weights=None),
        "densenet201": lambda: keras.applications.DenseNet201(weights=None),
        "nasnetmobile": lambda: keras.applications.NASNetMobile(weights=None),
        "nasnetlarge": lambda: keras.applications.NASNetLarge(weights=None),
    }
    result = {}
    for key, factory in models.items():
        keras.backend.clear_session()
        model = factory()
        result[key] = [[layer.name, list(layer.output_shape[1:] if not isinstance(layer.output_shape, list)
                                         else layer.output_shape[0][1:])] for layer in model.layers]
        print(f"{key}: {len(model.layers)} layers, {model.count_params()} parameters")
    return result


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    (OUT / "cases.json").write_text(json.dumps(cases(), indent=1) + "\n")
    (OUT / "names.json").write_text(json.dumps(names(), separators=(",", ":")) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{total / 1e6:.2f} MB")
