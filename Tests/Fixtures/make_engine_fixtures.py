#!/usr/bin/env python3
"""Writes the TLEngine golden fixtures into Tests/Fixtures/engine/. Run by hand, never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_engine_fixtures.py

Every case is a tiny Keras model with random weights (BatchNorm statistics, gamma and beta
randomized too) and a random input. For case NAME it writes:

    NAME.safetensors   weights as `<layer>/<weight>` float32 tensors, with __metadata__
                       {"layer_order": JSON array, "model_config": model.to_json()}
    NAME.h5            the same model saved by Keras (only for small cases; read later by TLFormats)
    NAME_input.npy     float32 NHWC input
    NAME_output.npy    Keras' float32 output for that input

`cases.json` lists every case with its Keras flavour ("keras2" = tf_keras, "keras3" = keras).
Keras 2 cases run in this process, Keras 3 cases in a child process (the two cannot share one).
"""
import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent / "engine"
# Cases also saved as a Keras .h5 (for the HDF5 reader); the rest get only the .safetensors copy,
# to keep the committed fixtures small.
H5_CASES = {"conv_same_s2", "depthwise_s2_mult2", "separable", "batchnorm", "normalization", "graph_merges",
            "sequential", "vgg_small"}


def write_safetensors(path, tensors, metadata, dtype="F32"):
    """tensors: list of (name, array). Writes the safetensors layout by hand, as F32 or F16
    (F16 for fixtures whose values are already float16-exact). Shared by every fixture script
    and scripts/parity_fullsize.py."""
    numpy_dtype = {"F32": "<f4", "F16": "<f2"}[dtype]
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, array in tensors:
        data = np.ascontiguousarray(array, dtype=numpy_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def flat_layers(model):
    """Every weight-holding layer, nested models flattened, in model order."""
    result = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            result.extend(flat_layers(layer))
        else:
            result.append(layer)
    return result


def short_name(variable):
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0]


def randomize(model, rng):
    for layer in flat_layers(model):
        new = []
        for variable in layer.weights:
            value = variable.numpy()
            name = short_name(variable)
            if name in ("moving_variance", "variance"):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif name == "gamma":
                value = rng.uniform(0.6, 1.4, value.shape)
            elif name in ("beta", "moving_mean", "mean", "bias"):
                value = rng.normal(0, 0.2, value.shape)
            elif name == "count":
                value = value
            else:
                value = value * rng.uniform(0.8, 1.6)
            new.append(value.astype(np.float32))
        if new:
            layer.set_weights(new)


def save_case(name, model, x, flavour, keep_h5=True):
    y = model.predict(x, verbose=0)
    tensors, order = [], []
    for layer in flat_layers(model):
        if layer.weights:
            order.append(layer.name)
        for variable in layer.weights:
            tensors.append((f"{layer.name}/{short_name(variable)}", variable.numpy()))
    write_safetensors(OUT / f"{name}.safetensors", tensors,
                      {"layer_order": json.dumps(order), "model_config": model.to_json()})
    np.save(OUT / f"{name}_input.npy", x.astype(np.float32))
    np.save(OUT / f"{name}_output.npy", np.asarray(y, dtype=np.float32))
    size = sum(t.nbytes for _, t in tensors)
    if keep_h5 and name in H5_CASES and flavour == "keras2":
        model.save(OUT / f"{name}.h5")
    print(f"{name}: out {np.asarray(y).shape}, max |y| {np.abs(y).max():.3g}, {size} weight bytes")
    return {"name": name, "flavour": flavour}


