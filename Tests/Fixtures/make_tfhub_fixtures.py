#!/usr/bin/env python3
"""Writes the TF Hub MobileNetV2 fixtures (Tests/Fixtures/tfhub/).

Run by hand (never by CI):  ~/venv-tf/bin/python Tests/Fixtures/make_tfhub_fixtures.py

- mobilenet_v2_035/variables/variables.{index,data-00000-of-00001}: a TensorFlow tensor bundle
  written by `tf.compat.v1.train.Saver`, holding the weights of a tf-keras MobileNetV2
  (alpha 0.35, 17 classes, BatchNorm statistics randomised, head scaled) under the TF-Slim names
  TF Hub's MobileNetV2 modules use, behind a `module/` scope
  (`module/MobilenetV2/Conv/weights`, `module/MobilenetV2/Logits/Conv2d_1c_1x1/biases`, …).
  17 classes instead of TF Hub's 1001 keep the file small (1280×1001 floats would be 5 MB);
  the mapping does not depend on the class count.
- input_{32,33}.npy: two images in [0, 1] (TF Hub's input range) of 32×32 and 33×33.
- predictions_{32,33}.npy / features_{32,33}.npy: Keras' softmax output and the average-pooled
  `out_relu` map for those inputs. Keras builds MobileNetV2 for a fixed size, so 33×33 uses a
  second model with the same weights (its `correct_pad` depends on the size).

The script also runs the network the TF-Slim way (TensorFlow `SAME` padding on every stride-2
convolution, BatchNorm epsilon 0.001, straight from the slim-named variables) and checks it
agrees with Keras at both the even and the odd size, which is what makes the renaming valid.
"""
import os
import pathlib
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import tf_keras as keras

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "tfhub"
ALPHA = 0.35
CLASSES = 17
SCOPE = "module/"

BN_WEIGHTS = {"gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
              "moving_variance": "moving_variance"}


def slim_layer(keras_layer):
    """The TF-Slim scope of a Keras MobileNetV2 layer with weights."""
    fixed = {"Conv1": "Conv", "bn_Conv1": "Conv/BatchNorm", "Conv_1": "Conv_1",
             "Conv_1_bn": "Conv_1/BatchNorm", "predictions": "Logits/Conv2d_1c_1x1"}
    if keras_layer in fixed:
        return fixed[keras_layer]
    if keras_layer.startswith("expanded_conv_"):
        block, part = "expanded_conv", keras_layer[len("expanded_conv_"):]
    else:
        number, part = keras_layer[len("block_"):].split("_", 1)
        block = f"expanded_conv_{number}"
    op, _, norm = part.partition("_")
    return f"{block}/{op}" + ("/BatchNorm" if norm else "")


def slim_weight(keras_weight):
    return {"kernel": "weights", "depthwise_kernel": "depthwise_weights", "bias": "biases"}.get(
        keras_weight, BN_WEIGHTS.get(keras_weight))


def slim_variables(model):
    variables = {}
    for layer in model.layers:
        for variable in layer.weights:
            weight = variable.name.split("/")[-1].split(":")[0]
            value = variable.numpy()
            if layer.name == "predictions" and weight == "kernel":
                value = value.reshape(1, 1, *value.shape)
            name = f"MobilenetV2/{slim_layer(layer.name)}/{slim_weight(weight)}"
            assert name not in variables, name
            variables[name] = value
    return variables


def randomise(model, rng):
    """BatchNorm statistics near the real ones (layer by layer, so the signal survives 17 blocks
    and the outputs depend on the image), gamma/beta random, head scaled."""
    images = rng.uniform(0, 1, (8,) + tuple(model.input_shape[1:])).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            activations = keras.Model(model.input, layer.input).predict(images, verbose=0)
            mean = activations.mean(axis=(0, 1, 2))
            variance = activations.var(axis=(0, 1, 2)) + 1e-3
            layer.set_weights([rng.uniform(0.5, 1.5, mean.shape), rng.normal(0, 0.2, mean.shape),
                               mean + rng.normal(0, 0.2, mean.shape) * np.sqrt(variance),
                               variance * rng.uniform(0.5, 1.5, mean.shape)])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 0.5, rng.normal(0, 0.5, bias.shape)])


