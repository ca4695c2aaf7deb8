#!/usr/bin/env python3
"""Writes the committed fixtures of the formats area into Tests/Fixtures/formats/.

Run by hand (never by CI) from the ~/venv-tf virtualenv:

    ~/venv-tf/bin/python Tests/Fixtures/make_formats_fixtures.py

tf-keras (Keras 2) and Keras 3 cannot share one interpreter, so this script re-runs itself in two
child processes: `--keras2` (TF_USE_LEGACY_KERAS=1, legacy `.h5` layouts) and `--keras3`
(`.weights.h5` and `.keras`). Every fixture gets an entry in `golden.json`: for each layer in file
order, each weight's short name, shape, float64 sum and sum of squares and its first values, all
computed from the Keras model's own variables (not by reading the file back).
"""
import json
import os
import pathlib
import subprocess
import sys

OUT = pathlib.Path(__file__).resolve().parent / "formats"


def weight_record(short_name, array):
    import numpy as np
    a = np.asarray(array, dtype=np.float64)
    return {
        "name": short_name,
        "shape": list(a.shape),
        "sum": float(a.sum()),
        "sum_of_squares": float((a * a).sum()),
        "first": [float(x) for x in a.reshape(-1)[:4]],
    }


def randomize(model, seed):
    """Random but non-trivial values everywhere, including BatchNorm statistics."""
    import numpy as np
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "layers"):
            randomize(layer, seed + 1)
            continue
        new = []
        for w in layer.weights:
            shape = tuple(w.shape)
            name = w.name.split("/")[-1].split(":")[0]
            if "variance" in name:
                new.append(rng.uniform(0.5, 2.0, shape))
            elif name == "count":
                new.append(np.array(7, dtype=np.int64) if shape == () else rng.integers(1, 9, shape))
            else:
                new.append(rng.normal(0.0, 0.5, shape))
        if new:
            layer.set_weights([n.astype(w.dtype if isinstance(w.dtype, str) else "float32") for n, w in zip(new, layer.weights)])


# MARK: - Keras 2 (tf-keras): legacy h5 layouts