def keras2_cases():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    from tf_keras import layers

    rng = np.random.default_rng(7)
    cases = []

    def single(name, layer, shape=(9, 11, 5), batch=2, keep_h5=True):
        inputs = keras.Input(shape=shape, name="input")
        outputs = layer(inputs)
        model = keras.Model(inputs, outputs, name=name)
        randomize(model, rng)
        x = rng.normal(0, 1, (batch,) + shape).astype(np.float32)
        cases.append(save_case(name, model, x, "keras2", keep_h5))

    # Convolutions
    single("conv_same_s1", layers.Conv2D(7, 3, padding="same", name="conv"))
    single("conv_same_s2", layers.Conv2D(6, 3, strides=2, padding="same", name="conv"))
    single("conv_same_s2_k4", layers.Conv2D(4, 4, strides=2, padding="same", name="conv"))
    single("conv_valid_s21", layers.Conv2D(4, (3, 2), strides=(2, 1), padding="valid", name="conv"))
    single("conv_dilated", layers.Conv2D(4, 3, dilation_rate=2, padding="same", name="conv"))
    single("conv_groups", layers.Conv2D(6, 3, groups=3, padding="same", name="conv"), shape=(8, 7, 6))
    single("conv_1x1_relu", layers.Conv2D(8, 1, use_bias=False, activation="relu", name="conv"))
    single("conv_1x1_s2", layers.Conv2D(8, 1, strides=2, name="conv"))
    single("depthwise_same", layers.DepthwiseConv2D(3, padding="same", name="dw"))
    single("depthwise_s2_mult2", layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same", name="dw"))
    single("depthwise_dilated", layers.DepthwiseConv2D(3, dilation_rate=2, padding="valid", use_bias=False, name="dw"))
    single("separable", layers.SeparableConv2D(6, 3, depth_multiplier=2, padding="same", activation="relu", name="sep"))
    single("separable_s2", layers.SeparableConv2D(5, 3, strides=2, padding="same", name="sep"))
    # Normalization
    single("batchnorm", layers.BatchNormalization(epsilon=1e-3, name="bn"))
    single("batchnorm_plain", layers.BatchNormalization(epsilon=0.01, center=False, scale=False, name="bn"))
    single("layernorm", layers.LayerNormalization(epsilon=1e-3, name="ln"))
    single("rescaling", layers.Rescaling(1 / 127.5, offset=-1, name="rescale"))
    single("normalization", layers.Normalization(mean=[0.1, 0.2, -0.3, 0.5, 1.0], variance=[1.0, 2.0, 0.5, 4.0, 0.25], name="norm"))
    # Activations
    for activation in ["relu", "sigmoid", "hard_sigmoid", "swish", "tanh", "gelu", "softmax", "elu", "selu",
                       "softplus", "softsign", "linear", "relu6"]:
        single(f"activation_{activation}", layers.Activation(activation, name="act"))
    single("relu_layer", layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5, name="relu"))
    single("leaky_relu", layers.LeakyReLU(alpha=0.2, name="leaky"))
    single("softmax_layer", layers.Softmax(name="softmax"))
    single("elu_layer", layers.ELU(alpha=0.7, name="elu"))
    # Shape and pooling
    single("zero_padding", layers.ZeroPadding2D(((1, 2), (3, 0)), name="pad"))
    single("cropping", layers.Cropping2D(((1, 0), (2, 1)), name="crop"))
    single("maxpool_same_s2", layers.MaxPooling2D(3, strides=2, padding="same", name="pool"))
    single("maxpool_valid", layers.MaxPooling2D(2, name="pool"))
    single("avgpool_same_s2", layers.AveragePooling2D(3, strides=2, padding="same", name="pool"))
    single("avgpool_valid", layers.AveragePooling2D((2, 3), strides=(1, 2), name="pool"))
    single("global_avg", layers.GlobalAveragePooling2D(name="gap"))
    single("global_max_keepdims", layers.GlobalMaxPooling2D(keepdims=True, name="gmp"))
    single("flatten", layers.Flatten(name="flatten"))
    single("reshape", layers.Reshape((11, 9, 5), name="reshape"))
    single("dropout", layers.Dropout(0.5, name="dropout"))
    single("dense_4d", layers.Dense(3, name="dense"))

    # Merges, a shared layer and a nested model
    inputs = keras.Input(shape=(7, 6, 4), name="input")
    a = layers.Conv2D(4, 3, padding="same", name="branch_a")(inputs)
    b = layers.Conv2D(4, 1, name="branch_b")(inputs)
    added = layers.Add(name="add")([a, b])
    multiplied = layers.Multiply(name="multiply")([a, b])
    subtracted = layers.Subtract(name="subtract")([a, b])
    shared = layers.Conv2D(3, 1, name="shared")
    s1, s2 = shared(added), shared(multiplied)
    inner_in = keras.Input(shape=(7, 6, 4))
    inner_out = layers.Conv2D(2, 3, padding="same", activation="tanh", name="inner_conv")(inner_in)
    inner = keras.Model(inner_in, inner_out, name="inner")
    merged = layers.Concatenate(name="concat")([s1, s2, subtracted, inner(inputs)])
    pooled = layers.GlobalAveragePooling2D(name="gap")(merged)
    outputs = layers.Dense(5, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, outputs, name="graph")
    randomize(model, rng)
    cases.append(save_case("graph_merges", model, rng.normal(0, 1, (2, 7, 6, 4)).astype(np.float32), "keras2"))

    # A Sequential model
    model = keras.Sequential([
        keras.Input(shape=(12, 12, 3)),
        layers.Conv2D(4, 3, activation="relu", name="c1"),
        layers.MaxPooling2D(name="p1"),
        layers.Flatten(name="flat"),
        layers.Dense(6, activation="sigmoid", name="d1"),
    ], name="seq")
    randomize(model, rng)
    cases.append(save_case("sequential", model, rng.normal(0, 1, (3, 12, 12, 3)).astype(np.float32), "keras2"))

    # keras.applications at reduced size
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None, classes=10)
    randomize(model, rng)
    last = model.get_layer("predictions")
    w, b = last.get_weights()
    last.set_weights([w * 8, b])
    cases.append(save_case("mobilenetv2_035_32", model, rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32), "keras2"))

    # A small VGG-like network with VGG16's layer names and a narrower width.
    inputs = keras.Input(shape=(32, 32, 3), name="input_1")
    x = inputs
    for block, (filters, count) in enumerate([(8, 2), (12, 2), (16, 3), (16, 3), (16, 3)], start=1):
        for i in range(1, count + 1):
            x = layers.Conv2D(filters, 3, activation="relu", padding="same", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(24, activation="relu", name="fc1")(x)
    x = layers.Dense(24, activation="relu", name="fc2")(x)
    x = layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name="vgg_small")
    randomize(model, rng)
    cases.append(save_case("vgg_small", model, rng.normal(0, 1, (2, 32, 32, 3)).astype(np.float32), "keras2"))

    # A ResNet-v1 stand-in: keras.applications' own ResNet builder with narrow stacks.
    from tf_keras.src.applications import resnet

    def stack_fn(x):
        x = resnet.stack1(x, 8, 1, stride1=1, name="conv2")
        x = resnet.stack1(x, 8, 2, name="conv3")
        x = resnet.stack1(x, 16, 1, name="conv4")
        return resnet.stack1(x, 16, 1, name="conv5")

    model = resnet.ResNet(stack_fn, False, True, "resnet_small", include_top=True, weights=None,
                          input_shape=(32, 32, 3), classes=10)
    randomize(model, rng)
    cases.append(save_case("resnet_small", model, rng.normal(0, 1, (2, 32, 32, 3)).astype(np.float32), "keras2"))
    return cases


