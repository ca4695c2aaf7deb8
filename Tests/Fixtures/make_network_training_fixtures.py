#!/usr/bin/env python3
"""Writes the training-through-the-network goldens into Tests/Fixtures/network-training/. Run by
hand, never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_network_training_fixtures.py

Models are saved the way users save them, before training, with BatchNormalization statistics,
gammas and betas randomized (random weights leave BN near identity and prove little):

    convnet.keras       Keras 3: rescaling, strided/dilated/grouped conv, BN, depthwise (multiplier 2),
                        squeeze-excite (broadcast Multiply), residual Add, separable conv, zero
                        padding, max/average pooling, concatenation, cropping, flatten, swish,
                        hard_swish, gelu, elu, softmax
    convnext_irv2.keras Keras 3: ConvNeXt's block (groups=channels conv, LayerNormalization, Dense
                        on pixels, gelu, LayerScale) and InceptionResNetV2's CustomScaleLayer
    tfkeras_bn.h5       tf.keras 2 `model.save`: conv + BN (fused: Bessel-corrected moving variance)
                        + Dense + BN on a flat tensor (not fused)
    nested_frozen.keras Keras 3 fine-tuning recipe: a nested base, its first layers frozen, called
                        with training=False, a new head
    tfkeras_nested.h5   the same recipe saved by tf.keras 2
    keras_layer_order.json  keras.applications bases' `model.layers` names (input dropped): what
                        `finetune --unfreeze N` counts
    augment_*.npy       ImageDataGenerator.apply_transform with fixed parameters, per fill mode

Per case NAME (cases.json): NAME_gradients_{train,infer}.safetensors (tf.GradientTape gradients of
the first batch's loss, training=True / False), NAME_final.safetensors (every weight, statistics
included, after `fit(shuffle=False)`), NAME_history.json. Data: MODEL_x.npy, MODEL_y.npy.
"""
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "network-training"
sys.path.insert(0, str(HERE))
from make_engine_fixtures import write_safetensors  # noqa: E402

N, CLASSES = 20, 3


def short(weight, layer=None):
    name = weight.name.split("/")[-1].split(":")[0]
    # Keras 3 calls a DepthwiseConv2D's kernel `kernel`; tf.keras and tlhub `depthwise_kernel`.
    if layer is not None and type(layer).__name__ == "DepthwiseConv2D" and name == "kernel":
        return "depthwise_kernel"
    # Keras 3's ConvNeXt LayerScale calls its factors `variable`; tlhub (and the layer's docs) `gamma`.
    if layer is not None and type(layer).__name__ == "LayerScale":
        return "gamma"
    return name


def all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from all_layers(layer)
        else:
            yield layer


def weights_of(model):
    return {f"{layer.name}/{short(w, layer)}": np.array(w.numpy()) for layer in all_layers(model) for w in layer.weights}


def trainable_paths(model):
    """`layer/weight` for each of model.trainable_weights, in order."""
    owners = {}
    for layer in all_layers(model):
        for w in layer.trainable_weights:
            owners[id(w)] = f"{layer.name}/{short(w, layer)}"
    return [owners[id(w)] for w in model.trainable_weights]


def randomize(model, rng):
    for layer in all_layers(model):
        if "BatchNormalization" in type(layer).__name__:
            values = []
            for w in layer.weights:
                n = short(w)
                shape = w.shape
                if n == "gamma":
                    values.append(rng.uniform(0.5, 1.5, shape))
                elif n == "beta":
                    values.append(rng.normal(0, 0.3, shape))
                elif n == "moving_mean":
                    values.append(rng.normal(0, 0.5, shape))
                else:
                    values.append(rng.uniform(0.5, 2.0, shape))
            layer.set_weights([v.astype(np.float32) for v in values])
        elif type(layer).__name__ in ("LayerNormalization", "LayerScale"):
            # Away from γ = 1, β = 0 (and ConvNeXt's γ = 1e-6), or the test proves little.
            layer.set_weights([(rng.uniform(0.5, 1.5, w.shape) if short(w, layer) == "gamma" else rng.normal(0, 0.3, w.shape))
                               .astype(np.float32) for w in layer.weights])


def save(path, tensors):
    write_safetensors(path, sorted(tensors.items()), {})