def slim_forward(v, x):
    """MobileNetV2 as TF-Slim runs it (research/slim/nets/mobilenet/mobilenet_v2.py V2_DEF)."""
    def bn(x, scope):
        p = f"MobilenetV2/{scope}/BatchNorm/"
        return (x - v[p + "moving_mean"]) / np.sqrt(v[p + "moving_variance"] + 1e-3) * v[p + "gamma"] + v[p + "beta"]

    relu6 = lambda t: tf.clip_by_value(t, 0.0, 6.0)
    conv = lambda t, scope, stride=1: tf.nn.conv2d(t, v[f"MobilenetV2/{scope}/weights"], stride, "SAME")
    x = relu6(bn(conv(x, "Conv", 2), "Conv"))
    strides = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
    for index, stride in enumerate(strides):
        block = "expanded_conv" if index == 0 else f"expanded_conv_{index}"
        inputs = x
        if index > 0:
            x = relu6(bn(conv(x, f"{block}/expand"), f"{block}/expand"))
        x = tf.nn.depthwise_conv2d(x, v[f"MobilenetV2/{block}/depthwise/depthwise_weights"], [1, stride, stride, 1], "SAME")
        x = relu6(bn(x, f"{block}/depthwise"))
        x = bn(conv(x, f"{block}/project"), f"{block}/project")
        if stride == 1 and inputs.shape[-1] == x.shape[-1]:
            x = x + inputs
    x = relu6(bn(conv(x, "Conv_1"), "Conv_1"))
    features = tf.reduce_mean(x, axis=[1, 2])
    logits = tf.nn.conv2d(features[:, None, None, :], v["MobilenetV2/Logits/Conv2d_1c_1x1/weights"], 1, "SAME")[:, 0, 0, :]
    logits += v["MobilenetV2/Logits/Conv2d_1c_1x1/biases"]
    return tf.nn.softmax(logits).numpy(), features.numpy()


def write_bundle(variables, prefix):
    """A real TF1-style checkpoint with exactly these names (as hub.Module exports write them)."""
    with tf.Graph().as_default():
        holders = {SCOPE + name: tf.compat.v1.Variable(value.astype(np.float32), name=(SCOPE + name).replace("/", "_"))
                   for name, value in variables.items()}
        saver = tf.compat.v1.train.Saver(holders)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)
    listed = dict(tf.train.list_variables(str(prefix)))
    assert set(listed) == set(holders), sorted(set(listed) ^ set(holders))


def main():
    rng = np.random.default_rng(4)
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "mobilenet_v2_035" / "variables").mkdir(parents=True)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=ALPHA, weights=None, classes=CLASSES)
    randomise(model, rng)
    variables = slim_variables(model)
    write_bundle(variables, OUT / "mobilenet_v2_035" / "variables" / "variables")
    for size in (32, 33):
        sized = model if size == 32 else keras.applications.MobileNetV2(
            input_shape=(size, size, 3), alpha=ALPHA, weights=None, classes=CLASSES)
        sized.set_weights(model.get_weights())
        images = rng.uniform(0, 1, (2, size, size, 3)).astype(np.float32)
        predictions = sized.predict(images, verbose=0)
        base = keras.Model(sized.input, sized.get_layer("out_relu").output)
        features = base.predict(images, verbose=0).mean(axis=(1, 2))
        slim_predictions, slim_features = slim_forward(variables, images)
        print(f"{size}x{size}: spread of features over images {np.abs(features[0] - features[1]).max():.3f}; max|keras - slim| predictions {np.abs(predictions - slim_predictions).max():.2e}, "
              f"features {np.abs(features - slim_features).max():.2e}; max prob {predictions.max():.3f}")
        assert np.allclose(predictions, slim_predictions, atol=1e-4)
        assert np.allclose(features, slim_features, atol=1e-4 * max(1, np.abs(features).max()))
        np.save(OUT / f"input_{size}.npy", images)
        np.save(OUT / f"predictions_{size}.npy", predictions.astype(np.float32))
        np.save(OUT / f"features_{size}.npy", features.astype(np.float32))
    print(f"{len(variables)} variables; files:")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(OUT)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
