#!/usr/bin/env python3
"""Writes manifests/*.json and Sources/TLHubClient/BundledManifests.swift.

Run by hand in the Keras virtualenv (never by CI):

    ~/venv-tf/bin/python scripts/make_manifests.py [--quick] [--reuse DIR] [--flavours keras3 tf_keras]

`--quick` asks tf-keras for one configuration per family (a cross-check against Keras 3) plus the
families only tf-keras has; the committed manifests were made that way. `--reuse DIR` keeps each flavour's recorded calls in DIR/<flavour>.json and reuses them on the next
run (collecting builds ~400 models and takes a long while on a busy machine). `--flavours` limits
the run to some flavours (tf-keras-only families are then missing).

Keras URLs and hashes are never typed here: every keras.applications constructor (Keras 3 and
tf-keras 2) is called with `weights="imagenet"` while `get_file` is replaced by a recorder, so the
file name, origin URL and `file_hash` are exactly what Keras itself would download and check. The
recorder raises right after recording, so no weights are downloaded. Each Keras flavour runs in its
own subprocess (they cannot share one interpreter); the parent merges entries with the same URL.
"""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
SWIFT_OUT = ROOT / "Sources" / "TLHubClient" / "BundledManifests.swift"

KERAS_LICENCE = ("Apache 2.0 (keras-team/keras); ImageNet-trained weights: check the original "
                 "model's terms before commercial use")
TFHUB_LICENCE = "Apache 2.0 (TensorFlow Hub google/imagenet models)"

# Keras constructor -> (tlhub base name, preprocess mode, default input size). The preprocess
# mode is `imagenet_utils.preprocess_input`'s mode for that family ("none": the model rescales
# its input itself).
MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]
MOBILENET_V1_ALPHAS = [0.25, 0.5, 0.75, 1.0]
ROWS_V2 = [96, 128, 160, 192, 224]
ROWS_V1 = [128, 160, 192, 224]
PLAIN = {
    "VGG16": ("vgg16", "caffe", 224), "VGG19": ("vgg19", "caffe", 224),
    "ResNet50": ("resnet50", "caffe", 224), "ResNet101": ("resnet101", "caffe", 224),
    "ResNet152": ("resnet152", "caffe", 224),
    "ResNet50V2": ("resnet50_v2", "tf", 224), "ResNet101V2": ("resnet101_v2", "tf", 224),
    "ResNet152V2": ("resnet152_v2", "tf", 224),
    "InceptionV3": ("inception_v3", "tf", 299), "Xception": ("xception", "tf", 299),
    "InceptionResNetV2": ("inception_resnet_v2", "tf", 299),
    "DenseNet121": ("densenet121", "torch", 224), "DenseNet169": ("densenet169", "torch", 224),
    "DenseNet201": ("densenet201", "torch", 224),
    "NASNetMobile": ("nasnet_mobile", "tf", 224), "NASNetLarge": ("nasnet_large", "tf", 331),
}
for i, size in enumerate([224, 240, 260, 300, 380, 456, 528, 600]):
    PLAIN[f"EfficientNetB{i}"] = (f"efficientnet_b{i}", "none", size)
for suffix, size in [("B0", 224), ("B1", 240), ("B2", 260), ("B3", 300), ("S", 384), ("M", 480), ("L", 480)]:
    PLAIN[f"EfficientNetV2{suffix}"] = (f"efficientnet_v2_{suffix.lower()}", "none", size)
for size_name in ["Tiny", "Small", "Base", "Large", "XLarge"]:
    PLAIN[f"ConvNeXt{size_name}"] = (f"convnext_{size_name.lower()}", "none", 224)
TF_KERAS_ONLY = {}
for kind in "XY":
    for flops in ["002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320"]:
        TF_KERAS_ONLY[f"RegNet{kind}{flops}"] = (f"regnet_{kind.lower()}{flops}", "none", 224)
for depth, size in [(50, 160), (101, 192), (152, 224), (200, 256), (270, 256), (350, 256), (420, 320)]:
    TF_KERAS_ONLY[f"ResNetRS{depth}"] = (f"resnet_rs{depth}", "none", size)


class Recorded(Exception):
    pass


