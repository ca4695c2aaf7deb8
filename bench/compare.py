#!/usr/bin/env python3
"""Compares tlhub's inference speed with TensorFlow, ONNX Runtime, TFLite and OpenVINO on the same random weights.

    swift build -c release --static-swift-stdlib
    ~/venv-tf/bin/python bench/compare.py [--tlhub .build/release/tlhub] [--models mobilenetv2 resnet50 vgg16 efficientnetb0 inceptionv3]
                                          [--batches 1 32] [--seconds 3] [--rounds 3] [--startup] [--json OUT]
    ~/venv-tf/bin/python bench/compare.py --check-only [--models ...]   # convert + parity only, no timing
    ~/venv-tf/bin/python bench/compare.py --models --training [--rounds 3]  # training steps only

Training (`--training`). Images per second of training steps at batch 32 against Keras 3 `fit`
(TensorFlow backend) on the same recipe, bench/train_compare.py's two cases: AlexNet from scratch
(`tlhub train --model alexnet`, 227 px, Adam) and a MobileNetV2 0.35 with its last 10 layers
unfrozen (`tlhub finetune --unfreeze 10`, 160 px, SGD with momentum), 64 random JPEGs in three
classes, 2 epochs, interleaved rounds, each side in its own process. img/s = images × epochs over
the fit alone (tlhub's own "training N s", Keras' `fit` call); the whole command's ratio (process
start to model.h5 saved) is given too. bench/real_photos/run.py runs the same comparison on real
photographs.

Weights. For each model it builds the keras.applications network (tf_keras). Its random weights
live in /tmp/tlhub-bench/<model>.safetensors (weights-only, the file tlhub benchmarks): the first run
draws them (fixed seed; BatchNorm statistics randomized and the classifier scaled so softmax is not
uniform, as scripts/parity_fullsize.py does) and writes the file, later runs load it, so every
engine runs the same weights. The model is converted once per weights file to ONNX (tf2onnx) and to
TFLite (`tf.lite.TFLiteConverter.from_keras_model`, float32, no quantization), cached as
/tmp/tlhub-bench/<model>.<first 12 hex of the weights' SHA-256>.onnx and .tflite (older
<model>.onnx files came from weights nobody kept and are not used). Each conversion runs in a child
process (see "ONNX conversion" below).

Engines. Each runs on 2 threads (the machine this was written for has 2 cores; `--threads 1` runs
every engine on one, to show how each scales), one batch at a time:

- TF: a `tf.function` of the model called on a constant batch (what `model.predict` runs per step,
  without its Python batching overhead); intra-op threads 2, inter-op 1, set before any TF op;
- ORT: an ONNX Runtime `InferenceSession` on the .onnx file, intra-op threads 2, inter-op 1;
- TFLite: TensorFlow's own `tf.lite.Interpreter(num_threads=2)` on the .tflite file, input resized
  to the batch (`resize_tensor_input` + `allocate_tensors`); it applies the XNNPACK delegate by
  default to float models (the printed engine info says whether its log confirms it);
- OpenVINO: `compile_model` of the same .onnx file, reshaped to the batch, on "CPU" with
  INFERENCE_NUM_THREADS 2, PERFORMANCE_HINT LATENCY and INFERENCE_PRECISION_HINT f32 (on a CPU
  with AVX-512 BF16 OpenVINO otherwise runs in bfloat16); skipped, with the reason printed, when
  `import openvino` fails;
- tlhub: `tlhub bench --json` with TLHUB_THREADS=2 (the release build; it times `Model.predict`).

Each Python engine runs in its own worker process (`--worker`), started for one (model, batch)
point: it loads the model, runs the benchmark input once and saves the output, then waits for
timing requests. The workers' outputs are compared with TF's before anything is timed (max abs
difference printed; the run stops if an engine differs by more than 1e-4 x max(1, max |TF|)), so
every row times the same work. tlhub's output is not compared here (scripts/parity_fullsize.py
checks it against Keras). A worker also reports its peak RSS (VmHWM), which includes the Python
interpreter and its imports: TensorFlow's (several hundred MB) for TF and for TFLite, which is
reached through `tf.lite`. tlhub reports its own peak RSS the same way.

Timing. Every measurement times at least `--seconds` of passes after 2 untimed warm-up passes
(tlhub runs as a new process for each measurement, its load untimed; `--iterations` is chosen
from the pass time measured before and the run repeated if it falls short; the first estimate
comes from an untimed one-pass run). The runs interleave: in
each of `--rounds` rounds, for each (model, batch) point, every engine is timed once, in an order
that rotates by one engine per round; the workers of the other engines wait idle meanwhile. The
table gives per engine the median images/second over rounds and the spread (min-max), tlhub's
median over the best peer's (the best of ORT, TFLite and OpenVINO by median), the per-round ratio
(tlhub over the fastest peer of the same round: median and spread over rounds, which a host whose
speed drifts between rounds disturbs less), tlhub's median over TF's, the host's steal (the share
of CPU time /proc/stat counts as taken by other guests while each engine was timed: median and
spread over the point's measurements; above a few percent the run is noise), and
a second table the peak RSS (max over rounds). `--json OUT` writes every measurement.

Start-up (`--startup`). Wall time from process start to the .npy written, for one 320x240 JPEG of
random pixels and MobileNetV2's pooled features, with the weights of
/tmp/tlhub-bench/mobilenetv2.safetensors: `tlhub features --model that.safetensors IMG.jpg -o
out.npy` (TLHUB_THREADS=2) against a `python -c` process that imports TensorFlow and tf_keras,
builds MobileNetV2(include_top=False, pooling="avg"), sets the same weights from the same file,
reads the JPEG with PIL, resizes it to 224x224 (nearest, as Keras' load_img), applies
preprocess_input, calls `model.predict` and saves with `np.save`. Each runs once untimed (page
cache), then tlhub 10 times and Python 3 times, interleaved; medians reported. The largest
difference between the two feature vectors is printed (the two JPEG decoders may differ slightly).

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
with BatchNorm folded in, 35 Clip, one MatMul), and ONNX Runtime and OpenVINO apply their own graph
optimizations when they load the model. The TFLite conversion runs in a child process too (it
freezes the weights as well; VGG16 peaked at 5.2 GB), and also prints its peak RSS. The parity
check verifies every converted model.
"""
import argparse
import hashlib
import json
import math
import os
import pathlib
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np  # noqa: E402

