"""Ctrl-C during a long run: the shipped model converted, 20,000 training images at T = 128,
SIGINT 2 s into the run; prints how long KeyboardInterrupt took to arrive (three trials).

    PYTHONPATH=python .venv/bin/python notes/reliability/ctrl_c.py
"""

import signal
import subprocess
import sys
import textwrap
import time

code = textwrap.dedent("""
import signal
import numpy as np
signal.signal(signal.SIGINT, signal.default_int_handler)
from snnfast.data import load_fashion_mnist
from snnfast.evaluation import calibrate_and_convert
train, _ = load_fashion_mnist("train")
cm = calibrate_and_convert(None, train)
images = np.concatenate([train[:10000], train[10000:20000]])
print("ready", len(images), flush=True)
try:
    cm.network.run(images, 128)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
""")
for trial in range(3):
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    print(child.stdout.readline().strip())
    time.sleep(2.0)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    line = child.stdout.readline().strip()
    took = time.monotonic() - sent
    child.wait(timeout=30)
    print(trial, line, f"{took * 1e3:.1f} ms")