def convnet(keras):
    L = keras.layers
    inp = keras.Input((12, 12, 3), name="image")
    r = L.Rescaling(1 / 2.0, offset=-0.25, name="rescale")(inp)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(r)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    # No bias before a BN on batch statistics: its true gradient is 0, Keras' is float noise, and
    # Adam turns noise into full-size steps, so no two implementations agree on it.
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="dw")(x)
    y = L.BatchNormalization(name="dw_bn")(y)
    y = L.Activation("swish", name="dw_swish")(y)
    s = L.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(y)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(16, 1, activation="sigmoid", name="se_expand")(s)
    y = L.Multiply(name="se_excite")([y, s])
    y = L.Conv2D(8, 1, use_bias=False, name="project")(y)
    y = L.BatchNormalization(name="project_bn")(y)
    x = L.Add(name="add")([x, y])
    z = L.SeparableConv2D(8, 3, padding="same", activation="hard_swish", name="sep")(x)
    z = L.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(z)
    z = L.Conv2D(8, 3, dilation_rate=2, activation="elu", name="dilated")(z)
    m = L.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(x)
    c = L.Concatenate(name="concat")([m, z])
    c = L.Conv2D(8, 2, groups=2, padding="same", activation="gelu", name="grouped")(c)
    c = L.AveragePooling2D(2, strides=1, padding="same", name="avgpool")(c)
    c = L.Cropping2D(((1, 0), (0, 1)), name="crop")(c)
    c = L.Flatten(name="flatten")(c)
    out = L.Dense(CLASSES, activation="softmax", name="classifier")(c)
    return keras.Model(inp, out, name="convnet")


def convnext_irv2(keras):
    """ConvNeXt's block (groups=channels 7×7 conv, LayerNormalization, Dense on pixels, gelu,
    LayerScale, residual Add) and InceptionResNetV2's scaled residual (CustomScaleLayer)."""
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
    L = keras.layers
    inp = keras.Input((10, 10, 3), name="image")
    x = L.Conv2D(8, 2, strides=2, name="stem")(inp)
    x = L.LayerNormalization(epsilon=1e-6, name="stem_layernorm")(x)
    y = L.Conv2D(8, 7, groups=8, padding="same", name="block_depthwise_conv")(x)
    y = L.LayerNormalization(epsilon=1e-6, name="block_layernorm")(y)
    y = L.Dense(32, name="block_pointwise_conv_1")(y)
    y = L.Activation("gelu", name="block_gelu")(y)
    y = L.Dense(8, name="block_pointwise_conv_2")(y)
    y = LayerScale(1e-6, 8, name="block_layer_scale")(y)
    x = L.Add(name="block_add")([x, y])
    b = L.Conv2D(8, 1, activation="relu", name="branch_conv")(x)
    b = L.Conv2D(8, 3, padding="same", name="branch_up")(b)
    x = CustomScaleLayer(0.17, name="custom_scale_layer")([x, b])
    x = L.Activation("relu", name="block_out")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(CLASSES, activation="softmax", name="classifier")(x)
    return keras.Model(inp, out, name="convnext_irv2")


def small_base(keras, name):
    L = keras.layers
    inp = keras.Input((10, 10, 3), name="base_input")
    x = L.Conv2D(6, 3, padding="same", use_bias=False, name="b_conv1")(inp)
    x = L.BatchNormalization(name="b_bn1")(x)
    x = L.Activation("relu", name="b_relu1")(x)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="b_conv2")(x)
    x = L.BatchNormalization(name="b_bn2")(x)
    x = L.Activation("relu", name="b_relu2")(x)
    return keras.Model(inp, x, name=name)


