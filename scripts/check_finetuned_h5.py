#!/usr/bin/env python3
"""Checks that a `tlhub finetune` output's model.h5 opens in Keras and predicts what tlhub
predicts. Run by hand (needs TensorFlow), never by CI:

    tlhub finetune --model M --data photos/train --head dense2 -o out/
    ~/venv-tf/bin/python scripts/check_finetuned_h5.py out/ [--tlhub .build/debug/tlhub] [tlhub options…]

Loads out/model.h5 with tf.keras 2 (TF_USE_LEGACY_KERAS=1) and with Keras 3 in child processes,
runs both on a random batch at the model's input size, runs `tlhub predict --model out/` on the
same batch, and prints the largest difference (exit 1 above 1e-4).
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

FLAVOUR = os.environ.get("CHECK_FLAVOUR")


def predict_with_keras(folder, batch, out):
    if FLAVOUR == "tf-keras":
        import tf_keras as keras
    else:
        import keras
    model = keras.models.load_model(str(folder / "model.h5"), compile=False)
    np.save(out, model.predict(np.load(batch), verbose=0))


def main():
    folder = pathlib.Path(sys.argv[1])
    args = sys.argv[2:]
    tlhub = str(pathlib.Path(__file__).resolve().parents[1] / ".build/debug/tlhub")
    if args[:1] == ["--tlhub"]:
        tlhub, args = args[1], args[2:]
    h, w = json.loads((folder / "model.json").read_text())["input_size"]
    work = pathlib.Path(tempfile.mkdtemp())
    batch = work / "x.npy"
    np.save(batch, np.random.default_rng(0).uniform(-1, 1, (3, h, w, 3)).astype(np.float32))
    subprocess.run([tlhub, "predict", "--model", str(folder), "--input", str(batch), "--top", "0",
                    "-o", str(work / "tlhub.npy"), *args], check=True)
    expected = np.load(work / "tlhub.npy")
    worst = 0.0
    for flavour in ("tf-keras", "keras3"):
        env = dict(os.environ, CHECK_FLAVOUR=flavour, TF_CPP_MIN_LOG_LEVEL="3")
        if flavour == "tf-keras":
            env["TF_USE_LEGACY_KERAS"] = "1"
        code = (f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); "
                f"import check_finetuned_h5 as c, pathlib; "
                f"c.FLAVOUR={flavour!r}; c.predict_with_keras(pathlib.Path({str(folder)!r}), {str(batch)!r}, {str(work / flavour)!r} + '.npy')")
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        error = float(np.abs(np.load(work / f"{flavour}.npy") - expected).max())
        worst = max(worst, error)
        print(f"{flavour}: max |Keras - tlhub| = {error:.3g}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
