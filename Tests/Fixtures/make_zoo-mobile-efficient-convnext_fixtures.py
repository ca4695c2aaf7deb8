#!/usr/bin/env python3
"""Writes the golden fixtures (MobileNet v1/v3, EfficientNet v1/v2, ConvNeXt) into
Tests/Fixtures/zoo-mobile-efficient-convnext/. Run by hand, never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_zoo-mobile-efficient-convnext_fixtures.py            # cases (+ counts if missing)
    ~/venv-tf/bin/python Tests/Fixtures/make_zoo-mobile-efficient-convnext_fixtures.py --counts   # recount parameters

Same format as make_engine_fixtures.py (NAME.safetensors, NAME_input.npy, NAME_output.npy,
cases.json), except that the weights are float16-exact and stored as F16, and the metadata holds
only `layer_order` (no model config: these are weights-only files, as the published ones are),
except for the EfficientNet case, whose config also tests the generic Keras-config path.
`parameter_counts.json` holds Keras' `count_params()` of every published variant. Every model is a keras.applications
network (or the family's internal constructor with smaller widths/depths, to keep the committed
files small) with random weights: BatchNorm statistics, gamma and beta, LayerScale gamma and the
EfficientNet Normalization mean/variance are randomized, and the classifier is scaled so softmax
is not uniform. Keras 2 (tf_keras, whose layer names the published weight files use) runs in this
process, Keras 3 in a child process.
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_engine_fixtures import flat_layers, randomize, short_name, write_safetensors  # noqa: E402

OUT = HERE / "zoo-mobile-efficient-convnext"



def round_to_half(model):
    """Rounds every weight to a float16 value so the F16 file holds exactly what Keras ran."""
    for layer in flat_layers(model):
        if layer.weights:
            layer.set_weights([np.asarray(w).astype(np.float16).astype(w.dtype) for w in layer.get_weights()])


def damp_batchnorm(model, factor):
    """Multiplies every BatchNormalization moving variance by `factor`.

    With purely random statistics EfficientNet's activations grow block after block until
    float32 rounding is amplified past the tolerance (Keras' own output then moves by ~1 when the
    input moves by 1e-6); a larger variance keeps the network as well-conditioned as a trained one."""
    for layer in flat_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, beta, mean, variance * factor])


def save_case(name, model, x, flavour, head=None, head_scale=8.0, with_config=False, variance_factor=1.0):
    if variance_factor != 1.0:
        damp_batchnorm(model, variance_factor)
    if head is not None:
        # The largest scale (from head_scale down) that keeps softmax away from one-hot, so the
        # comparison still sees every class.
        layer = model.get_layer(head)
        kernel, bias = layer.get_weights()
        scale = head_scale
        while True:
            layer.set_weights([kernel * scale, bias])
            if scale < 0.01 or np.abs(model.predict(x, verbose=0)).max() < 0.95:
                break
            scale /= 2
    round_to_half(model)
    # tf.keras' Normalization snapshots its adapted mean/variance into the traced predict
    # function; retrace so the output reflects the rounded weights, as a reloaded model would.
    model.predict_function = None
    y = model.predict(x, verbose=0)
    tensors, order = [], []
    for layer in flat_layers(model):
        if layer.weights:
            order.append(layer.name)
        for variable in layer.weights:
            tensors.append((f"{layer.name}/{short_name(variable)}", variable.numpy()))
    write_safetensors(OUT / f"{name}.safetensors", tensors,
                      {"layer_order": json.dumps(order), **({"model_config": model.to_json()} if with_config else {})},
                      dtype="F16")
    np.save(OUT / f"{name}_input.npy", x.astype(np.float32))
    np.save(OUT / f"{name}_output.npy", np.asarray(y, dtype=np.float32))
    size = sum(t.size * 2 for _, t in tensors)
    print(f"{name}: out {np.asarray(y).shape}, max |y| {np.abs(y).max():.3g}, {size} weight bytes", file=sys.stderr)
    return {"name": name, "flavour": flavour}


def keras2_cases():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    from tf_keras.src.applications import convnext, efficientnet, efficientnet_v2

    rng = np.random.default_rng(23)
    cases = []

    def pixels(shape, low=0.0, high=255.0, batch=2):
        return rng.uniform(low, high, (batch,) + shape).astype(np.float32)

    # MobileNet v1: alpha 0.25 with the top; depth multiplier 2 without it at an odd size.
    model = keras.applications.MobileNet(alpha=0.25, input_shape=(32, 32, 3), weights=None, classes=10)
    randomize(model, rng)
    cases.append(save_case("mobilenet_025_32", model, pixels((32, 32, 3), -1, 1), "keras2", head="conv_preds"))

    model = keras.applications.MobileNet(alpha=0.125, depth_multiplier=2, input_shape=(35, 35, 3), weights=None,
                                         include_top=False, pooling="max")
    randomize(model, rng)
    cases.append(save_case("mobilenet_0125_dm2_35_notop_max", model, pixels((35, 35, 3), -1, 1), "keras2"))

    # MobileNetV3: Small with squeeze-excite and hard-swish; Small minimalistic without the top.
    keras.backend.clear_session()
    model = keras.applications.MobileNetV3Small(alpha=0.25, input_shape=(32, 32, 3), weights=None, classes=10)
    randomize(model, rng)
    cases.append(save_case("mobilenetv3small_025_32", model, pixels((32, 32, 3)), "keras2", head="Logits"))

    keras.backend.clear_session()
    model = keras.applications.MobileNetV3Small(alpha=0.25, minimalistic=True, input_shape=(32, 32, 3), weights=None,
                                                include_top=False, pooling="avg")
    randomize(model, rng)
    cases.append(save_case("mobilenetv3small_minimalistic_025_32_notop", model, pixels((32, 32, 3)), "keras2"))

    # EfficientNet: the family's constructor at a quarter width (B0's block table, depth 1.1 so
    # stages repeat like B1), and EfficientNetV2 B0 and S tables at reduced width/depth.
    keras.backend.clear_session()
    model = efficientnet.EfficientNet(0.125, 1.1, 32, model_name="efficientnet_small", weights=None,
                                      input_shape=(32, 32, 3), classes=10)
    randomize(model, rng)
    cases.append(save_case("efficientnet_w0125_d11_32", model, pixels((32, 32, 3)), "keras2", head="predictions",
                           with_config=True, variance_factor=4.0))

    keras.backend.clear_session()
    model = efficientnet_v2.EfficientNetV2(0.125, 0.5, 32, model_name="efficientnetv2-b0", weights=None,
                                           input_shape=(32, 32, 3), classes=10)
    randomize(model, rng)
    cases.append(save_case("efficientnetv2b0_w0125_d05_32", model, pixels((32, 32, 3)), "keras2", head="predictions"))

    keras.backend.clear_session()
    model = efficientnet_v2.EfficientNetV2(0.125, 0.25, 33, model_name="efficientnetv2-s", weights=None,
                                           input_shape=(33, 33, 3), include_top=False, pooling="avg")
    randomize(model, rng)
    cases.append(save_case("efficientnetv2s_w0125_d025_33_notop", model, pixels((33, 33, 3)), "keras2"))

    # ConvNeXt: keras' own constructor with tiny stages (LayerScale gamma randomized).
    keras.backend.clear_session()
    model = convnext.ConvNeXt(depths=[1, 1, 2, 1], projection_dims=[8, 16, 24, 32], model_name="convnext_test",
                              weights=None, input_shape=(32, 32, 3), classes=10)
    randomize(model, rng)
    cases.append(save_case("convnext_test_32", model, pixels((32, 32, 3)), "keras2", head="convnext_test_head_dense"))

    keras.backend.clear_session()
    model = convnext.ConvNeXt(depths=[1, 1, 1, 1], projection_dims=[8, 8, 16, 16], model_name="convnext_notop",
                              weights=None, input_shape=(40, 40, 3), include_top=False)
    randomize(model, rng)
    cases.append(save_case("convnext_notop_40", model, pixels((40, 40, 3)), "keras2"))
    return cases


def keras2_parameter_counts():
    """Parameter counts of the published variants at their default sizes (no weights are
    committed: the Swift tests rebuild each network and count its weights)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras

    apps = keras.applications
    builders = {f"mobilenet_{alpha}": (lambda a=alpha: apps.MobileNet(alpha=a, weights=None)) for alpha in (0.25, 0.5, 0.75, 1.0)}
    for size in ("Small", "Large"):
        for alpha in (0.75, 1.0):
            builders[f"mobilenetv3{size.lower()}_{alpha}"] = (
                lambda s=size, a=alpha: getattr(apps, f"MobileNetV3{s}")(alpha=a, weights=None))
        builders[f"mobilenetv3{size.lower()}_minimalistic_1.0"] = (
            lambda s=size: getattr(apps, f"MobileNetV3{s}")(minimalistic=True, weights=None))
    for index in range(8):
        builders[f"efficientnetb{index}"] = lambda i=index: getattr(apps, f"EfficientNetB{i}")(weights=None)
    for variant in ("B0", "B1", "B2", "B3", "S", "M", "L"):
        builders[f"efficientnetv2{variant.lower()}"] = lambda v=variant: getattr(apps, f"EfficientNetV2{v}")(weights=None)
    for variant in ("Tiny", "Small", "Base"):
        builders[f"convnext{variant.lower()}"] = lambda v=variant: getattr(apps, f"ConvNeXt{v}")(weights=None)
    counts = {}
    for name, build in builders.items():
        keras.backend.clear_session()
        counts[name] = int(build().count_params())
        print(f"{name}: {counts[name]} parameters", file=sys.stderr)
    return counts


