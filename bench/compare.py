#!/usr/bin/env python3
"""Compares tlhub's inference speed with TensorFlow and ONNX Runtime on the same random weights.

    swift build -c release
    ~/venv-tf/bin/python bench/compare.py [--tlhub .build/release/tlhub] [--models mobilenetv2 resnet50 vgg16]
                                          [--batches 1 32] [--seconds 5]
    ~/venv-tf/bin/python bench/compare.py --check-only [--models ...]   # convert + parity only, no timing

For each model it builds the keras.applications network (tf_keras). Its random weights live in
/tmp/tlhub-bench/<model>.safetensors (weights-only, the file tlhub benchmarks): the first run draws
them (fixed seed; BatchNorm statistics randomized and the classifier scaled so softmax is not
uniform, as scripts/parity_fullsize.py does) and writes the file, later runs load it, so TensorFlow,
ONNX Runtime and tlhub always run the same weights. The model is converted to ONNX with tf2onnx once
per weights file, cached as /tmp/tlhub-bench/<model>.<first 12 hex of the weights' SHA-256>.onnx
(older <model>.onnx files came from weights nobody kept and are not used). Before timing a batch
size, one TensorFlow and one ONNX Runtime inference on the benchmark input are compared (max abs
difference printed; the run stops if it exceeds 1e-4 x max(1, max |TF|)), so every row times the
same work. Then it measures images/second at each batch size, warm-up excluded:

- TensorFlow: a `tf.function` of the model called on a constant batch (what `model.predict`
  runs per step, without its Python batching overhead);
- ONNX Runtime: an `InferenceSession` with default options (all cores);
- tlhub: `tlhub bench --json` (the release build; it times `Model.predict`).

All three use every core of the machine. The last column is tlhub's speed over ONNX Runtime's.

ONNX conversion. `tf2onnx.convert.from_function(...)` with its defaults needed ~22 GB for VGG16
(138 M parameters, 553 MB) and was OOM-killed. Two things blow up, both from copying the weights:
TensorFlow's freezing + grappler pass (`convert_variables_to_constants_v2` alone peaks at ~5.5 GB,
grappler then passes 9 GB), and tf2onnx's ONNX optimizers under protobuf's default upb backend,
where every optimizer pass rewrites each node's attributes (`del attribute[:]` + `extend`) and upb
keeps the old copy of every weight tensor alive in its arena (+553 MB per pass, dozens of passes).
So the conversion runs in a child process (`--convert`) that sets
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (pure-Python protobuf frees replaced tensors) and calls
`from_function(..., large_model=True)`, which freezes the graph without grappler and keeps the
weights out of the TensorFlow graph while converting; the external tensors are then put back into
the model, which is saved as one ordinary .onnx file (all three models are far below protobuf's
2 GB limit). Peak RSS of the VGG16 conversion: 3.7 GB (`/usr/bin/time -v`); the child prints its
own peak. The tf2onnx converters and ONNX optimizers are the same as before; only grappler's
TF-side rewrites are skipped (the ONNX graphs keep the same ops: e.g. MobileNetV2 still has 52 Conv
with BatchNorm folded in, 35 Clip, one MatMul), and ONNX Runtime applies its own graph
optimizations when it loads the model. The parity check above verifies every converted model.
"""
import argparse
import hashlib
import json
import os
import pathlib
import resource
import struct
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from parity_fullsize import randomize  # noqa: E402  (puts Tests/Fixtures on sys.path too)
from make_engine_fixtures import flat_layers, write_safetensors  # noqa: E402

WORK = pathlib.Path("/tmp/tlhub-bench")
MODELS = {
    "mobilenetv2": lambda: keras.applications.MobileNetV2(alpha=1.0, weights=None),
    "resnet50": lambda: keras.applications.ResNet50(weights=None),
    "vgg16": lambda: keras.applications.VGG16(weights=None),
}
SEED = 0
CHECK_BATCH = 2
WEIGHTS_RECIPE = f"keras.utils.set_random_seed({SEED}) + scripts/parity_fullsize.py randomize"