# TensorFlow and tf_keras are imported where they are used: the ORT and OpenVINO workers do without.
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "Tests" / "Fixtures")]  # parity_fullsize, make_engine_fixtures

WORK = pathlib.Path("/tmp/tlhub-bench")
MODELS = {
    "mobilenetv2": lambda keras: keras.applications.MobileNetV2(alpha=1.0, weights=None),
    "resnet50": lambda keras: keras.applications.ResNet50(weights=None),
    "vgg16": lambda keras: keras.applications.VGG16(weights=None),
    "efficientnetb0": lambda keras: keras.applications.EfficientNetB0(weights=None),
    "inceptionv3": lambda keras: keras.applications.InceptionV3(weights=None),
}
INPUT_SIZES = {"inceptionv3": 299}  # every other model: 224
SEED = 0
CHECK_BATCH = 2
THREADS = 2
WEIGHTS_RECIPE = f"keras.utils.set_random_seed({SEED}) + scripts/parity_fullsize.py randomize"
WORKER_ENGINES = ("TF", "ORT", "TFLite", "OpenVINO")  # TF first: its output is the reference
ENGINES = WORKER_ENGINES + ("tlhub",)
PEERS = ("ORT", "TFLite", "OpenVINO")
STARTUP_RUNS = {"tlhub": 10, "python": 3}


def weight_name(layer, variable):
    return f"{layer.name}/{variable.name.split('/')[-1].split(':')[0]}"


def write_weights_only(model, path):
    """A tlhub .safetensors: `<layer>/<weight>` float32 tensors, no model config (written atomically)."""
    from make_engine_fixtures import flat_layers, write_safetensors

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
    from make_engine_fixtures import flat_layers

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
    import tf_keras as keras
    from parity_fullsize import randomize

    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = MODELS[name](keras)
    weights = WORK / f"{name}.safetensors"
    if weights.exists() and weights_recipe(weights) == WEIGHTS_RECIPE:
        read_weights_only(model, weights)
    else:
        rng = np.random.default_rng(SEED)
        probe = rng.uniform(-1, 1, (CHECK_BATCH,) + tuple(model.input_shape[1:])).astype(np.float32)
        randomize(model, rng, probe)
        write_weights_only(model, weights)
    return model, weights