def keras3_cases():
    import keras

    rng = np.random.default_rng(29)
    cases = []
    # Keras 3 names MobileNetV3's layers differently (conv_bn, expanded_conv_1_expand_bn, …).
    model = keras.applications.MobileNetV3Large(alpha=0.125, input_shape=(32, 32, 3), weights=None,
                                                include_top=False, pooling="max")
    randomize(model, rng)
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    cases.append(save_case("mobilenetv3large_0125_32_keras3", model, x, "keras3"))
    return cases


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--counts"]:
        (OUT / "parameter_counts.json").write_text(json.dumps(keras2_parameter_counts(), indent=1) + "\n")
        sys.exit(0)
    if sys.argv[1:] == ["--keras3"]:
        print(json.dumps(keras3_cases()))
        sys.exit(0)
    for old in OUT.iterdir():
        if old.name != "parameter_counts.json":
            old.unlink()
    cases = keras2_cases()
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    child = subprocess.run([sys.executable, __file__, "--keras3"], check=True, capture_output=True, text=True,
                           env=environment)
    print(child.stderr[-2000:], file=sys.stderr)
    cases += json.loads(child.stdout.strip().splitlines()[-1])
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    if not (OUT / "parameter_counts.json").exists():
        (OUT / "parameter_counts.json").write_text(json.dumps(keras2_parameter_counts(), indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(cases)} cases, {total / 1e6:.2f} MB")
