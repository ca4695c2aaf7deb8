#!/usr/bin/env python3
"""A/B of two tlhub builds on the layers a change touches, normalized by layers it does not touch.

    ~/venv-tf/bin/python bench/layer_ab.py --model resnet50 --batch 1 \
        --target '^conv[45]_block\\d_[013]_conv' --control '_2_conv|conv1_conv' \
        /tmp/tlhub-before /tmp/tlhub-after

On a shared machine whole-model throughput swings ±30 % between runs of one binary, so a 3 %
change in a fifth of the network cannot be told from noise. This runs `tlhub bench --profile` on
both builds in alternation (same weights as compare.py, 2 threads), sums each run's time on the
`--target` layers (regex on the profile's layer names; fused layers carry the names of the Keras
layers they hold) and on the `--control` layers, and reports per round pair
`(target_B / control_B) / (target_A / control_A)`: the target's change with the machine's speed
at that moment divided out. Median over the rounds, with the quartiles. Below 1: B is faster.
Pass a shell script for A or B to set environment variables for one side.
"""
import argparse
import pathlib
import re
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from compare import weights_file  # noqa: E402
from layer_profile import tlhub_layer_times  # noqa: E402


def layer_times(tlhub, weights, batch, iterations, target, control):
    """(target ms, control ms) per pass from one `tlhub bench --profile` run."""
    sums = [0.0, 0.0]
    for layer, ms in tlhub_layer_times(tlhub, weights, batch, iterations):
        if target.search(layer):
            sums[0] += ms
        elif control.search(layer):
            sums[1] += ms
    return tuple(sums)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("a", help="build A (the baseline): a tlhub binary or a script that runs one")
    parser.add_argument("b", help="build B (the change)")
    parser.add_argument("--model", default="mobilenetv2")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=0, help="passes per run (default: about 2 s of work)")
    parser.add_argument("--target", required=True, help="regex: the layers the change touches")
    parser.add_argument("--control", required=True, help="regex: layers it does not touch (checked after --target)")
    arguments = parser.parse_args()
    target, control = re.compile(arguments.target), re.compile(arguments.control)
    weights = weights_file(arguments.model)
    iterations = arguments.iterations or max(3, {"vgg16": 8, "resnet50": 40}.get(arguments.model, 200) // arguments.batch)
    runs = {"A": [], "B": []}
    for round_index in range(arguments.rounds):
        for tag, binary in (("A", arguments.a), ("B", arguments.b)):
            runs[tag].append(layer_times(binary, weights, arguments.batch, iterations, target, control))
        (target_a, control_a), (target_b, control_b) = runs["A"][-1], runs["B"][-1]
        print(f"round {round_index + 1}: A target {target_a:.2f} control {control_a:.2f} ms, "
              f"B target {target_b:.2f} control {control_b:.2f} ms", file=sys.stderr)
    if any(t == 0 or c == 0 for r in runs.values() for t, c in r):
        sys.exit("error: a run had no time on the target or the control layers; check the regexes against "
                 "`tlhub bench --profile` names")
    ratios = sorted((tb / cb) / (ta / ca) for (ta, ca), (tb, cb) in zip(runs["A"], runs["B"]))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    share = statistics.median(t / (t + c) for t, c in runs["A"])
    print(f"{arguments.model} batch {arguments.batch}: B/A time on the target layers, normalized by the control "
          f"layers: median {quartiles[1]:.3f} (quartiles {quartiles[0]:.3f}–{quartiles[2]:.3f}, "
          f"{arguments.rounds} rounds; the target is {share:.0%} of target + control in A)")


if __name__ == "__main__":
    main()
