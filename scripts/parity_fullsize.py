#!/usr/bin/env python3
"""Full-size Keras parity check for tlhub's native architectures. Run by hand (minutes, GBs in /tmp):

    swift build                     # or -c release, then pass --tlhub .build/release/tlhub
    ~/venv-tf/bin/python scripts/parity_fullsize.py [--tlhub PATH] [--models mobilenetv2_1.00 resnet50 ...]

For each model it builds keras.applications' network with random weights (BatchNorm statistics,
gamma and beta randomized; classifier scaled so softmax is not uniform), writes a *weights-only*
.safetensors into /tmp/tlhub-parity (so tlhub must detect the architecture and build it natively),
runs Keras on a random batch, then `tlhub predict` and `tlhub features --pooling avg`, and prints
max |tlhub - Keras| against the tolerance 1e-4 * max(1, max|Keras|).
"""
import argparse
import json
import os
import pathlib
import struct
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = pathlib.Path("/tmp/tlhub-parity")

def mobilenet_v2(alpha, **options):
    return lambda: keras.applications.MobileNetV2(alpha=alpha, weights=None, **options)


# name → (constructor, layer whose output `features` pools)
MODELS = {f"mobilenetv2_{alpha:.2f}": (mobilenet_v2(alpha), "out_relu") for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}
MODELS.update({
    "mobilenetv2_1.00_160": (mobilenet_v2(1.0, input_shape=(160, 160, 3)), "out_relu"),
    "mobilenetv2_0.35_notop_96": (mobilenet_v2(0.35, input_shape=(96, 96, 3), include_top=False), "out_relu"),
    "vgg16": (lambda: keras.applications.VGG16(weights=None), "block5_pool"),
    "vgg19": (lambda: keras.applications.VGG19(weights=None), "block5_pool"),
    "resnet50": (lambda: keras.applications.ResNet50(weights=None), "conv5_block3_out"),
    "resnet101": (lambda: keras.applications.ResNet101(weights=None), "conv5_block3_out"),
    "resnet152": (lambda: keras.applications.ResNet152(weights=None), "conv5_block3_out"),
    "resnet50v2": (lambda: keras.applications.ResNet50V2(weights=None), "post_relu"),
})
# InceptionV3, Xception, InceptionResNetV2, DenseNet, NASNet (NASNet's last ReLU has an automatic
# name: None means "the layer before the global pooling").
MODELS.update({
    "inceptionv3": (lambda: keras.applications.InceptionV3(weights=None), "mixed10"),
    "xception": (lambda: keras.applications.Xception(weights=None), "block14_sepconv2_act"),
    "inceptionresnetv2": (lambda: keras.applications.InceptionResNetV2(weights=None), "conv_7b_ac"),
    "densenet121": (lambda: keras.applications.DenseNet121(weights=None), "relu"),
    "densenet169": (lambda: keras.applications.DenseNet169(weights=None), "relu"),
    "densenet201": (lambda: keras.applications.DenseNet201(weights=None), "relu"),
    "densenet121_notop_160": (lambda: keras.applications.DenseNet121(weights=None, include_top=False,
                                                                     input_shape=(160, 160, 3)), "relu"),
    "nasnetmobile": (lambda: keras.applications.NASNetMobile(weights=None), None),
    "nasnetlarge": (lambda: keras.applications.NASNetLarge(weights=None), None),
    "inceptionv3_notop_150": (lambda: keras.applications.InceptionV3(weights=None, include_top=False,
                                                                     input_shape=(150, 150, 3)), "mixed10"),
})


# Classifier scale per model (default 20): NASNet's large final activations saturate softmax at 20.
HEAD_SCALE = {"nasnetmobile": 0.5, "nasnetlarge": 0.4}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, array in tensors:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def randomize(model, rng, head_scale=20):
    for layer in model.layers:
        new = []
        for variable in layer.weights:
            name = variable.name.split("/")[-1].split(":")[0]
            value = variable.numpy()
            if name == "moving_variance":
                value = rng.uniform(0.5, 1.5, value.shape)
            elif name == "gamma":
                value = rng.uniform(0.6, 1.4, value.shape)
            elif name in ("beta", "moving_mean", "bias"):
                value = rng.normal(0, 0.1, value.shape)
            new.append(value.astype(np.float32))
        if new:
            layer.set_weights(new)
    if any(layer.name == "predictions" for layer in model.layers):
        head = model.get_layer("predictions")
        kernel, bias = head.get_weights()
        head.set_weights([kernel * head_scale, bias])


def save_weights_only(model, path):
    tensors, order = [], []
    for layer in model.layers:
        if layer.weights:
            order.append(layer.name)
        for variable in layer.weights:
            tensors.append((f"{layer.name}/{variable.name.split('/')[-1].split(':')[0]}", variable.numpy()))
    write_safetensors(path, tensors, {"layer_order": json.dumps(order)})


def run_tlhub(tlhub, *arguments):
    result = subprocess.run([tlhub, *map(str, arguments)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or result.stdout.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tlhub", default=str(ROOT / ".build/debug/tlhub"))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    worst_ok = True
    print(f"{'model':28} {'predict max err':>16} {'features max err':>17} {'tolerance':>10}  result")
    for name in args.models:
        factory, feature_layer = MODELS[name]
        keras.backend.clear_session()
        model = factory()
        randomize(model, rng, HEAD_SCALE.get(name, 20))
        shape = model.input_shape[1:]
        x = rng.uniform(-1, 1, (args.batch,) + tuple(shape)).astype(np.float32)
        expected = model.predict(x, verbose=0)
        feature_layer = feature_layer or model.layers[-3].name
        base = keras.Model(model.input, model.get_layer(feature_layer).output)
        expected_features = base.predict(x, verbose=0).mean(axis=(1, 2))
        weights = WORK / f"{name}.safetensors"
        save_weights_only(model, weights)
        np.save(WORK / f"{name}_input.npy", x)
        run_tlhub(args.tlhub, "predict", "--model", weights, "--input", WORK / f"{name}_input.npy", "--top", 0,
                  "-o", WORK / f"{name}_predict.npy")
        run_tlhub(args.tlhub, "features", "--model", weights, "--input", WORK / f"{name}_input.npy",
                  "--pooling", "avg", "-o", WORK / f"{name}_features.npy")
        actual = np.load(WORK / f"{name}_predict.npy")
        actual_features = np.load(WORK / f"{name}_features.npy")
        error = float(np.abs(actual - expected).max())
        feature_error = float(np.abs(actual_features - expected_features).max())
        tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
        feature_tolerance = 1e-4 * max(1.0, float(np.abs(expected_features).max()))
        ok = error <= tolerance and feature_error <= feature_tolerance
        worst_ok &= ok
        print(f"{name:28} {error:16.3g} {feature_error:17.3g} {tolerance:10.3g}  {'ok' if ok else 'FAIL'}"
              f"  (max Keras output {float(expected.max()):.3g}, features tolerance {feature_tolerance:.3g})", flush=True)
        weights.unlink()
    sys.exit(0 if worst_ok else 1)


if __name__ == "__main__":
    main()