def weights_file(name):
    """WORK/<name>.safetensors, drawn first (in this process, importing TensorFlow) if missing or outdated."""
    weights = WORK / f"{name}.safetensors"
    if not (weights.exists() and weights_recipe(weights) == WEIGHTS_RECIPE):
        model, _ = build_model(name)
        del model
    return weights


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def peak_rss_mb():
    """This process's peak resident set size (Linux VmHWM, else getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def convert_to_onnx(name, output):
    """The `--convert` child for .onnx: tf2onnx conversion of WORK/<name>.safetensors's model into `output`.

    Must run in a fresh process with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (see the module docstring).
    """
    import onnx
    import tensorflow as tf
    import tf2onnx
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "python":
        raise RuntimeError("--convert needs PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python set before start")
    if not hasattr(np, "product"):
        np.product = np.prod  # tf2onnx 1.17's large_model path still calls np.product, gone in NumPy 2.
    model, _ = build_model(name)
    spec = (tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="input"),)
    function = tf.function(lambda x: model(x, training=False))
    # large_model only where it is needed (VGG16's memory, see above): on EfficientNetB0 it turns the
    # Normalization layer's statistics into graph inputs, which the default path keeps as constants.
    large = model.count_params() > 50_000_000
    model_proto, storage = tf2onnx.convert.from_function(function, input_signature=spec, opset=13, large_model=large)
    # tf2onnx leaves an adapted Normalization layer's statistics (EfficientNet's) as graph inputs
    # named after the op reading them: `…/normalization/sub/y:0` is the mean, `…/Sqrt/x:0` the
    # variance. They become constants of the layer's values.
    for graph_input in list(model_proto.graph.input):
        if graph_input.name == "input":
            continue
        layer_name, op = graph_input.name.split("/")[-3], graph_input.name.split("/")[-2]
        layer = model.get_layer(layer_name)
        value = {"sub": layer.mean, "Sqrt": layer.variance}[op].numpy().astype(np.float32)
        shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        model_proto.graph.initializer.append(onnx.numpy_helper.from_array(value.reshape(shape), graph_input.name))
        model_proto.graph.input.remove(graph_input)
    del model, function
    if not large:
        partial = output.with_name(output.name + ".partial")
        onnx.save_model(model_proto, str(partial))
        os.replace(partial, output)
        return
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


def convert_to_tflite(name, output):
    """The `--convert` child for .tflite: float32 TFLite flatbuffer of WORK/<name>.safetensors's model."""
    import tensorflow as tf

    model, _ = build_model(name)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)  # no optimizations: float32 as trained
    flatbuffer = converter.convert()
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(flatbuffer)
    os.replace(partial, output)


def converted(name, weights, digest, suffix):
    """WORK/<name>.<digest>.<suffix>, converted first in a child process if not cached."""
    path = WORK / f"{name}.{digest[:12]}{suffix}"
    if not path.exists():
        environment = dict(os.environ)
        if suffix == ".onnx":
            environment["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        begin = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--convert", name, "--output", str(path)], env=environment,
                       check=True)
        print(f"conversion took {time.perf_counter() - begin:.0f} s", flush=True)
    return path


# Worker side: one engine, one model, one batch per process.

def load_tf(name, files, x):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)  # before any TF op
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model, _ = build_model(name)
    function = tf.function(lambda x: model(x, training=False))
    constant = tf.constant(x)
    info = {"version": tf.__version__, "threads": tf.config.threading.get_intra_op_parallelism_threads()}
    return (lambda: function(constant).numpy()), info


def load_ort(name, files, x):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(files[".onnx"]), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return (lambda: session.run(None, {input_name: x})[0]), {"version": ort.__version__, "threads": THREADS}


def load_tflite(name, files, x):
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": it is still TF's own
        interpreter = tf.lite.Interpreter(model_path=str(files[".tflite"]), num_threads=THREADS)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, list(x.shape))
    interpreter.allocate_tensors()

    def run():
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return run, {"version": tf.__version__, "threads": THREADS}