def keras2():
    import numpy as np
    import h5py
    import tf_keras as K

    golden = {}

    def legacy_golden(model, flatten_nested):
        layers = []
        def visit(m):
            for layer in m.layers:
                if flatten_nested and hasattr(layer, "layers") and layer.weights and isinstance(layer, K.Model):
                    visit(layer)
                    continue
                weights = [weight_record(w.name.split("/")[-1].split(":")[0], w.numpy()) for w in layer.weights]
                layers.append({"name": layer.name, "class": type(layer).__name__, "weights": weights})
        visit(model)
        return layers

    # A MobileNetV2-style stack (conv, BN, ReLU6, depthwise, add, pooling, dense) with
    # keras.applications layer names, saved weights-only as the published files are.
    def mobile_block(x, expand, out, name, stride=1):
        inputs = x
        in_channels = x.shape[-1]
        x = K.layers.Conv2D(in_channels * expand, 1, use_bias=False, name=f"{name}_expand")(x)
        x = K.layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{name}_expand_BN")(x)
        x = K.layers.ReLU(6.0, name=f"{name}_expand_relu")(x)
        x = K.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_depthwise")(x)
        x = K.layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{name}_depthwise_BN")(x)
        x = K.layers.ReLU(6.0, name=f"{name}_depthwise_relu")(x)
        x = K.layers.Conv2D(out, 1, use_bias=False, name=f"{name}_project")(x)
        x = K.layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{name}_project_BN")(x)
        if stride == 1 and in_channels == out:
            x = K.layers.Add(name=f"{name}_add")([inputs, x])
        return x

    inputs = K.Input((16, 16, 3))
    x = K.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="Conv1")(inputs)
    x = K.layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name="bn_Conv1")(x)
    x = K.layers.ReLU(6.0, name="Conv1_relu")(x)
    x = mobile_block(x, 2, 8, "block_1")
    x = mobile_block(x, 2, 12, "block_2", stride=2)
    x = K.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = K.layers.Dense(5, activation="softmax", name="predictions")(x)
    mobile = K.Model(inputs, x, name="mobilenetv2_tiny")
    randomize(mobile, 1)
    mobile.save_weights(OUT / "mobile_tiny_weights_tf.h5")
    golden["mobile_tiny_weights_tf.h5"] = {"keras_version": K.__version__, "layers": legacy_golden(mobile, False)}

    # h5py-2 style: the same file with every string attribute rewritten as fixed-length NULLPAD
    # bytes (scalar `backend`/`keras_version`, array `layer_names`/`weight_names`), as the
    # published keras.applications files were written.
    h5py2 = OUT / "mobile_tiny_h5py2_strings.h5"
    mobile.save_weights(h5py2)
    with h5py.File(h5py2, "r+") as f:
        def rewrite(obj):
            for key in list(obj.attrs.keys()):
                value = obj.attrs[key]
                if isinstance(value, (str, bytes)):
                    raw = value.encode() if isinstance(value, str) else value
                    del obj.attrs[key]
                    obj.attrs.create(key, np.bytes_(raw))
                elif isinstance(value, np.ndarray) and value.dtype.kind in "SUO":
                    raw = [v.encode() if isinstance(v, str) else bytes(v) for v in value]
                    del obj.attrs[key]
                    obj.attrs.create(key, np.array(raw, dtype=f"S{max([len(r) for r in raw] + [1])}"))
        rewrite(f)
        f.visititems(lambda name, obj: rewrite(obj))
    golden["mobile_tiny_h5py2_strings.h5"] = golden["mobile_tiny_weights_tf.h5"]

    # A small VGG-like Sequential saved as a full model (model_config + model_weights).
    vgg = K.Sequential([
        K.Input((12, 12, 3)),
        K.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1"),
        K.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv2"),
        K.layers.MaxPooling2D(2, name="block1_pool"),
        K.layers.Conv2D(6, 3, padding="same", activation="relu", name="block2_conv1"),
        K.layers.MaxPooling2D(2, name="block2_pool"),
        K.layers.Flatten(name="flatten"),
        K.layers.Dense(8, activation="relu", name="fc1"),
        K.layers.Dense(3, activation="softmax", name="predictions"),
    ], name="vgg_tiny")
    randomize(vgg, 2)
    vgg.save(OUT / "vgg_tiny_full.h5", save_format="h5")
    golden["vgg_tiny_full.h5"] = {"keras_version": K.__version__, "layers": legacy_golden(vgg, False)}

    # A functional model wrapping an inner functional model (transfer-learning shape):
    # weights of the inner layers live under model_weights/<inner model>/<layer>/.
    inner_in = K.Input((8, 8, 3))
    y = K.layers.Conv2D(4, 3, use_bias=False, name="inner_conv")(inner_in)
    y = K.layers.BatchNormalization(name="inner_bn")(y)
    y = K.layers.ReLU(name="inner_relu")(y)
    inner = K.Model(inner_in, y, name="backbone")
    outer_in = K.Input((8, 8, 3))
    z = K.layers.Conv2D(3, 1, name="stem")(outer_in)
    z = inner(z)
    z = K.layers.GlobalAveragePooling2D(name="pool")(z)
    z = K.layers.Dense(2, name="head")(z)
    nested = K.Model(outer_in, z, name="transfer")
    randomize(nested, 3)
    nested.save(OUT / "nested_full.h5", save_format="h5")
    golden["nested_full.h5"] = {"keras_version": K.__version__, "layers": legacy_golden(nested, True),
                                "nested": {"backbone": ["inner_conv", "inner_bn", "inner_relu"]}}

    # Enough layers with long names that `layer_names` passes HDF5's 64 KB object header limit
    # and Keras splits it into layer_names0, layer_names1, …
    chunk_in = K.Input((2,))
    c = chunk_in
    prefix = "a_layer_with_a_deliberately_long_name_" + "x" * 180
    for i in range(320):
        c = K.layers.Activation("linear", name=f"{prefix}_{i:03d}")(c)
    c = K.layers.Dense(2, name="dense_after_many")(c)
    chunked = K.Model(chunk_in, c, name="chunked")
    randomize(chunked, 4)
    chunked.save_weights(OUT / "chunked_layer_names.h5")
    with h5py.File(OUT / "chunked_layer_names.h5", "r") as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs, list(f.attrs)
    golden["chunked_layer_names.h5"] = {"keras_version": K.__version__, "layers": legacy_golden(chunked, False)}

    (OUT / "golden_keras2.json").write_text(json.dumps(golden, indent=1))