def nested(keras):
    base = small_base(keras, "base")
    base.trainable = True
    for layer in base.layers[:-3]:
        layer.trainable = False
    inp = keras.Input((10, 10, 3), name="image")
    x = base(inp, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(CLASSES, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="finetuned")


def tfkeras_bn(keras):
    L = keras.layers
    inp = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(4, 3, name="conv")(inp)
    x = L.BatchNormalization(name="conv_bn")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.BatchNormalization(name="flat_bn")(x)
    out = L.Dense(CLASSES, activation="softmax", name="classifier")(x)
    return keras.Model(inp, out, name="tfkeras_bn")


def run(keras, tf, name, model, file_name, cases, rng):
    randomize(model, rng)
    shape = model.input_shape[1:]
    x = rng.normal(0, 1.0, (N,) + tuple(shape)).astype(np.float32)
    labels = rng.integers(0, CLASSES, N)
    y = np.eye(CLASSES, dtype=np.float32)[labels]
    np.save(OUT / f"{name}_x.npy", x)
    np.save(OUT / f"{name}_y.npy", y)
    model.save(OUT / file_name)
    initial = {k: v.copy() for k, v in weights_of(model).items()}
    loss = keras.losses.CategoricalCrossentropy()
    paths = trainable_paths(model)
    for mode, training in (("train", True), ("infer", False)):
        with tf.GradientTape() as tape:
            value = loss(y[:8], model(x[:8], training=training))
        grads = tape.gradient(value, model.trainable_weights)
        save(OUT / f"{name}_gradients_{mode}.safetensors", {p: g.numpy() for p, g in zip(paths, grads)})
        # A training=True call moved the moving statistics: put them back.
        for layer in all_layers(model):
            layer.set_weights([initial[f"{layer.name}/{short(w, layer)}"] for w in layer.weights])
    index = []
    for case, optimizer, epochs, batch in cases:
        for layer in all_layers(model):
            layer.set_weights([initial[f"{layer.name}/{short(w, layer)}"] for w in layer.weights])
        options = dict(optimizer)
        kind = options.pop("name")
        opt = keras.optimizers.SGD(**options) if kind == "sgd" else keras.optimizers.Adam(**options)
        model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(), metrics=["categorical_accuracy"])
        history = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0)
        final = weights_of(model)
        save(OUT / f"{case}_final.safetensors", final)
        hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        (OUT / f"{case}_history.json").write_text(json.dumps(hist) + "\n")
        moved = max(float(np.abs(final[k] - initial[k]).max()) for k in initial)
        print(f"{case}: loss {hist['loss']}, max weight change {moved:.3g}")
        index.append({"name": case, "model": file_name, "data": name, "optimizer": optimizer, "epochs": epochs,
                      "batch": batch, "gradients": name})
    return index


def main():
    OUT.mkdir(exist_ok=True)
    index = []
    import tensorflow as tf
    import keras
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(11)
    index += run(keras, tf, "convnet", convnet(keras), "convnet.keras",
                 [("convnet_sgd", dict(name="sgd", learning_rate=0.05, momentum=0.9), 2, 8),
                  ("convnet_adam", dict(name="adam", learning_rate=0.003), 2, 8)], rng)
    keras.utils.set_random_seed(4)
    index += run(keras, tf, "nested_frozen", nested(keras), "nested_frozen.keras",
                 [("nested_frozen_sgd", dict(name="sgd", learning_rate=0.1, momentum=0.9), 3, 8)], rng)
    import tf_keras
    tf_keras.utils.set_random_seed(5)
    index += run(tf_keras, tf, "tfkeras_bn", tfkeras_bn(tf_keras), "tfkeras_bn.h5",
                 [("tfkeras_bn_sgd", dict(name="sgd", learning_rate=0.05), 2, 8)], rng)
    tf_keras.utils.set_random_seed(6)
    index += run(tf_keras, tf, "tfkeras_nested", nested(tf_keras), "tfkeras_nested.h5",
                 [("tfkeras_nested_adam", dict(name="adam", learning_rate=0.01), 2, 8)], rng)
    keras.utils.set_random_seed(7)
    # SGD: under Adam this model is ill-conditioned — Keras itself, from initial weights perturbed
    # by 1e-6 (relative), ends 7e-4 away on branch_conv (a near-dead ReLU channel's gradient is
    # float noise that Adam scales to full steps); under SGD the same perturbation moves 3e-6.
    index += run(keras, tf, "convnext_irv2", convnext_irv2(keras), "convnext_irv2.keras",
                 [("convnext_irv2_sgd", dict(name="sgd", learning_rate=0.05, momentum=0.9), 2, 8)], np.random.default_rng(12))
    (OUT / "cases.json").write_text(json.dumps(index, indent=1) + "\n")
    layer_order()
    augmentation()
    photos_fit()