def compile_openvino(onnx, shape, profiling=False):
    """The ONNX file compiled for OpenVINO's CPU plugin on THREADS threads, latency hint, float32
    (with per-node counters when `profiling`, for layer_profile.py)."""
    import openvino as ov
    import openvino.properties as properties
    import openvino.properties.hint as hints

    core = ov.Core()
    model = core.read_model(str(onnx))
    model.reshape(list(shape))
    return core.compile_model(model, "CPU", dict([
        properties.inference_num_threads(THREADS),
        hints.performance_mode(hints.PerformanceMode.LATENCY),
        hints.inference_precision(ov.Type.f32),
        properties.enable_profiling(profiling),
    ]))


def load_openvino(name, files, x):
    import openvino as ov
    import openvino.properties as properties
    import openvino.properties.hint as hints

    compiled = compile_openvino(files[".onnx"], x.shape)
    request = compiled.create_infer_request()
    info = {"version": ov.get_version(), "threads": compiled.get_property(properties.inference_num_threads()),
            "precision": compiled.get_property(hints.inference_precision()).get_type_name()}
    return (lambda: request.infer({0: x})[0]), info


LOADERS = {"TF": load_tf, "ORT": load_ort, "TFLite": load_tflite, "OpenVINO": load_openvino}


def timed(run, seconds, warmup=2):
    """(mean seconds per call, calls) after `warmup` untimed calls; at least `seconds` and 3 calls timed."""
    for _ in range(warmup):
        run()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return sum(times) / len(times), len(times)


def worker(engine, name, files, input_path, output_path):
    """The `--worker` child: loads `engine`, saves its output on the input, then times on request.

    Protocol, one JSON object per line on the original stdout (anything libraries print goes to
    stderr): {"ready", "load_seconds", "info"} or {"skipped": reason}; then for each line
    "SECONDS" read on stdin, {"seconds_per_batch", "calls", "peak_rss_mb"}.
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def say(**fields):
        protocol.write(json.dumps(fields) + "\n")

    x = np.load(input_path)
    begin = time.perf_counter()
    try:
        run, info = LOADERS[engine](name, files, x)
    except ImportError as error:
        say(skipped=f"{type(error).__name__}: {error}")
        return
    np.save(output_path, run())
    say(ready=True, load_seconds=time.perf_counter() - begin, info=info)
    for line in sys.stdin:
        seconds_per_batch, calls = timed(run, float(line))
        say(seconds_per_batch=seconds_per_batch, calls=calls, peak_rss_mb=peak_rss_mb())


# Parent side.

class Worker:
    """A `--worker` child process and its end of the protocol; its stderr goes to a log file in `folder`."""

    def __init__(self, engine, name, files, folder, input_path):
        self.engine = engine
        self.output_path = folder / f"output-{engine}.npy"
        self.log_path = folder / f"{engine}.log"
        arguments = [sys.executable, __file__, "--worker", engine, "--threads", str(THREADS), "--name", name, "--onnx", str(files[".onnx"]),
                     "--tflite", str(files[".tflite"]), "--input", str(input_path), "--output", str(self.output_path)]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                            text=True)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def receive(self):
        line = self.process.stdout.readline()
        if not line:
            tail = "".join(self.log().splitlines(keepends=True)[-40:])
            raise RuntimeError(f"the {self.engine} worker exited (status {self.process.wait()}); "
                               f"the end of its stderr:\n{tail}")
        return json.loads(line)

    def time(self, seconds):
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def check_parity(name, batch, engine, expected, actual):
    """Raises unless `actual` matches TF's output within 1e-4 x max(1, max |TF|); returns the max difference."""
    if actual.shape != expected.shape:
        raise RuntimeError(f"{name} batch {batch}: {engine} output has shape {actual.shape}, TF's {expected.shape}")
    difference = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    tolerance = 1e-4 * max(1.0, float(np.max(np.abs(expected))))
    print(f"parity {name} batch {batch}: max |{engine} - TF| = {difference:.3g} (tolerance {tolerance:.3g}, "
          f"max |TF| {float(np.max(np.abs(expected))):.3g})", flush=True)
    if not difference <= tolerance:
        raise RuntimeError(f"{name} batch {batch}: {engine} differs from TensorFlow by {difference:.3g} "
                           f"> {tolerance:.3g}; its model does not compute the same thing")
    return difference