def keras3_cases():
    import keras
    from keras import layers

    rng = np.random.default_rng(11)
    cases = []
    inputs = keras.Input(shape=(6, 5, 3), name="input")
    a = layers.Conv2D(4, 3, padding="same", activation="hard_sigmoid", name="a")(inputs)
    b = layers.DepthwiseConv2D(3, strides=2, padding="same", name="b")(inputs)
    b = layers.Activation("hard_swish", name="b_act")(b)
    b = layers.Conv2D(4, 1, name="b_proj")(b)
    shared = layers.Conv2D(4, 1, name="shared")
    a2 = shared(a)
    pooled_a = layers.MaxPooling2D(2, strides=2, padding="same", name="pool")(shared(a2))
    merged = layers.Concatenate(name="concat")([pooled_a, b])
    x = layers.BatchNormalization(name="bn")(merged)
    x = layers.Activation("gelu", name="gelu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="keras3_graph")
    randomize(model, rng)
    cases.append(save_case("keras3_graph", model, rng.normal(0, 1, (2, 6, 5, 3)).astype(np.float32), "keras3"))
    return cases


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--keras3"]:
        print(json.dumps(keras3_cases()))
        sys.exit(0)
    for old in OUT.iterdir():
        old.unlink()
    cases = keras2_cases()
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    child = subprocess.run([sys.executable, __file__, "--keras3"], check=True, capture_output=True, text=True,
                           env=environment)
    print(child.stdout)
    cases += json.loads(child.stdout.strip().splitlines()[-1])
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(cases)} cases, {total / 1e6:.2f} MB")