def weight_name(layer, variable):
    return f"{layer.name}/{variable.name.split('/')[-1].split(':')[0]}"


def write_weights_only(model, path):
    """A tlhub .safetensors: `<layer>/<weight>` float32 tensors, no model config (written atomically)."""
    tensors, order = [], []
    for layer in flat_layers(model):
        if layer.weights:
            order.append(layer.name)
        tensors += [(weight_name(layer, variable), variable.numpy()) for variable in layer.weights]
    partial = path.with_name(path.name + ".partial")
    write_safetensors(partial, tensors, {"layer_order": json.dumps(order), "weights": WEIGHTS_RECIPE})
    os.replace(partial, path)


def read_weights_only(model, path):
    """Loads a file written by `write_weights_only` into `model` (every weight, shapes checked)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    for layer in flat_layers(model):
        values = []
        for variable in layer.weights:
            name = weight_name(layer, variable)
            if name not in header:
                raise ValueError(f"{path}: no weight {name!r} for this model")
            entry = header[name]
            if entry["dtype"] != "F32" or tuple(entry["shape"]) != tuple(variable.shape):
                raise ValueError(f"{path}: {name} is {entry['dtype']} {entry['shape']}, "
                                 f"the model wants F32 {list(variable.shape)}")
            begin, end = entry["data_offsets"]
            values.append(np.frombuffer(data, "<f4", (end - begin) // 4, begin).reshape(entry["shape"]))
        if values:
            layer.set_weights(values)


def weights_recipe(path):
    """The `weights` metadata of a weights file (None for files from older versions of this script)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)).get("__metadata__", {}).get("weights")