def start_workers(name, batch, files, folder, skipped, versions):
    """Ready workers for every engine not skipped, their outputs checked against TF's. Returns (workers, parity)."""
    side = INPUT_SIZES.get(name, 224)
    x = np.random.default_rng([SEED, batch]).uniform(-1, 1, (batch, side, side, 3)).astype(np.float32)
    input_path = folder / f"input-{batch}.npy"
    np.save(input_path, x)
    workers = {}
    try:
        for engine in WORKER_ENGINES:
            if engine not in skipped:
                workers[engine] = Worker(engine, name, files, folder, input_path)
        for engine, process in list(workers.items()):
            message = process.receive()
            if "skipped" in message:
                if engine == "TF":
                    raise RuntimeError(f"TF is the reference and cannot run: {message['skipped']}")
                skipped[engine] = message["skipped"]
                print(f"{engine} skipped: {message['skipped']}", flush=True)
                process.close()
                del workers[engine]
            elif engine not in versions:
                versions[engine] = message["info"]
                if engine == "TFLite":  # the interpreter logs it when it applies the delegate
                    versions[engine]["xnnpack"] = "XNNPACK delegate" in process.log()
                print(f"{engine}: {message['info']}", flush=True)
        expected = np.load(workers["TF"].output_path).astype(np.float64)
        parity = {engine: check_parity(name, batch, engine, expected, np.load(process.output_path))
                  for engine, process in workers.items() if engine != "TF"}
    except BaseException:
        for process in workers.values():
            process.close()
        raise
    return workers, parity


