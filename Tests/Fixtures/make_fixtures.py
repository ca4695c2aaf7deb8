#!/usr/bin/env python3
"""Writes every committed test fixture from Keras itself. Run by hand, never by CI:

    python3 -m venv ~/venv-tf
    ~/venv-tf/bin/pip install tensorflow-cpu tf-keras keras h5py onnxruntime tf2onnx pillow scipy tensorboard
    ~/venv-tf/bin/python Tests/Fixtures/make_fixtures.py [AREA ...]

Each area (formats, engine, imaging, hub) has its own script `make_<area>_fixtures.py` beside this
one, writing into `Tests/Fixtures/<area>/`. Each runs in its own process because tf-keras (Keras 2)
and Keras 3 cannot both be the active Keras in one interpreter.
"""
import pathlib
import subprocess
import sys

here = pathlib.Path(__file__).resolve().parent
scripts = sorted(here.glob("make_*_fixtures.py"))
wanted = set(sys.argv[1:])
for script in scripts:
    area = script.name[len("make_"):-len("_fixtures.py")]
    if wanted and area not in wanted:
        continue
    print(f"== {area}", flush=True)
    subprocess.run([sys.executable, str(script)], check=True)