def build_model(name):
    """The keras.applications model with the weights of WORK/<name>.safetensors.

    The first run draws them (fixed seed, then scripts/parity_fullsize.py's `randomize`: BatchNorm
    statistics, gamma and beta randomized, classifier scaled so softmax is not uniform; with plain
    Glorot weights VGG16's softmax is 0.001 +- 1e-5 everywhere and any ORT output would pass the
    parity check) and writes the file; later runs load it. A file without the current recipe in its
    metadata (from older versions of this script) is drawn again.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = MODELS[name]()
    weights = WORK / f"{name}.safetensors"
    if weights.exists() and weights_recipe(weights) == WEIGHTS_RECIPE:
        read_weights_only(model, weights)
    else:
        rng = np.random.default_rng(SEED)
        probe = rng.uniform(-1, 1, (CHECK_BATCH,) + tuple(model.input_shape[1:])).astype(np.float32)
        randomize(model, rng, probe)
        write_weights_only(model, weights)
    return model, weights


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def convert_to_onnx(name, output):
    """The `--convert` child: tf2onnx conversion of WORK/<name>.safetensors's model into `output`.

    Must run in a fresh process with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (see the module docstring).
    """
    import onnx
    import tf2onnx
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "python":
        raise RuntimeError("--convert needs PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python set before start")
    if not hasattr(np, "product"):
        np.product = np.prod  # tf2onnx 1.17's large_model path still calls np.product, gone in NumPy 2.
    model, _ = build_model(name)
    spec = (tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="input"),)
    function = tf.function(lambda x: model(x, training=False))
    model_proto, storage = tf2onnx.convert.from_function(function, input_signature=spec, opset=13, large_model=True)
    del model, function
    # Put the external tensors back: one self-contained .onnx, as the default (small-model) path writes.
    tensors = list(model_proto.graph.initializer)
    tensors += [attribute.t for node in model_proto.graph.node for attribute in node.attribute
                if attribute.type == onnx.AttributeProto.TENSOR]
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {entry.key: entry.value for entry in tensor.external_data}["location"]
            tensor.raw_data = storage.name_to_tensor_data.pop(location)
            del tensor.external_data[:]
            tensor.data_location = onnx.TensorProto.DEFAULT
    if storage.name_to_tensor_data:
        raise RuntimeError(f"tf2onnx left {len(storage.name_to_tensor_data)} external tensors unreferenced")
    partial = output.with_name(output.name + ".partial")
    onnx.save_model(model_proto, str(partial))
    os.replace(partial, output)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"converted {name} to {output} ({output.stat().st_size / 1e6:.0f} MB), peak RSS {peak_mb:.0f} MB",
          flush=True)


def onnx_session(name, weights):
    """An ORT session for the model of `weights`, converting it first in a child process if not cached."""
    import onnxruntime as ort

    path = WORK / f"{name}.{file_digest(weights)[:12]}.onnx"
    if not path.exists():
        environment = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
        begin = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--convert", name, "--output", str(path)], env=environment,
                       check=True)
        print(f"conversion took {time.perf_counter() - begin:.0f} s", flush=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def check_parity(name, batch, expected, actual):
    """Raises unless ORT's output matches TF's within 1e-4 x max(1, max |TF|); prints the max difference."""
    difference = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    tolerance = 1e-4 * max(1.0, float(np.max(np.abs(expected))))
    print(f"parity {name} batch {batch}: max |ORT - TF| = {difference:.3g} (tolerance {tolerance:.3g}, "
          f"max |TF| {float(np.max(np.abs(expected))):.3g})", flush=True)
    if not difference <= tolerance:
        raise RuntimeError(f"{name} batch {batch}: ONNX Runtime differs from TensorFlow by {difference:.3g} "
                           f"> {tolerance:.3g}; the ONNX model does not compute the same thing")


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tlhub", default=str(ROOT / ".build/release/tlhub"))
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 32])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--check-only", action="store_true",
                        help=f"convert and compare ORT with TF at batch {CHECK_BATCH}, no timing, no tlhub")
    parser.add_argument("--convert", choices=list(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert:
        convert_to_onnx(args.convert, args.output)
        return
    WORK.mkdir(exist_ok=True)
    batches = [CHECK_BATCH] if args.check_only else args.batches
    rng = np.random.default_rng(0)
    rows = []
    for name in args.models:
        model, weights = build_model(name)
        session, input_name = onnx_session(name, weights)
        function = tf.function(lambda x: model(x, training=False))
        for batch in batches:
            x = rng.uniform(-1, 1, (batch,) + tuple(model.input_shape[1:])).astype(np.float32)
            constant = tf.constant(x)
            check_parity(name, batch, function(constant).numpy().astype(np.float64),
                         session.run(None, {input_name: x})[0])
            if args.check_only:
                continue
            tf_seconds = timed(lambda: function(constant).numpy(), args.seconds)
            ort_seconds = timed(lambda: session.run(None, {input_name: x}), args.seconds)
            result = subprocess.run([args.tlhub, "bench", "--model", str(weights), "--batch", str(batch), "--json"],
                                    capture_output=True, text=True, check=True)
            tlhub = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((name, batch, batch / tf_seconds, batch / ort_seconds, tlhub["images_per_second"],
                         tlhub["ms_per_batch"], tlhub["peak_rss_mb"]))
            # Printed as measured too, so a run that dies later keeps its rows.
            print(f"measured {rows[-1]}", flush=True)
        del session, model, function
    if args.check_only:
        return
    print()
    print(f"| {'model':12} | batch | TF img/s | ORT img/s | tlhub img/s | tlhub ms/batch | tlhub peak MB | tlhub/TF | tlhub/ORT |")
    print(f"|{'-' * 14}|------:|---------:|----------:|------------:|---------------:|--------------:|---------:|----------:|")
    for name, batch, tf_rate, ort_rate, rate, ms, rss in rows:
        print(f"| {name:12} | {batch:5} | {tf_rate:8.1f} | {ort_rate:9.1f} | {rate:11.1f} | {ms:14.1f} | {rss:13.0f} | "
              f"{rate / tf_rate:8.2f} | {rate / ort_rate:9.2f} |")


if __name__ == "__main__":
    main()