# MARK: - Keras 3: .weights.h5 and .keras

def keras3():
    import numpy as np
    import keras as K

    golden = {}

    def keras3_golden(model):
        layers = []
        def visit(m):
            for layer in m.layers:
                if isinstance(layer, K.Model):
                    visit(layer)
                    continue
                # Keras 3 saves trainable then non-trainable variables; use the short names
                # tlhub maps them to.
                ws = list(layer._trainable_variables) + list(layer._non_trainable_variables)
                names = []
                for w in ws:
                    n = w.path.split("/")[-1]
                    if type(layer).__name__ in ("DepthwiseConv2D",) and n == "kernel":
                        n = "depthwise_kernel"
                    names.append(n)
                layers.append({"name": layer.name, "class": type(layer).__name__,
                               "weights": [weight_record(n, np.asarray(w.numpy(), dtype=np.float64)) for n, w in zip(names, ws)]})
        visit(model)
        return layers

    def small_model():
        inputs = K.Input((10, 10, 3))
        x = K.layers.Conv2D(4, 3, name="conv")(inputs)
        x = K.layers.BatchNormalization(name="bn")(x)
        x = K.layers.BatchNormalization(scale=False, name="bn_no_scale")(x)
        x = K.layers.DepthwiseConv2D(3, name="dw")(x)
        x = K.layers.SeparableConv2D(5, 3, name="sep")(x)
        x = K.layers.GlobalAveragePooling2D(name="gap")(x)
        x = K.layers.LayerNormalization(name="ln")(x)
        x = K.layers.Dense(3, name="logits")(x)
        return K.Model(inputs, x, name="small")

    small = small_model()
    randomize(small, 5)
    small.save_weights(OUT / "small.weights.h5")
    small.save(OUT / "small.keras")
    golden["small.weights.h5"] = {"keras_version": K.__version__, "layers": keras3_golden(small)}
    golden["small.keras"] = golden["small.weights.h5"]

    # A Sequential backbone inside a functional model.
    backbone = K.Sequential([
        K.Input((6, 6, 2)),
        K.layers.Conv2D(3, 3, name="bb_conv"),
        K.layers.BatchNormalization(name="bb_bn"),
    ], name="backbone")
    outer_in = K.Input((6, 6, 2))
    y = K.layers.Conv2D(2, 1, name="stem")(outer_in)
    y = backbone(y)
    y = K.layers.Flatten(name="flat")(y)
    y = K.layers.Dense(2, name="head")(y)
    nested = K.Model(outer_in, y, name="nested")
    randomize(nested, 6)
    nested.save_weights(OUT / "nested.weights.h5")
    nested.save(OUT / "nested.keras")
    golden["nested.weights.h5"] = {"keras_version": K.__version__, "layers": keras3_golden(nested)}
    golden["nested.keras"] = golden["nested.weights.h5"]

    # bfloat16 and float16 variables (Keras 3 marks bfloat16 datasets with a `dtype` attribute).
    low_in = K.Input((3,))
    l = K.layers.Dense(4, dtype="bfloat16", name="dense_bf16")(low_in)
    l = K.layers.Dense(2, dtype="float16", name="dense_f16")(l)
    low = K.Model(low_in, l, name="low_precision")
    randomize(low, 7)
    low.save_weights(OUT / "low_precision.weights.h5")
    golden["low_precision.weights.h5"] = {"keras_version": K.__version__, "layers": keras3_golden(low)}

    (OUT / "golden_keras3.json").write_text(json.dumps(golden, indent=1))