def collect(flavour, quick=False):
    """Runs in a child process: calls every constructor and prints the recorded downloads.

    With `quick`, tf-keras is asked for one configuration per family (a cross-check: the merge
    fails on any disagreement with Keras 3) plus the families only it has."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if flavour == "keras3":
        import keras
        from keras.src.utils import file_utils as utils
        apps = keras.applications
    else:
        import tf_keras as keras
        from tf_keras.src.utils import data_utils as utils
        apps = keras.applications
    records = []
    current = {}

    def recorder(fname=None, origin=None, file_hash=None, **kwargs):
        records.append(dict(current, file_name=fname, url=origin, hash=file_hash))
        raise Recorded()

    utils.get_file = recorder

    def call(function_name, **kwargs):
        for include_top in (True, False):
            current.clear()
            current.update(meta=dict(function=function_name, include_top=include_top, **meta_of(kwargs)))
            try:
                getattr(apps, function_name)(weights="imagenet", include_top=include_top, **kwargs)
            except Recorded:
                pass
            keras.backend.clear_session()

    def meta_of(kwargs):
        meta = {}
        if "alpha" in kwargs:
            meta["alpha"] = kwargs["alpha"]
        if "input_shape" in kwargs:
            meta["input_size"] = kwargs["input_shape"][0]
        if "minimalistic" in kwargs:
            meta["minimalistic"] = kwargs["minimalistic"]
        return meta

    sample = quick and flavour == "tf_keras"
    for alpha in [1.0] if sample else MOBILENET_V2_ALPHAS:
        for rows in [224] if sample else ROWS_V2:
            call("MobileNetV2", alpha=alpha, input_shape=(rows, rows, 3))
    for alpha in [1.0] if sample else MOBILENET_V1_ALPHAS:
        for rows in [224] if sample else ROWS_V1:
            call("MobileNet", alpha=alpha, input_shape=(rows, rows, 3))
    for function_name in ["MobileNetV3Small", "MobileNetV3Large"]:
        for alpha, minimalistic in [(1.0, False)] if sample else [(0.75, False), (1.0, False), (1.0, True)]:
            call(function_name, alpha=alpha, minimalistic=minimalistic, input_shape=(224, 224, 3))
    plain = ["VGG16", "ResNet50", "ResNet50V2", "InceptionV3", "Xception", "DenseNet121",
             "NASNetMobile", "EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny"] if sample else list(PLAIN)
    names = plain + (list(TF_KERAS_ONLY) if flavour == "tf_keras" else [])
    for function_name in names:
        if hasattr(apps, function_name):
            call(function_name)
        else:
            print(f"warning: {flavour} has no {function_name}", file=sys.stderr)
    # decode_predictions downloads the class index.
    current.clear()
    current.update(meta=dict(function="decode_predictions"))
    try:
        import numpy
        apps.imagenet_utils.decode_predictions(numpy.zeros((1, 1000)))
    except Recorded:
        pass
    json.dump(records, sys.stdout)


def keras_name(meta):
    function = meta["function"]
    if function in ("MobileNetV2", "MobileNet"):
        version = "v2" if function == "MobileNetV2" else "v1"
        return f"mobilenet_{version}_{round(meta['alpha'] * 100):03d}_{meta['input_size']}", "tf", meta["input_size"]
    if function.startswith("MobileNetV3"):
        kind = "large" if function.endswith("Large") else "small"
        minimal = "_minimalistic" if meta["minimalistic"] else ""
        return f"mobilenet_v3_{kind}{minimal}_{round(meta['alpha'] * 100):03d}_224", "none", 224
    return (PLAIN.get(function) or TF_KERAS_ONLY[function])


def keras_manifest(records_by_flavour):
    artifacts = {}
    for flavour, records in records_by_flavour.items():
        for record in records:
            meta = record["meta"]
            if meta["function"] == "decode_predictions":
                continue
            name, preprocess, size = keras_name(meta)
            variant = "top" if meta["include_top"] else "notop"
            key = (name, variant)
            if key in artifacts:
                existing = artifacts[key]
                if existing["url"] != record["url"] or (existing["hash"] or {}).get("value") != record["hash"]:
                    raise SystemExit(f"{name}:{variant}: Keras 3 and tf-keras disagree: {existing} vs {record}")
                existing["keras"].append(flavour)
                continue
            options = {"include_top": meta["include_top"], "input_size": size, "preprocess": preprocess}
            if "alpha" in meta:
                options["alpha"] = meta["alpha"]
            if meta.get("minimalistic"):
                options["minimalistic"] = True
            algorithm = None
            if record["hash"]:
                algorithm = "sha256" if len(record["hash"]) == 64 else "md5"
            artifacts[key] = {
                "name": name,
                "variant": variant,
                "url": record["url"],
                "file_name": record["file_name"],
                "hash": {"algorithm": algorithm, "value": record["hash"]} if algorithm else None,
                "size": None,
                "format": "keras-h5",
                "architecture": meta["function"],
                "options": options,
                "keras": [flavour],
            }
    return sorted(artifacts.values(), key=lambda a: (a["name"], a["variant"]))


def class_index(records_by_flavour):
    for records in records_by_flavour.values():
        for record in records:
            if record["meta"]["function"] == "decode_predictions":
                return record
    raise SystemExit("decode_predictions did not ask for the class index")


def tfhub_manifest():
    artifacts = []
    for depth in ["035", "050", "075", "100", "130", "140"]:
        for resolution in ROWS_V2:
            for variant in ["feature_vector", "classification"]:
                handle = f"google/imagenet/mobilenet_v2_{depth}_{resolution}/{variant}/5"
                artifacts.append({
                    "name": f"mobilenet_v2_{depth}_{resolution}",
                    "variant": variant,
                    "url": f"https://tfhub.dev/{handle}?tf-hub-format=compressed",
                    "file_name": f"mobilenet_v2_{depth}_{resolution}_{variant}_5.tar.gz",
                    "hash": None,
                    "size": None,
                    "format": "tfhub-saved-model-tar-gz",
                    "architecture": "MobileNetV2",
                    "options": {"alpha": int(depth) / 100, "input_size": resolution,
                                "include_top": variant == "classification", "preprocess": "unit",
                                "handle": handle},
                })
    return artifacts


def swift_literal(text):
    return "#\"\"\"\n" + text + "\n\"\"\"#"


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--collect":
        collect(sys.argv[2], quick="--quick" in sys.argv)
        return
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", type=pathlib.Path)
    parser.add_argument("--flavours", nargs="+", default=["keras3", "tf_keras"])
    parser.add_argument("--quick", action="store_true",
                        help="tf-keras: one configuration per family plus RegNet/ResNet-RS")
    arguments = parser.parse_args()
    records = {}
    for flavour in arguments.flavours:
        saved = arguments.reuse / f"{flavour}.json" if arguments.reuse else None
        if saved and saved.exists():
            records[flavour] = json.loads(saved.read_text())
            continue
        out = subprocess.run([sys.executable, __file__, "--collect", flavour] + (["--quick"] if arguments.quick else []), check=True,
                             stdout=subprocess.PIPE).stdout
        records[flavour] = json.loads(out)
        if saved:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(out.decode())
    index = class_index(records)
    manifests = {
        "keras-applications.json": {
            "family": "keras-applications",
            "source": "keras",
            "description": "Every weight file keras.applications downloads (Keras 3 and tf-keras 2), "
                           "copied by scripts/make_manifests.py from Keras's own get_file calls.",
            "licence": KERAS_LICENCE,
            "artifacts": keras_manifest(records),
        },
        "tfhub-mobilenet-v2.json": {
            "family": "tfhub-mobilenet-v2",
            "source": "tfhub",
            "description": "TF Hub google/imagenet/mobilenet_v2 SavedModels (TF2, version 5), compressed.",
            "licence": TFHUB_LICENCE,
            "artifacts": tfhub_manifest(),
        },
        "assets.json": {
            "family": "assets",
            "source": "asset",
            "description": "Small data files the models need.",
            "licence": "Apache 2.0 (keras-team/keras)",
            "artifacts": [{
                "name": "imagenet_class_index",
                "variant": None,
                "url": index["url"],
                "file_name": index["file_name"],
                "hash": {"algorithm": "md5", "value": index["hash"]},
                "size": None,
                "format": "json",
                "architecture": None,
                "options": {},
            }],
        },
    }
    MANIFESTS.mkdir(exist_ok=True)
    swift = ["// Generated by scripts/make_manifests.py from manifests/*.json. Do not edit.",
             "// The manifests are compiled in so an installed `tlhub` needs no data files beside it.",
             "", "enum BundledManifests {",
             "    /// File name and JSON text of each manifest in `manifests/`.",
             "    static let files: [(name: String, json: String)] = ["]
    for file_name, manifest in manifests.items():
        text = json.dumps(manifest, indent=2)
        (MANIFESTS / file_name).write_text(text + "\n")
        swift.append(f"        (\"{file_name}\", {swift_literal(text)}),")
        print(f"{file_name}: {len(manifest['artifacts'])} artifacts", file=sys.stderr)
    swift += ["    ]", "}", ""]
    SWIFT_OUT.write_text("\n".join(swift))


if __name__ == "__main__":
    main()