def tlhub_bench(tlhub, weights, batch, iterations, warmup=2):
    result = subprocess.run([tlhub, "bench", "--model", str(weights), "--batch", str(batch), "--json",
                             "--iterations", str(iterations), "--warmup", str(warmup)],
                            env=dict(os.environ, TLHUB_THREADS=str(THREADS)), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"tlhub bench failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_tlhub(tlhub, weights, batch, seconds, estimate):
    """A `tlhub bench` report timing at least `seconds` of passes; `estimate` is the expected seconds per pass."""
    for _ in range(3):
        report = tlhub_bench(tlhub, weights, batch, max(3, math.ceil(1.05 * seconds / estimate)))
        estimate = report["ms_per_batch"] / 1000
        if report["iterations"] * estimate >= seconds:
            break
    return report


def spread(values, digits=1):
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def cpu_jiffies():
    """(all, steal) CPU time of the machine so far from /proc/stat, or None where there is none."""
    try:
        fields = [int(value) for value in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_percent(before, after):
    """The share of CPU time the hypervisor gave to other guests between two `cpu_jiffies`."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return 100.0 * (after[1] - before[1]) / (after[0] - before[0])


def per_round_ratios(point_samples):
    """tlhub's img/s over the fastest peer's in the same round, one ratio per round with both.

    Engines of one round run minutes apart at most, so a host that slows down for a while moves
    both sides of a ratio; the medians over rounds in the table pair measurements from different
    rounds instead.
    """
    by_round = {}
    for engine, engine_samples in point_samples.items():
        for sample in engine_samples:
            by_round.setdefault(sample["round"], {})[engine] = sample["images_per_second"]
    ratios = []
    for rates in by_round.values():
        peers = [rate for engine, rate in rates.items() if engine in PEERS]
        if "tlhub" in rates and peers:
            ratios.append(rates["tlhub"] / max(peers))
    return ratios


def print_tables(points, samples, skipped):
    print()
    print("Images/second, median (min–max) over rounds:")
    print()
    print("| model | batch | " + " | ".join(ENGINES) + " | tlhub/best peer (which) | per round | tlhub/TF | steal % |")
    print("|---|--:|" + "--:|" * len(ENGINES) + "--:|--:|--:|--:|")
    for point in points:
        cells, medians = [], {}
        for engine in ENGINES:
            rates = [sample["images_per_second"] for sample in samples[point].get(engine, [])]
            if rates:
                medians[engine] = statistics.median(rates)
                cells.append(spread(rates))
            else:
                cells.append("skipped" if engine in skipped else "–")
        peers = {engine: medians[engine] for engine in PEERS if engine in medians}
        best = max(peers, key=peers.get) if peers else None
        versus_best = f"{medians['tlhub'] / peers[best]:.2f} ({best})" if best and "tlhub" in medians else "–"
        versus_tf = f"{medians['tlhub'] / medians['TF']:.2f}" if "tlhub" in medians and "TF" in medians else "–"
        paired = per_round_ratios(samples[point])
        per_round = spread(paired, digits=2) if paired else "–"
        steals = [sample["steal_percent"] for engine_samples in samples[point].values() for sample in engine_samples
                  if sample.get("steal_percent") is not None]
        steal = spread(steals, digits=0) if steals else "–"
        print(f"| {point[0]} | {point[1]} | " + " | ".join(cells) + f" | {versus_best} | {per_round} | {versus_tf} | {steal} |")
    print()
    print("Peak RSS in MB, max over rounds (Python engines: the worker process, imports included):")
    print()
    print("| model | batch | " + " | ".join(ENGINES) + " |")
    print("|---|--:|" + "--:|" * len(ENGINES))
    for point in points:
        cells = []
        for engine in ENGINES:
            peaks = [sample["peak_rss_mb"] for sample in samples[point].get(engine, [])]
            cells.append(f"{max(peaks):.0f}" if peaks else ("skipped" if engine in skipped else "–"))
        print(f"| {point[0]} | {point[1]} | " + " | ".join(cells) + " |")


# The Python side of the start-up comparison: what a tf.keras user runs for one image's features.
STARTUP_PYTHON = r"""
import json, os, struct, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
import tf_keras as keras
from PIL import Image

weights, image, output = sys.argv[1:4]
model = keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=None)
with open(weights, "rb") as f:
    (length,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(length))
    data = f.read()
def tensor(name):
    begin, end = header[name]["data_offsets"]
    return np.frombuffer(data, "<f4", (end - begin) // 4, begin).reshape(header[name]["shape"])
for layer in model.layers:
    if layer.weights:
        layer.set_weights([tensor(layer.name + "/" + v.name.split("/")[-1].split(":")[0]) for v in layer.weights])
pixels = np.asarray(Image.open(image).convert("RGB").resize((224, 224), Image.NEAREST), np.float32)
features = model.predict(keras.applications.mobilenet_v2.preprocess_input(pixels[None]), verbose=0)
np.save(output, features)
"""


def startup(tlhub, folder):
    """Wall times (seconds) from process start to .npy written: {"tlhub": [...], "python": [...], ...}."""
    from PIL import Image

    weights = weights_file("mobilenetv2")
    image = folder / "startup.jpg"
    pixels = np.random.default_rng(SEED).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image, quality=90)
    outputs = {"tlhub": folder / "startup-tlhub.npy", "python": folder / "startup-python.npy"}
    commands = {
        "tlhub": [tlhub, "features", "--model", str(weights), str(image), "-o", str(outputs["tlhub"])],
        "python": [sys.executable, "-c", STARTUP_PYTHON, str(weights), str(image), str(outputs["python"])],
    }
    environment = dict(os.environ, TLHUB_THREADS=str(THREADS))

    def wall(kind):
        outputs[kind].unlink(missing_ok=True)
        begin = time.perf_counter()
        result = subprocess.run(commands[kind], env=environment, capture_output=True, text=True)
        seconds = time.perf_counter() - begin
        if result.returncode != 0 or not outputs[kind].exists():
            raise RuntimeError(f"start-up run of {kind} failed ({result.returncode}):\n{result.stderr}")
        return seconds

    for kind in commands:
        wall(kind)  # warms the page cache, untimed
    difference = float(np.max(np.abs(np.load(outputs["tlhub"]) - np.load(outputs["python"]))))
    print(f"start-up: max |tlhub - Keras| over the {np.load(outputs['python']).shape[1]} features = "
          f"{difference:.3g}", flush=True)
    times = {kind: [] for kind in commands}
    for run in range(max(STARTUP_RUNS.values())):
        for kind in commands:
            if run < STARTUP_RUNS[kind]:
                times[kind].append(wall(kind))
    return {**times, "max_abs_difference": difference}


def machine():
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
    return {"cpu": model, "cores": os.cpu_count(), "python": sys.version.split()[0]}


def main():
    global THREADS  # --threads: the loaders and the tlhub runs read it
    parser = argparse.ArgumentParser()
    parser.add_argument("--tlhub", default=str(ROOT / ".build/release/tlhub"))
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 32])
    parser.add_argument("--seconds", type=float, default=3, help="timed seconds per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads every engine runs on (default {THREADS}; 1 shows each engine's scaling against a 2-thread run)")
    parser.add_argument("--startup", action="store_true", help="also time one JPEG's features from process start")
    parser.add_argument("--json", type=pathlib.Path, metavar="OUT", help="write every measurement to OUT")
    parser.add_argument("--training", action="store_true",
                        help="also time training steps (AlexNet from scratch, MobileNetV2 with 10 layers unfrozen) against Keras fit")
    parser.add_argument("--check-only", action="store_true",
                        help=f"convert and compare every engine with TF at batch {CHECK_BATCH}; no timing, no tlhub")
    parser.add_argument("--convert", choices=list(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=WORKER_ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--input", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", choices=list(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--tflite", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be positive")
    THREADS = args.threads
    if args.worker:
        worker(args.worker, args.name, {".onnx": args.onnx, ".tflite": args.tflite}, args.input, args.output)
        return
    if args.convert:
        (convert_to_onnx if args.output.suffix == ".onnx" else convert_to_tflite)(args.convert, args.output)
        print(f"converted {args.convert} to {args.output} ({args.output.stat().st_size / 1e6:.0f} MB), "
              f"peak RSS {peak_rss_mb():.0f} MB", flush=True)
        return
    if args.rounds < 1 or args.seconds <= 0 or any(batch < 1 for batch in args.batches):
        parser.error("--rounds and --batches must be positive, --seconds above 0")
    WORK.mkdir(exist_ok=True)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder)


def run(args, folder):
    batches = [CHECK_BATCH] if args.check_only else args.batches
    rounds = 1 if args.check_only else args.rounds
    files = {}
    for name in args.models:
        weights = weights_file(name)
        digest = file_digest(weights)
        files[name] = {"weights": weights, ".onnx": converted(name, weights, digest, ".onnx"),
                       ".tflite": converted(name, weights, digest, ".tflite")}
    points = [(name, batch) for name in args.models for batch in batches]
    samples = {point: {} for point in points}
    parity = {point: [] for point in points}
    skipped, versions, estimates = {}, {}, {}
    for round_index in range(rounds):
        for point in points:
            name, batch = point
            model_files = {suffix: files[name][suffix] for suffix in (".onnx", ".tflite")}
            workers, differences = start_workers(name, batch, model_files, folder, skipped, versions)
            parity[point].append(differences)
            try:
                if args.check_only:
                    continue
                if point not in estimates:  # an untimed one-pass run: how many passes make --seconds
                    report = tlhub_bench(args.tlhub, files[name]["weights"], batch, iterations=1, warmup=1)
                    estimates[point] = report["ms_per_batch"] / 1000
                shift = round_index % len(ENGINES)
                for position, engine in enumerate(ENGINES[shift:] + ENGINES[:shift]):
                    jiffies = cpu_jiffies()
                    if engine == "tlhub":
                        report = time_tlhub(args.tlhub, files[name]["weights"], batch, args.seconds, estimates[point])
                        estimates[point] = report["ms_per_batch"] / 1000
                        sample = {"seconds_per_batch": estimates[point], "calls": report["iterations"],
                                  "peak_rss_mb": report["peak_rss_mb"]}
                    elif engine in workers:
                        sample = workers[engine].time(args.seconds)
                    else:
                        continue
                    sample.update(round=round_index, position=position, steal_percent=steal_percent(jiffies, cpu_jiffies()),
                                  images_per_second=batch / sample["seconds_per_batch"])
                    samples[point].setdefault(engine, []).append(sample)
                    # Printed as measured too, so a run that dies later keeps its numbers.
                    steal = sample["steal_percent"]
                    print(f"round {round_index + 1} {name} batch {batch} {engine}: "
                          f"{sample['images_per_second']:.1f} img/s, {sample['calls']} passes, "
                          f"peak {sample['peak_rss_mb']:.0f} MB"
                          + (f", steal {steal:.0f} %" if steal is not None else ""), flush=True)
            finally:
                for process in workers.values():
                    process.close()
    startup_times = None
    if args.startup and not args.check_only:
        startup_times = startup(args.tlhub, folder)
    if args.json:
        args.json.write_text(json.dumps({
            "arguments": {key: value for key, value in vars(args).items() if key in (
                "tlhub", "models", "batches", "seconds", "rounds", "check_only", "startup")},
            "threads": THREADS, "machine": machine(), "engines": versions, "skipped": skipped,
            "points": [{"model": name, "batch": batch, "parity": parity[(name, batch)],
                        "samples": samples[(name, batch)]} for name, batch in points],
            "startup": startup_times,
        }, indent=1) + "\n")
    if args.check_only:
        return
    if points:
        print_tables(points, samples, skipped)
    if startup_times:
        tlhub_seconds = statistics.median(startup_times["tlhub"])
        python_seconds = statistics.median(startup_times["python"])
        print()
        print("Start-up: one JPEG → MobileNetV2 pooled features → .npy, wall seconds from process start, "
              "median (min–max):")
        print()
        print("| tlhub features | Python + tf.keras | Python / tlhub |")
        print("|--:|--:|--:|")
        print(f"| {spread(startup_times['tlhub'], 3)} (n={len(startup_times['tlhub'])}) | "
              f"{spread(startup_times['python'], 2)} (n={len(startup_times['python'])}) | "
              f"{python_seconds / tlhub_seconds:.1f}× |")


    if args.training:
        training(args.tlhub, args.rounds)


def training(tlhub, rounds, images=64, epochs=2, batch=32):
    """Training steps' img/s, tlhub against Keras `fit`, on bench/train_compare.py's recipes (see the
    module docstring); prints a table."""
    sys.path.insert(0, str(ROOT / "bench"))
    import train_compare  # noqa: E402 (its recipes, and its Keras side in a child process)
    train_compare.TLHUB = pathlib.Path(tlhub)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        work = pathlib.Path(temporary)
        for case in ("alexnet", "mobilenetv2"):
            size = 227 if case == "alexnet" else 160
            data = work / f"data-{case}"
            train_compare.make_images(data, images, size, rng)
            model_file = None
            if case != "alexnet":
                import keras  # only to save the base's weights; the fits run in child processes
                model_file = work / "mobilenet_v2_035.weights.h5"
                keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                               input_shape=(size, size, 3)).save_weights(model_file)
            ours, theirs = [], []
            for round_index in range(rounds):
                ours.append(train_compare.tlhub_run(case, data, size, epochs, batch, work, model_file))
                theirs.append(train_compare.keras_run(case, data, size, epochs, batch))
                print(f"training round {round_index + 1} {case}: tlhub fit {ours[-1][0]:.2f} s, Keras fit {theirs[-1][0]:.2f} s",
                      flush=True)
            rows.append((case, [images * epochs / fit for fit, _ in ours], [images * epochs / fit for fit, _ in theirs],
                         statistics.median(whole for _, whole in theirs) / statistics.median(whole for _, whole in ours)))
    print()
    print(f"Training steps at batch {batch}, images/second of the fit, median (min–max) over {rounds} rounds:")
    print()
    print("| recipe | tlhub | Keras fit (TF) | tlhub/Keras | whole command, Keras/tlhub |")
    print("|---|--:|--:|--:|--:|")
    names = {"alexnet": "AlexNet from scratch, Adam", "mobilenetv2": "MobileNetV2 0.35, last 10 layers unfrozen, SGD"}
    for case, mine, keras_rates, whole_ratio in rows:
        print(f"| {names[case]} | {spread(mine, 1)} | {spread(keras_rates, 1)} | "
              f"{statistics.median(mine) / statistics.median(keras_rates):.2f}× | {whole_ratio:.2f}× |")


if __name__ == "__main__":
    main()
