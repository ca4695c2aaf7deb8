#!/usr/bin/env python3
"""Per-block times of tlhub against ONNX Runtime's and OpenVINO's profilers, on the weights bench/compare.py benchmarks.

    swift build -c release --static-swift-stdlib
    ~/venv-tf/bin/python bench/layer_profile.py [--models mobilenetv2 resnet50] [--batch 1] [--rounds 3]

Which parts of a network are still slower than ONNX Runtime and OpenVINO, and by how much. The
engines run the same file's weights on 2 threads, one batch at a time:

- ONNX Runtime: compare.py's ONNX file for these weights (/tmp/tlhub-bench/<model>.<digest>.onnx;
  the weights are drawn and converted first, as compare.py does, if they are missing), with
  `SessionOptions.enable_profiling`; each node's `*_kernel_time` event, summed per block over the
  timed passes, divided by the passes. tf2onnx keeps the Keras layer name in every node's name
  (`mobilenetv2_1.00_224/block_1_expand/Conv2D`), so nodes group by Keras block.
- OpenVINO: the same ONNX file with `PERF_COUNT` on (and compare.py's other properties); each
  node's `real_time` from `InferRequest.profiling_info`, summed per block over the timed passes.
  Skipped when `import openvino` fails. Its counters misplace time at some stage boundaries
  (ResNet50's conv2_block3_2_conv, a 116 M-MAC 3×3 layer, reads 0.27 ms, over three times what two
  cores can do, while the total stays near its unprofiled time): a block far ahead of tlhub there
  is a counter artifact; the blocks inside a stage read true.
- tlhub: `tlhub bench --profile` (each layer's mean wall time per pass; fused layers carry the
  names of the Keras layers they hold, `block_1_expand…block_1_project`).

Blocks: MobileNetV2's `Conv1` + `expanded_conv` (one layer in tlhub: the fused stem), `block_N`,
`Conv_1`, `predictions`; ResNet50's `conv1` (with `pool1`), `convS_blockN`, `predictions`. A node
tf2onnx named itself (`Conv__435`, ResNet50's stem convolution) goes to the block of the Keras layer
whose tensor it writes. The rest (the peers' layout transposes and reorders) is in `other`. Rounds alternate the engines; the table gives the
median of each block over the rounds. ORT's profiler adds a little per node, so its total is above
its unprofiled time: read the ratios per block, not the totals. XNNPACK (TFLite) has no per-operator
profiler in its Python API, so it has no column here.
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from compare import INPUT_SIZES, THREADS, compile_openvino, converted, file_digest, weights_file  # noqa: E402

BLOCKS = {
    # Keras layer name → block; the first pattern that matches wins.
    "mobilenetv2": [(r"^(Conv1|bn_Conv1|expanded_conv)", "Conv1+expanded_conv"), (r"^(block_\d+)_", r"\1"),
                    (r"^(Conv_1|out_relu)", "Conv_1"), (r"^predictions", "predictions")],
    "resnet50": [(r"^(conv1|pool1)_", "conv1"), (r"^(conv\d_block\d+)_", r"\1"), (r"^predictions", "predictions")],
}


def block_of(model, layer):
    for pattern, name in BLOCKS[model]:
        match = re.match(pattern, layer)
        if match:
            return match.expand(name)
    return "other"


def onnx_layers(onnx):
    """ONNX node name → the Keras layer it belongs to: the name's second part
    (`resnet50/conv2_block1_1_conv/BiasAdd` → `conv2_block1_1_conv`), or, for a node tf2onnx
    named itself (`Conv__435`), that of the tensor it writes (`resnet50/conv1_bn/...:0`)."""
    import onnx as onnx_package

    layers = {}
    for node in onnx_package.load(str(onnx), load_external_data=False).graph.node:
        source = node.name if "/" in node.name else (node.output[0] if node.output else node.name)
        parts = source.split("/")
        layers[node.name] = parts[1] if len(parts) > 1 else parts[0]
    return layers


def layer_of(layers, name):
    """The Keras layer of a profiler's node name: the ONNX node's, or the name's second part for
    nodes an engine made (`resnet50/conv1_relu/Relu/fq_weights` → `conv1_relu`)."""
    head = name.split("/")[0]
    if name in layers:
        return layers[name]
    if head in layers:  # OpenVINO's suffixes on a tf2onnx name: `Conv__435/WithoutBiases`
        return layers[head]
    parts = name.split("/")
    return parts[1] if len(parts) > 1 else parts[0]


def ort_blocks(model, onnx, batch, passes):
    """ms per pass per block, from ORT's profiler over `passes` timed passes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    size = INPUT_SIZES.get(model, 224)
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)}
    for _ in range(3):
        session.run(None, feed)
    for _ in range(passes):
        session.run(None, feed)
    path = session.end_profiling()
    events = [e for e in json.load(open(path)) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    os.remove(path)
    # The first 3 runs were warm-up: drop their events (each run lists the same nodes in order).
    per_run = len(events) // (passes + 3)
    events = events[3 * per_run:]
    layers = onnx_layers(onnx)
    totals = {}
    for event in events:
        block = block_of(model, layer_of(layers, event["name"][: -len("_kernel_time")]))
        totals[block] = totals.get(block, 0.0) + event["dur"] / 1000.0
    return {block: total / passes for block, total in totals.items()}


def openvino_blocks(model, onnx, batch, passes):
    """ms per pass per block, from OpenVINO's per-node counters over `passes` timed passes."""
    size = INPUT_SIZES.get(model, 224)
    request = compile_openvino(onnx, (batch, size, size, 3), profiling=True).create_infer_request()
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    for _ in range(3):
        request.infer({0: x})
    layers = onnx_layers(onnx)
    totals = {}
    for _ in range(passes):
        request.infer({0: x})
        for node in request.profiling_info:
            block = block_of(model, layer_of(layers, node.node_name))
            totals[block] = totals.get(block, 0.0) + node.real_time.total_seconds() * 1000.0
    return {block: total / passes for block, total in totals.items()}


def tlhub_layer_times(tlhub, weights, batch, iterations=None):
    """(layer name, mean ms per pass) for every layer of `tlhub bench --profile` on THREADS threads;
    a fused layer's name holds the Keras layers it runs (`block_1_expand…block_1_project`)."""
    command = [tlhub, "bench", "--model", str(weights), "--batch", str(batch), "--profile",
               "--profile-layers", "100000"] + (["--iterations", str(iterations)] if iterations else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True,
                            env=dict(os.environ, TLHUB_THREADS=str(THREADS)))
    times = []
    for line in (result.stdout + result.stderr).splitlines():  # the profile is printed on stderr
        match = re.match(r"\s*([\d.]+) ms\s+[\d.]+%\s+(\S+)", line)
        if match:
            times.append((match.group(2), float(match.group(1))))
    return times


def tlhub_blocks(tlhub, model, weights, batch):
    """ms per pass per block, from `tlhub bench --profile`."""
    totals = {}
    for layer, ms in tlhub_layer_times(tlhub, weights, batch):
        block = block_of(model, layer.split("…")[0])
        totals[block] = totals.get(block, 0.0) + ms
    return totals


STEMS = ("Conv1+expanded_conv", "conv1")
TAILS = ("Conv_1", "predictions", "other")


def block_order(names):
    """Network order: the stem, the numbered blocks by their numbers, then the tail."""
    def key(name):
        if name in TAILS:
            return (2, TAILS.index(name), [])
        return (0 if name in STEMS else 1, 0, [int(number) for number in re.findall(r"\d+", name)])
    return sorted(names, key=key)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenetv2", "resnet50"], choices=sorted(BLOCKS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=30, help="passes each peer profiles per round")
    parser.add_argument("--tlhub", default=str(pathlib.Path(__file__).resolve().parent.parent / ".build/release/tlhub"))
    arguments = parser.parse_args()
    try:
        import openvino  # noqa: F401
        peers = {"ORT": ort_blocks, "OpenVINO": openvino_blocks}
    except ImportError:
        print("OpenVINO is not installed (pip install openvino): its column is left out", file=sys.stderr)
        peers = {"ORT": ort_blocks}
    for model in arguments.models:
        weights = weights_file(model)
        onnx = converted(model, weights, file_digest(weights), ".onnx")
        rounds = {engine: [] for engine in [*peers, "tlhub"]}
        for round_index in range(arguments.rounds):
            for engine, blocks in peers.items():
                rounds[engine].append(blocks(model, onnx, arguments.batch, arguments.passes))
            rounds["tlhub"].append(tlhub_blocks(arguments.tlhub, model, weights, arguments.batch))
            sums = ", ".join(f"{engine} {sum(r[-1].values()):.2f} ms" for engine, r in rounds.items())
            print(f"round {round_index + 1}: {sums} per pass (block sums)", file=sys.stderr)
        names = block_order(set().union(*(blocks for r in rounds.values() for blocks in r)))
        median = {engine: {name: statistics.median(r.get(name, 0.0) for r in rounds[engine]) for name in names}
                  for engine in rounds}
        print(f"\n{model}, batch {arguments.batch}: ms per pass, median of {arguments.rounds} rounds; "
              "a ratio below 1 (**slower**) is a block where the peer is faster\n")
        print("| block | " + " | ".join(rounds) + " | " + " | ".join(f"{peer} / tlhub" for peer in peers) + " |")
        print("|---|" + "--:|" * (2 * len(peers) + 1))

        def ratio(peer_ms, ours):
            if ours <= 0 or peer_ms <= 0:
                return "–"
            return f"{peer_ms / ours:.2f}" + (" **slower**" if ours > peer_ms else "")

        for name in [*names, "total"]:
            row = {engine: (sum(median[engine].values()) if name == "total" else median[engine][name]) for engine in rounds}
            print(f"| {name} | " + " | ".join(f"{row[engine]:.3f}" for engine in rounds) + " | "
                  + " | ".join(ratio(row[peer], row["tlhub"]) for peer in peers) + " |")

if __name__ == "__main__":
    main()
