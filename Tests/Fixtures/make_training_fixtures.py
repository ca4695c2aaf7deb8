#!/usr/bin/env python3
"""Writes the head-training goldens into Tests/Fixtures/training/. Run by hand, never by CI:

    ~/venv-tf/bin/python Tests/Fixtures/make_training_fixtures.py

Keras 3 `fit` on fixed features (what `tlhub finetune` trains on once the base has run), with
`shuffle=False`, a partial last batch, and the initial weights saved, so tlhub can replay the
same steps and compare the weights after them. Per case NAME (see cases.json):

    NAME.json              head, optimizer, epochs, batch size, class weights, label smoothing
    NAME_initial.safetensors    initial weights  (`<layer>/<weight>`)
    NAME_final.safetensors      weights after `fit`
    NAME_history.json           Keras' per-epoch loss / accuracy
    NAME_gradients.safetensors  tf.GradientTape gradients of the first batch's loss at the initial weights

tensorboard_scalar.tfrecord: TensorFlow's framing of TensorBoard's Event protos, for the encoder;
plus data_x.npy (features [N, D]), data_x4.npy ([N, 2, 2, D] maps) and data_y.npy (one-hot labels).
"""
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "training"
sys.path.insert(0, str(HERE))
from make_engine_fixtures import write_safetensors  # noqa: E402


def save(path, tensors):
    write_safetensors(path, sorted(tensors.items()), {})


def build(head, input_shape, classes):
    inputs = keras.Input(input_shape)
    x = inputs
    for index, layer in enumerate(head):
        kind = layer[0]
        if kind == "gap":
            x = keras.layers.GlobalAveragePooling2D(name=f"gap_{index}")(x)
        elif kind == "flatten":
            x = keras.layers.Flatten(name=f"flatten_{index}")(x)
        elif kind == "dense":
            x = keras.layers.Dense(layer[1], activation=layer[2], name=f"dense_{index}")(x)
    return keras.Model(inputs, x)


def weights_of(model):
    return {f"{layer.name}/{w.path.split('/')[-1]}": w.numpy() for layer in model.layers for w in layer.weights}


def main():
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(10)
    n, d, c = 22, 12, 3
    x = rng.normal(0, 1.5, (n, d)).astype(np.float32)
    labels = rng.integers(0, c, n)
    y = np.eye(c, dtype=np.float32)[labels]
    x4 = rng.normal(0, 1.5, (n, 2, 2, d)).astype(np.float32)
    for key, value in dict(x=x, y=y, x4=x4).items():
        np.save(OUT / f"data_{key}.npy", value)
    yb = (labels == 1).astype(np.float32)[:, None]

    cases = [
        ("sgd_dense", [("dense", c, "softmax")], dict(name="sgd", learning_rate=0.1), 3, 8, {}),
        ("momentum_mlp", [("dense", 16, "relu"), ("dense", c, "softmax")],
         dict(name="sgd", learning_rate=0.05, momentum=0.9), 3, 8, {}),
        ("nesterov_mlp", [("dense", 16, "relu"), ("dense", c, "softmax")],
         dict(name="sgd", learning_rate=0.05, momentum=0.9, nesterov=True), 2, 5, {}),
        ("adam_mlp", [("dense", 16, "relu"), ("dense", 8, "tanh"), ("dense", c, "softmax")],
         dict(name="adam", learning_rate=0.01), 3, 8, {}),
        ("adam_smoothing_weights", [("dense", c, "softmax")], dict(name="adam", learning_rate=0.02), 2, 8,
         dict(label_smoothing=0.1, class_weight={0: 0.5, 1: 2.0, 2: 1.0})),
        ("gap_dense", [("gap",), ("dense", c, "softmax")], dict(name="sgd", learning_rate=0.1, momentum=0.5), 2, 8,
         dict(maps=True)),
        ("flatten_dense", [("flatten",), ("dense", 6, "relu"), ("dense", c, "softmax")],
         dict(name="adam", learning_rate=0.005), 2, 8, dict(maps=True)),
        ("sigmoid_binary", [("dense", 1, "sigmoid")], dict(name="sgd", learning_rate=0.2, momentum=0.9), 3, 8,
         dict(binary=True)),
    ]
    index = []
    for name, head, optimizer, epochs, batch, extra in cases:
        keras.utils.set_random_seed(7)
        inputs = x4 if extra.get("maps") else x
        targets = yb if extra.get("binary") else y
        model = build(head, inputs.shape[1:], c)
        initial = weights_of(model)
        save(OUT / f"{name}_initial.safetensors", initial)
        options = dict(optimizer)
        kind = options.pop("name")
        opt = keras.optimizers.SGD(**options) if kind == "sgd" else keras.optimizers.Adam(**options)
        if extra.get("binary"):
            loss = keras.losses.BinaryCrossentropy()
            metric = "binary_accuracy"
        else:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=extra.get("label_smoothing", 0.0))
            metric = "categorical_accuracy"
        # Gradients of the first batch's loss at the initial weights.
        with tf.GradientTape() as tape:
            value = loss(targets[:batch], model(inputs[:batch], training=True))
        grads = tape.gradient(value, model.trainable_weights)
        save(OUT / f"{name}_gradients.safetensors",
             {f"{w.path.split('/')[-2]}/{w.path.split('/')[-1]}": g.numpy() for w, g in zip(model.trainable_weights, grads)})
        model.compile(optimizer=opt, loss=loss, metrics=[metric])
        history = model.fit(inputs, targets, batch_size=batch, epochs=epochs, shuffle=False, verbose=0,
                            class_weight=extra.get("class_weight"))
        save(OUT / f"{name}_final.safetensors", weights_of(model))
        hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        (OUT / f"{name}_history.json").write_text(json.dumps(hist) + "\n")
        spec = {"name": name, "head": [list(layer) for layer in head], "optimizer": optimizer, "epochs": epochs,
                "batch": batch, "maps": bool(extra.get("maps")), "binary": bool(extra.get("binary")),
                "label_smoothing": extra.get("label_smoothing", 0.0),
                "class_weight": {str(k): v for k, v in (extra.get("class_weight") or {}).items()}}
        index.append(spec)
        moved = max(float(np.abs(weights_of(model)[k] - initial[k]).max()) for k in initial)
        print(f"{name}: loss {hist['loss']}, max weight change {moved:.3g}")
    (OUT / "cases.json").write_text(json.dumps(index, indent=1) + "\n")
    tensorboard_records()


def tensorboard_records():
    """tensorboard_scalar.tfrecord: TensorFlow's own TFRecord framing of TensorBoard's own Event
    protos (file_version, then epoch_loss 0.25 at step 3), for the Swift encoder to equal."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    path = OUT / "tensorboard_scalar.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(event_pb2.Event(wall_time=1234.5, file_version="brain.Event:2").SerializeToString())
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="epoch_loss", simple_value=0.25)])
        writer.write(event_pb2.Event(wall_time=1236.75, step=3, summary=summary).SerializeToString())
    print("tensorboard record:", path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
