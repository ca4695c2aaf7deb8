#!/usr/bin/env python3
"""Compares tlhub's inference speed with TensorFlow and ONNX Runtime on the same random weights.

    swift build -c release
    ~/venv-tf/bin/python bench/compare.py [--tlhub .build/release/tlhub] [--models mobilenetv2 resnet50 vgg16]
                                          [--batches 1 32] [--seconds 5]

For each model it builds the keras.applications network (tf_keras) with random weights, writes a
weights-only .safetensors for tlhub into /tmp/tlhub-bench, converts the model to ONNX with tf2onnx,
and measures images/second at each batch size, warm-up excluded:

- TensorFlow: a `tf.function` of the model called on a constant batch (what `model.predict`
  runs per step, without its Python batching overhead);
- ONNX Runtime: an `InferenceSession` with default options (all cores);
- tlhub: `tlhub bench --json` (the release build; it times `Model.predict`).

All three use every core of the machine. The last column is tlhub's speed over ONNX Runtime's.
"""
import argparse
import json
import os
import pathlib
import struct
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = pathlib.Path("/tmp/tlhub-bench")
MODELS = {
    "mobilenetv2": lambda: keras.applications.MobileNetV2(alpha=1.0, weights=None),
    "resnet50": lambda: keras.applications.ResNet50(weights=None),
    "vgg16": lambda: keras.applications.VGG16(weights=None),
}


def write_weights_only(model, path):
    """A tlhub .safetensors: `<layer>/<weight>` float32 tensors, no model config."""
    header, blobs, offset, order = {}, [], 0, []
    for layer in model.layers:
        if layer.weights:
            order.append(layer.name)
        for variable in layer.weights:
            data = np.ascontiguousarray(variable.numpy(), dtype="<f4").tobytes()
            name = f"{layer.name}/{variable.name.split('/')[-1].split(':')[0]}"
            header[name] = {"dtype": "F32", "shape": list(variable.shape), "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            blobs.append(data)
    header["__metadata__"] = {"layer_order": json.dumps(order)}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def timed(run, seconds, warmup=2):
    """Mean seconds per call, after `warmup` untimed calls; at least 3 timed calls."""
    for _ in range(warmup):
        run()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return sum(times) / len(times)


def onnx_session(model, name):
    import onnxruntime as ort
    import tf2onnx

    path = WORK / f"{name}.onnx"
    if not path.exists():
        spec = (tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="input"),)
        function = tf.function(lambda x: model(x, training=False))
        tf2onnx.convert.from_function(function, input_signature=spec, opset=13, output_path=str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tlhub", default=str(ROOT / ".build/release/tlhub"))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 32])
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for name in args.models:
        keras.backend.clear_session()
        model = MODELS[name]()
        weights = WORK / f"{name}.safetensors"
        if not weights.exists():
            write_weights_only(model, weights)
        session, input_name = onnx_session(model, name)
        function = tf.function(lambda x: model(x, training=False))
        for batch in args.batches:
            x = rng.uniform(-1, 1, (batch,) + tuple(model.input_shape[1:])).astype(np.float32)
            constant = tf.constant(x)
            tf_seconds = timed(lambda: function(constant).numpy(), args.seconds)
            ort_seconds = timed(lambda: session.run(None, {input_name: x}), args.seconds)
            result = subprocess.run([args.tlhub, "bench", "--model", str(weights), "--batch", str(batch), "--json"],
                                    capture_output=True, text=True, check=True)
            tlhub = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((name, batch, batch / tf_seconds, batch / ort_seconds, tlhub["images_per_second"],
                         tlhub["ms_per_batch"], tlhub["peak_rss_mb"]))
            # Printed as measured too, so a run that dies later (tf2onnx on VGG16 needs ~20 GB) keeps its rows.
            print(f"measured {rows[-1]}", flush=True)
    print()
    print(f"| {'model':12} | batch | TF img/s | ORT img/s | tlhub img/s | tlhub ms/batch | tlhub peak MB | tlhub/TF | tlhub/ORT |")
    print(f"|{'-' * 14}|------:|---------:|----------:|------------:|---------------:|--------------:|---------:|----------:|")
    for name, batch, tf_rate, ort_rate, rate, ms, rss in rows:
        print(f"| {name:12} | {batch:5} | {tf_rate:8.1f} | {ort_rate:9.1f} | {rate:11.1f} | {ms:14.1f} | {rss:13.0f} | "
              f"{rate / tf_rate:8.2f} | {rate / ort_rate:9.2f} |")


if __name__ == "__main__":
    main()