# MARK: - Hostile files and checksums (h5py only)

def extras():
    import hashlib
    import h5py
    import numpy as np

    # A weights-only layout whose one dataset declares 2^17 × 2^17 float32 values (64 GB) but, being
    # chunked and never written, occupies almost nothing: reading must fail, not allocate.
    with h5py.File(OUT / "absurd_dataset.h5", "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["layer_names"] = np.array([b"dense"])
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        g.create_group("dense").create_dataset("kernel:0", shape=(1 << 17, 1 << 17), dtype="f4", chunks=(64, 64))

    # Valid structure, but the second layer's gzip chunk is garbage: opening succeeds and reading
    # that weight fails, half-way through a conversion.
    path = OUT / "corrupt_chunk.h5"
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["layer_names"] = np.array([b"first", b"second"])
        for name in ("first", "second"):
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()])
            g.create_group(name).create_dataset("kernel:0", data=np.arange(256, dtype="f4").reshape(16, 16),
                                                chunks=(16, 16), compression="gzip")
        info = f["second/second/kernel:0"].id.get_chunk_info(0)
        offset, size = info.byte_offset, info.size
    raw = bytearray(path.read_bytes())
    raw[offset:offset + size] = b"\xff" * size
    path.write_bytes(bytes(raw))

    # float64 and integer datasets (Keras 3's Normalization `count` is int64) read as float32.
    with h5py.File(OUT / "float64_weights.h5", "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["layer_names"] = np.array([b"wide", b"norm"])
        g = f.create_group("wide")
        g.attrs["weight_names"] = np.array([b"wide/kernel:0"])
        g.create_group("wide").create_dataset("kernel:0", data=np.arange(6, dtype="f8").reshape(2, 3) * 0.25 - 0.5)
        g = f.create_group("norm")
        g.attrs["weight_names"] = np.array([b"norm/count:0"])
        g.create_group("norm").create_dataset("count:0", data=np.int64(7))

    # A .keras as Keras < 3.8 wrote it: no `name` attribute on the `vars` groups, so layers are
    # matched to config.json by class and position.
    import io
    import shutil
    import zipfile
    with zipfile.ZipFile(OUT / "small.keras") as source:
        members = {name: source.read(name) for name in source.namelist()}
    scratch = OUT / "_pre38.weights.h5"
    scratch.write_bytes(members["model.weights.h5"])
    with h5py.File(scratch, "r+") as f:
        f.visititems(lambda name, obj: obj.attrs.__delitem__("name") if "name" in obj.attrs else None)
        if "name" in f["vars"].attrs:
            del f["vars"].attrs["name"]
    members["model.weights.h5"] = scratch.read_bytes()
    scratch.unlink()
    with zipfile.ZipFile(OUT / "small_pre38.keras", "w") as target:
        for name, data in members.items():
            target.writestr(name, data)

    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(OUT.iterdir()) if p.suffix in (".h5", ".keras")}
    (OUT / "sha256.json").write_text(json.dumps(sums, indent=1))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    if "--extras" in sys.argv:
        extras()
    elif "--keras2" in sys.argv:
        keras2()
    elif "--keras3" in sys.argv:
        keras3()
    else:
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        subprocess.run([sys.executable, __file__, "--keras2"], check=True, env=env)
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_USE_LEGACY_KERAS", None)
        subprocess.run([sys.executable, __file__, "--keras3"], check=True, env=env)
        extras()
