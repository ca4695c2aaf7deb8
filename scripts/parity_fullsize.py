#!/usr/bin/env python3
"""Full-size Keras parity check for tlhub's native architectures. Run by hand (minutes, GBs in /tmp):

    swift build                     # or -c release, then pass --tlhub .build/release/tlhub
    ~/venv-tf/bin/python scripts/parity_fullsize.py [--tlhub PATH] [--models mobilenetv2_1.00 resnet50 ...]

For each model it builds keras.applications' network with random weights (BatchNorm statistics,
gamma and beta randomized; classifier scaled so softmax is not uniform), saves it *weights-only*
into /tmp/tlhub-parity (so tlhub must detect the architecture and build it natively), runs Keras
on a random batch, then `tlhub predict` and `tlhub features --pooling avg`, and prints
max |tlhub - Keras| against the tolerance 1e-4 * max(1, max|Keras|). A softmax output that
misses it is judged by its logits instead (recovered as log p, centred per row), against 1e-4
times their spread: large logits (NASNetLarge's) scale a small relative error up in the
probabilities.

By default the files are written as users write them: tf.keras `model.save_weights("x.h5")`, all
models in ONE session, so every model after the first has offset automatic names (`conv2d_94`,
`normalization_3`) and DenseNet/MobileNetV3 keep their `/` names (`conv1/conv`, `Conv/BatchNorm`).
`--format safetensors` writes tlhub's own layout instead, and `--fresh-session` clears the Keras
session before each model (automatic names from 0).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Tests" / "Fixtures"))
from make_engine_fixtures import flat_layers, write_safetensors  # noqa: E402

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
    "resnet101v2": (lambda: keras.applications.ResNet101V2(weights=None), "post_relu"),
    "resnet152v2": (lambda: keras.applications.ResNet152V2(weights=None), "post_relu"),
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

# MobileNet v1/v3, EfficientNet v1/v2, ConvNeXt. `None` as feature layer: the input of the head's
# global average pooling (the layer before it has no fixed name in tf.keras for MobileNetV3).
apps = keras.applications
MODELS.update({f"mobilenet_{alpha:.2f}": ((lambda a=alpha: apps.MobileNet(alpha=a, weights=None)), "conv_pw_13_relu")
               for alpha in (0.25, 0.5, 0.75, 1.0)})
MODELS.update({
    "mobilenet_1.00_notop_dm2_160": (lambda: apps.MobileNet(depth_multiplier=2, include_top=False, weights=None,
                                                            input_shape=(160, 160, 3)), "conv_pw_13_relu"),
    "mobilenetv3small_1.00": (lambda: apps.MobileNetV3Small(weights=None, input_shape=(224, 224, 3)), None),
    "mobilenetv3small_0.75": (lambda: apps.MobileNetV3Small(alpha=0.75, weights=None, input_shape=(224, 224, 3)), None),
    "mobilenetv3large_1.00": (lambda: apps.MobileNetV3Large(weights=None, input_shape=(224, 224, 3)), None),
    "mobilenetv3large_minimalistic_1.00": (lambda: apps.MobileNetV3Large(minimalistic=True, weights=None,
                                                                         input_shape=(224, 224, 3)), None),
    "convnext_tiny": (lambda: apps.ConvNeXtTiny(weights=None), None),
    "convnext_small": (lambda: apps.ConvNeXtSmall(weights=None), None),
    "convnext_base": (lambda: apps.ConvNeXtBase(weights=None), None),
    "convnext_large": (lambda: apps.ConvNeXtLarge(weights=None), None),
    "convnext_xlarge": (lambda: apps.ConvNeXtXLarge(weights=None), None),
})
MODELS.update({f"efficientnetb{i}": ((lambda i=i: getattr(apps, f"EfficientNetB{i}")(weights=None)), None) for i in range(8)})
MODELS.update({f"efficientnetv2{v.lower()}": ((lambda v=v: getattr(apps, f"EfficientNetV2{v}")(weights=None)), None)
               for v in ("B0", "B1", "B2", "B3", "S", "M", "L")})
# Deep EfficientNets (B3+ and V2 B3+) with purely random BatchNorm statistics grow activations to
# ~1e5 and are chaotic (Keras' own output moves by 5e4 when the input moves by 1e-6); a larger
# moving variance keeps them as well-conditioned as trained networks.
VARIANCE_FACTOR = {name: 4.0 for name in MODELS if name.startswith("efficientnet")}
# Layers holding the classifier kernel, whichever family named it.
CLASSIFIERS = ("predictions", "conv_preds", "Logits")




def randomize(model, rng, x, variance_factor=1.0):
    for layer in flat_layers(model):
        new = []
        for variable in layer.weights:
            name = variable.name.split("/")[-1].split(":")[0]
            value = variable.numpy()
            if name == "moving_variance":
                value = rng.uniform(0.5, 1.5, value.shape) * variance_factor
            elif name == "variance":
                value = rng.uniform(0.5, 1.5, value.shape)
            elif name == "gamma":
                value = rng.uniform(0.6, 1.4, value.shape)
            elif name in ("beta", "moving_mean", "bias", "mean"):
                value = rng.normal(0, 0.1, value.shape)
            new.append(value.astype(variable.dtype.name if hasattr(variable.dtype, "name") else np.float32))
        if new:
            layer.set_weights(new)
    names = {layer.name for layer in model.layers}
    heads = [name for name in CLASSIFIERS if name in names and model.get_layer(name).weights]
    heads += [layer.name for layer in model.layers if layer.name.endswith("_head_dense")]
    if heads:
        # Scale the classifier up, but not so far that softmax saturates and hides differences.
        head = model.get_layer(heads[0])
        kernel, bias = head.get_weights()
        scale = 20.0
        while True:
            head.set_weights([kernel * scale, bias])
            if scale < 0.05 or np.abs(model.predict(x, verbose=0)).max() < 0.95:
                break
            scale /= 2


def is_softmax(probabilities):
    """Whether each row looks like a softmax output: non-negative and summing to 1."""
    rows = probabilities.reshape(probabilities.shape[0], -1)
    return bool((rows >= 0).all() and np.allclose(rows.sum(axis=1), 1, atol=1e-3))


def softmax_logit_error(actual, expected):
    """Max error of the logits behind two softmax outputs, and its tolerance 1e-4 relative.

    Logits are known up to a constant per row (log p + c), so both sides are centred; the scale is
    each row's logit spread. Probabilities are clipped at 1e-37 (float32's normal range)."""
    tiny = 1e-37
    a = np.log(np.maximum(actual.reshape(actual.shape[0], -1).astype(np.float64), tiny))
    e = np.log(np.maximum(expected.reshape(expected.shape[0], -1).astype(np.float64), tiny))
    difference = (a - e) - (a - e).mean(axis=1, keepdims=True)
    spread = float((e.max(axis=1) - e.min(axis=1)).max())
    return float(np.abs(difference).max()), 1e-4 * max(1.0, spread)


def save_weights_only(model, path):
    tensors, order = [], []
    for layer in flat_layers(model):
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
    parser.add_argument("--format", choices=["h5", "safetensors"], default="h5")
    parser.add_argument("--fresh-session", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    worst_ok = True
    print(f"{'model':28} {'predict max err':>16} {'features max err':>17} {'tolerance':>10}  result")
    for name in args.models:
        factory, feature_layer = MODELS[name]
        if args.fresh_session:
            keras.backend.clear_session()
        model = factory()
        shape = model.input_shape[1:]
        # Models with preprocessing layers inside take 0…255 pixels, the others -1…1.
        pixels = any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in model.layers)
        x = (rng.uniform(0, 255, (args.batch,) + tuple(shape)) if pixels
             else rng.uniform(-1, 1, (args.batch,) + tuple(shape))).astype(np.float32)
        randomize(model, rng, x, VARIANCE_FACTOR.get(name, 1.0))
        expected = model.predict(x, verbose=0)
        if feature_layer is None:
            pools = [layer for layer in model.layers if type(layer).__name__ == "GlobalAveragePooling2D"]
            base = keras.Model(model.input, pools[-1].input)
        else:
            base = keras.Model(model.input, model.get_layer(feature_layer).output)
        expected_features = base.predict(x, verbose=0).mean(axis=(1, 2))
        if args.format == "h5":
            weights = WORK / f"{name}.h5"
            model.save_weights(str(weights))
        else:
            weights = WORK / f"{name}.safetensors"
            save_weights_only(model, weights)
        np.save(WORK / f"{name}_input.npy", x)
        try:
            if "notop" in name:
                # No classifier: `predict` refuses; the whole output is the unpooled feature map.
                run_tlhub(args.tlhub, "features", "--model", weights, "--input", WORK / f"{name}_input.npy",
                          "--pooling", "none", "-o", WORK / f"{name}_predict.npy")
            else:
                run_tlhub(args.tlhub, "predict", "--model", weights, "--input", WORK / f"{name}_input.npy", "--top", 0,
                          "-o", WORK / f"{name}_predict.npy")
            run_tlhub(args.tlhub, "features", "--model", weights, "--input", WORK / f"{name}_input.npy",
                      "--pooling", "avg", "-o", WORK / f"{name}_features.npy")
        except RuntimeError as error:
            worst_ok = False
            print(f"{name:28} FAIL: {error}", flush=True)
            weights.unlink()
            continue
        actual = np.load(WORK / f"{name}_predict.npy")
        actual_features = np.load(WORK / f"{name}_features.npy")
        error = float(np.abs(actual - expected).max())
        feature_error = float(np.abs(actual_features - expected_features).max())
        tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
        feature_tolerance = 1e-4 * max(1.0, float(np.abs(expected_features).max()))
        prediction_ok = error <= tolerance
        note = ""
        if not prediction_ok and is_softmax(expected):
            # A softmax output scales a logit error by its probability, so a model whose logits
            # are large (NASNetLarge's reach ~100) can miss the absolute tolerance on the
            # probabilities while its logits are within 1e-4 relative: judge those logits.
            logit_error, logit_tolerance = softmax_logit_error(actual, expected)
            prediction_ok = logit_error <= logit_tolerance
            note = f", logits max err {logit_error:.3g} against {logit_tolerance:.3g}"
        ok = prediction_ok and feature_error <= feature_tolerance
        worst_ok &= ok
        del model, base
        print(f"{name:28} {error:16.3g} {feature_error:17.3g} {tolerance:10.3g}  {'ok' if ok else 'FAIL'}"
              f"  (max Keras output {float(expected.max()):.3g}, features tolerance {feature_tolerance:.3g}{note})", flush=True)
        weights.unlink()
    sys.exit(0 if worst_ok else 1)


if __name__ == "__main__":
    main()
