#!/usr/bin/env python3
"""Per-block times of tlhub against ONNX Runtime's profiler, on the weights bench/compare.py benchmarks.

    swift build -c release
    ~/venv-tf/bin/python bench/layer_profile.py [--models mobilenetv2 resnet50] [--batch 1] [--rounds 3]

Which parts of a network are still slower than ONNX Runtime, and by how much. Both engines run the
same file's weights on 2 threads, one batch at a time:

- ONNX Runtime: compare.py's ONNX file for these weights (/tmp/tlhub-bench/<model>.<digest>.onnx;
  the weights are drawn and converted first, as compare.py does, if they are missing), with
  `SessionOptions.enable_profiling`; each node's `*_kernel_time` event, summed per block over the
  timed passes, divided by the passes. tf2onnx keeps the Keras layer name in every node's name
  (`mobilenetv2_1.00_224/block_1_expand/Conv2D`), so nodes group by Keras block.
- tlhub: `tlhub bench --profile` (each layer's mean wall time per pass; fused layers carry the
  names of the Keras layers they hold, `block_1_expand…block_1_project`).

Blocks: MobileNetV2's `Conv1` + `expanded_conv` (one layer in tlhub: the fused stem), `block_N`,
`Conv_1`, `predictions`; ResNet50's `conv1`, `convS_blockN`, `predictions`. The rest (ORT's layout
transposes and reorders, pooling) is in `other`. Rounds alternate the engines; the table gives the
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
from compare import INPUT_SIZES, THREADS, converted, file_digest, weights_file  # noqa: E402

BLOCKS = {
    # Keras layer name → block; the first pattern that matches wins.
    "mobilenetv2": [(r"^(Conv1|bn_Conv1|expanded_conv)", "Conv1+expanded_conv"), (r"^(block_\d+)_", r"\1"),
                    (r"^(Conv_1|out_relu)", "Conv_1"), (r"^predictions", "predictions")],
    "resnet50": [(r"^(conv1)_", r"\1"), (r"^(conv\d_block\d+)_", r"\1"), (r"^predictions", "predictions")],
}


def block_of(model, layer):
    for pattern, name in BLOCKS[model]:
        match = re.match(pattern, layer)
        if match:
            return match.expand(name)
    return "other"


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
    totals = {}
    for event in events:
        name = event["name"][: -len("_kernel_time")]
        parts = name.split("/")
        layer = parts[1] if len(parts) > 1 else parts[0]
        block = block_of(model, layer)
        totals[block] = totals.get(block, 0.0) + event["dur"] / 1000.0
    return {block: total / passes for block, total in totals.items()}


def tlhub_blocks(tlhub, model, weights, batch):
    """ms per pass per block, from `tlhub bench --profile`."""
    command = [tlhub, "bench", "--model", str(weights), "--batch", str(batch), "--profile",
               "--profile-layers", "100000"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    output = result.stdout + result.stderr  # the profile is printed on stderr
    totals = {}
    for line in output.splitlines():
        match = re.match(r"\s*([\d.]+) ms\s+[\d.]+%\s+(\S+)", line)
        if match:
            first_layer = match.group(2).split("…")[0]
            block = block_of(model, first_layer)
            totals[block] = totals.get(block, 0.0) + float(match.group(1))
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
    parser.add_argument("--passes", type=int, default=30, help="ORT passes profiled per round")
    parser.add_argument("--tlhub", default=str(pathlib.Path(__file__).resolve().parent.parent / ".build/release/tlhub"))
    arguments = parser.parse_args()
    for model in arguments.models:
        weights = weights_file(model)
        onnx = converted(model, weights, file_digest(weights), ".onnx")
        rounds = {"ORT": [], "tlhub": []}
        for round_index in range(arguments.rounds):
            rounds["ORT"].append(ort_blocks(model, onnx, arguments.batch, arguments.passes))
            rounds["tlhub"].append(tlhub_blocks(arguments.tlhub, model, weights, arguments.batch))
            print(f"round {round_index + 1}: ORT {sum(rounds['ORT'][-1].values()):.2f} ms, "
                  f"tlhub {sum(rounds['tlhub'][-1].values()):.2f} ms per pass (block sums)", file=sys.stderr)
        names = block_order(set().union(*rounds["ORT"], *rounds["tlhub"]))
        median = {engine: {name: statistics.median(r.get(name, 0.0) for r in rounds[engine]) for name in names}
                  for engine in rounds}
        print(f"\n{model}, batch {arguments.batch}: ms per pass, median of {arguments.rounds} rounds\n")
        print("| block | ORT | tlhub | ORT / tlhub |")
        print("|---|--:|--:|--:|")
        for name in names:
            ort_ms, ours = median["ORT"][name], median["tlhub"][name]
            ratio = f"{ort_ms / ours:.2f}" + (" **slower**" if ours > ort_ms else "") if ours > 0 and ort_ms > 0 else "–"
            print(f"| {name} | {ort_ms:.3f} | {ours:.3f} | {ratio} |")
        ort_total, our_total = sum(median["ORT"].values()), sum(median["tlhub"].values())
        print(f"| total | {ort_total:.3f} | {our_total:.3f} | {ort_total / our_total:.2f} |")


if __name__ == "__main__":
    main()
