#!/usr/bin/env python3
"""Writes the hub fixtures (Tests/Fixtures/hub/) and the demo hub's files (scripts/demo_hub/files/).

Run by hand (never by CI):  ~/venv-tf/bin/python Tests/Fixtures/make_hub_fixtures.py

- tiny_cnn.h5 / tiny_cnn_notop.h5: a small conv net in the keras.applications weight layout
  (tf-keras `save_weights` HDF5, like the published `*_tf_dim_ordering_tf_kernels*.h5` files),
  BatchNorm statistics randomised so the weights are not trivial.
- tiny_class_index.json: an `imagenet_class_index.json`-shaped asset with 4 classes.
- tiny_saved_model.tar.gz: a SavedModel written by `tf.saved_model.save`, packed like TF Hub's
  `?tf-hub-format=compressed` downloads; tiny_saved_model_variables.json holds every variable's
  checkpoint key, dtype, shape and values as TensorFlow itself reads them back
  (`tf.train.load_variable`), the golden values for the tensor bundle reader.
- evil_*.tar.gz: archives the extractor must refuse (`..`, absolute path, symlink, device).
The demo hub (scripts/demo_hub/demo.json) lists copies of these with their MD5s, which this script
computes and writes, so the manifest always matches the files.
"""
import hashlib
import json
import os
import pathlib
import shutil
import tarfile
import io

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tf_keras as keras

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "hub"
DEMO = ROOT / "scripts" / "demo_hub"


def tiny_model(include_top):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="Conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn_Conv1")(x)
    x = keras.layers.ReLU(6.0, name="Conv1_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="expanded_conv_depthwise")(x)
    x = keras.layers.BatchNormalization(name="expanded_conv_depthwise_BN")(x)
    x = keras.layers.ReLU(6.0, name="expanded_conv_depthwise_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="tiny_cnn")


def randomise(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 4, rng.normal(0, 0.5, bias.shape)])


def saved_model_fixture(rng):
    import tensorflow as tf
    module = tf.Module()
    module.kernel = tf.Variable(rng.normal(size=(3, 4)).astype(np.float32), name="kernel")
    module.bias = tf.Variable(rng.normal(size=(4,)).astype(np.float32), name="bias")
    module.scale = tf.Variable(np.float64(2.5), name="scale")
    module.counts = tf.Variable(np.arange(6, dtype=np.int32).reshape(2, 3) - 2, name="counts")
    module.step = tf.Variable(np.int64(1234567), name="step")
    # Enough variables that the bundle index spans several table blocks.
    module.many = [tf.Variable(rng.normal(size=(2,)).astype(np.float32), name=f"v{i}") for i in range(120)]
    work = OUT / "_saved_model"
    shutil.rmtree(work, ignore_errors=True)
    tf.saved_model.save(module, str(work))
    prefix = str(work / "variables" / "variables")
    golden = []
    for key, shape in tf.train.list_variables(prefix):
        value = tf.train.load_variable(prefix, key)
        if isinstance(value, bytes):
            golden.append({"name": key, "dtype": "string", "shape": shape})
            continue
        golden.append({"name": key, "dtype": str(value.dtype), "shape": list(shape),
                       "values": np.asarray(value, dtype=np.float64).ravel().tolist()})
    (OUT / "tiny_saved_model_variables.json").write_text(json.dumps(golden, indent=1) + "\n")
    with tarfile.open(OUT / "tiny_saved_model.tar.gz", "w:gz") as archive:
        archive.add(str(work), arcname=".")
    shutil.rmtree(work)


def evil_archives():
    def write(name, info, data=b""):
        with tarfile.open(OUT / name, "w:gz") as archive:
            ok = tarfile.TarInfo("ok.txt")
            ok.size = 2
            archive.addfile(ok, io.BytesIO(b"ok"))
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    write("evil_dotdot.tar.gz", tarfile.TarInfo("variables/../../escape.txt"), b"x")
    write("evil_absolute.tar.gz", tarfile.TarInfo("/tmp/escape.txt"), b"x")
    link = tarfile.TarInfo("link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    write("evil_symlink.tar.gz", link)
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    device.devmajor, device.devminor = 1, 3
    write("evil_device.tar.gz", device)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    top = tiny_model(True)
    randomise(top, rng)
    # Full models (config + weights, as `model.save` writes them): the demo must run without --arch.
    top.save(OUT / "tiny_cnn.h5")
    notop = tiny_model(False)
    for layer in notop.layers:
        if layer.weights:
            layer.set_weights(top.get_layer(layer.name).get_weights())
    notop.save(OUT / "tiny_cnn_notop.h5")
    classes = {str(i): [f"n0000000{i}", name] for i, name in enumerate(["cat", "dog", "bird", "fish"])}
    (OUT / "tiny_class_index.json").write_text(json.dumps(classes) + "\n")
    saved_model_fixture(rng)
    evil_archives()

    files = DEMO / "files"
    files.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for name, variant, file_name, fmt in [
        ("tiny_cnn", "top", "tiny_cnn.h5", "keras-h5"),
        ("tiny_cnn", "notop", "tiny_cnn_notop.h5", "keras-h5"),
        ("tiny_class_index", None, "tiny_class_index.json", "json"),
    ]:
        shutil.copyfile(OUT / file_name, files / file_name)
        artifacts.append({
            "name": name, "variant": variant, "url": f"files/{file_name}", "file_name": file_name,
            "hash": {"algorithm": "md5", "value": md5(files / file_name)},
            "size": (files / file_name).stat().st_size, "format": fmt,
            "architecture": "TinyCNN" if fmt == "keras-h5" else None,
            "options": ({"input_size": 32, "include_top": variant == "top", "preprocess": "tf"}
                        | ({"class_index": "demo:tiny_class_index"} if variant == "top" else {})) if fmt == "keras-h5" else {},
        })
    manifest = {"family": "demo", "source": "demo",
                "description": "A tiny offline hub for the quick start; URLs are relative to this directory "
                               "(or to --mirror).",
                "licence": "Apache 2.0 (generated by Tests/Fixtures/make_hub_fixtures.py)",
                "artifacts": artifacts}
    (DEMO / "demo.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print("wrote", sorted(p.name for p in OUT.iterdir()), "and", DEMO / "demo.json")


if __name__ == "__main__":
    main()