def layer_order():
    """keras.applications bases (no top) in `model.layers` order: what `--unfreeze N` counts."""
    import keras
    apps = keras.applications
    models = {
        "mobilenetv2": lambda: apps.MobileNetV2(weights=None, include_top=False),
        "mobilenet": lambda: apps.MobileNet(weights=None, include_top=False),
        "resnet50": lambda: apps.ResNet50(weights=None, include_top=False),
        "vgg16": lambda: apps.VGG16(weights=None, include_top=False),
        "efficientnetb0": lambda: apps.EfficientNetB0(weights=None, include_top=False),
        "inceptionv3": lambda: apps.InceptionV3(weights=None, include_top=False),
        "densenet121": lambda: apps.DenseNet121(weights=None, include_top=False),
        "xception": lambda: apps.Xception(weights=None, include_top=False),
    }
    order = {}
    for key, make in models.items():
        model = make()
        order[key] = [layer.name for layer in model.layers[1:]]
        keras.backend.clear_session()
    (OUT / "keras_layer_order.json").write_text(json.dumps(order) + "\n")


AUGMENT_CASES = [
    ("rotate", dict(theta=23.0), "nearest"),
    ("shift", dict(tx=2.6, ty=-3.2), "nearest"),
    ("shear", dict(shear=17.0), "nearest"),
    ("zoom", dict(zx=0.8, zy=1.25), "nearest"),
    ("everything", dict(theta=-12.0, tx=1.3, ty=2.2, shear=8.0, zx=1.1, zy=0.85, flip_horizontal=True), "nearest"),
    ("constant", dict(theta=31.0, zx=1.3, zy=1.3), "constant"),
    ("reflect", dict(theta=31.0, tx=3.5, zx=1.3, zy=1.3), "reflect"),
    ("wrap", dict(theta=31.0, ty=4.5, zx=1.3, zy=1.3), "wrap"),
    ("flips", dict(flip_horizontal=True, flip_vertical=True), "nearest"),
    ("brightness", dict(brightness=1.37), "nearest"),
    ("darker", dict(theta=10.0, brightness=0.61), "nearest"),
]


def augmentation():
    """ImageDataGenerator.apply_transform on an 11×9 RGB image (as img_to_array gives it) with
    fixed parameters: augment_input.npy, augment_NAME.npy, augment_cases.json."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
    rng = np.random.default_rng(21)
    image = rng.integers(0, 256, (11, 9, 3)).astype(np.float32)
    np.save(OUT / "augment_input.npy", image)
    cases = []
    for name, params, fill in AUGMENT_CASES:
        generator = ImageDataGenerator(fill_mode=fill, cval=0.0)
        out = generator.apply_transform(image.copy(), params)
        np.save(OUT / f"augment_{name}.npy", out.astype(np.float32))
        cases.append({"name": name, "fill": fill, **{k: float(v) if not isinstance(v, bool) else v for k, v in params.items()}})
    (OUT / "augment_cases.json").write_text(json.dumps(cases, indent=1) + "\n")



def photos_fit():
    """`tlhub train` end to end: a Keras 3 CNN saved before training (photos_cnn.keras, and its
    to_json() config photos_cnn.json), trained by `fit` on flow_from_directory(shuffle=False)
    batches of the finetune fixture photos, pixels 0–255: photos_cnn_final.safetensors."""
    import keras
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
    keras.utils.set_random_seed(8)
    L = keras.layers
    inp = keras.Input((48, 48, 3), name="image")
    x = L.Conv2D(4, 3, strides=2, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(3, activation="softmax", name="classifier")(x)
    model = keras.Model(inp, out, name="photos_cnn")
    randomize(model, np.random.default_rng(3))
    model.save(OUT / "photos_cnn.keras")
    (OUT / "photos_cnn.json").write_text(model.to_json())
    generator = ImageDataGenerator().flow_from_directory(
        str(HERE / "finetune" / "photos" / "train"), target_size=(48, 48), batch_size=8, shuffle=False)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.001, momentum=0.9),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=["categorical_accuracy"])
    # fit shuffles the batches of a PyDataset unless told not to.
    history = model.fit(generator, epochs=2, verbose=0, shuffle=False)
    save(OUT / "photos_cnn_final.safetensors", weights_of(model))
    print("photos_cnn:", history.history["loss"])

if __name__ == "__main__":
    main()
