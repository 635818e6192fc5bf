"""What each engine change bought: this tree's engine by kernel set and thread count against an
earlier build, interleaved in one process (min over rounds, ms per image; every row checked to
give the same integers as the earlier build).

The earlier build is a copy of the ``snnfast`` package built at another commit (the README's
table used 9f4ac9a, where this round of work started), renamed ``snnfast_base``:

    git worktree add /tmp/base 9f4ac9a && (cd /tmp/base && bash scripts/dev-build.sh)
    mkdir -p /tmp/pk && cp -r /tmp/base/python/snnfast /tmp/pk/snnfast_base
    PYTHONPATH=python:/tmp/pk OMP_WAIT_POLICY=PASSIVE .venv/bin/python notes/speed/levers.py 3
"""

import os
import statistics
import sys
import time

import numpy as np
from snnfast_base import network as bnet

import snnfast
from snnfast import _core
from snnfast.ann import SHIPPED_MODEL, load_model
from snnfast.convert import convert
from snnfast.data import load_fashion_mnist
from snnfast.evaluation import calibration_indices

arch, state, _ = load_model(SHIPPED_MODEL)
train, _ = load_fashion_mnist("train")
cm = convert(state, arch, calibration_images=train[calibration_indices(len(train))])
test, _ = load_fashion_mnist("test", limit=1000)
net = cm.network


def base_layer(l):
    if isinstance(l, snnfast.Conv2d):
        return bnet.Conv2d(
            np.array(l.weight), np.array(l.bias), l.threshold, l.stride, l.padding, l.leak
        )
    if isinstance(l, snnfast.AvgPool2d):
        return bnet.AvgPool2d(l.kernel, l.weight, l.threshold, l.leak)
    return bnet.Dense(np.array(l.weight), np.array(l.bias), l.threshold, l.leak)


base = bnet.Network(
    [base_layer(l) for l in net.layers], tuple(net.input_shape), net.input_threshold
)
out, emb = cm.output_layer, cm.embedding_layer
for a, b in zip(net.run(test[:100], 16).membrane, base.run(test[:100], 16).membrane):
    assert np.array_equal(a, b)


def with_kernels(name, f):
    def g():
        if name:
            os.environ[_core.KERNELS_ENV] = name
        else:
            os.environ.pop(_core.KERNELS_ENV, None)
        try:
            return f()
        finally:
            os.environ.pop(_core.KERNELS_ENV, None)

    return g


def b1(n, T, threads):
    def f():
        t = []
        for i in range(200 if T == 16 else 40):
            s = time.perf_counter()
            n.run(test[i : i + 1], T, threads=threads, record=[emb, out])
            t.append(time.perf_counter() - s)
        return statistics.median(t) * 1e3

    return f


def big(n, T, threads):
    def f():
        x = test if T == 16 else test[:250]
        s = time.perf_counter()
        n.run(x, T, threads=threads, record=[emb, out])
        return (time.perf_counter() - s) / len(x) * 1e3

    return f


cases = {}
for T in (16, 128):
    cases[f"T={T} batch 1, 1 thread: base"] = b1(base, T, 1)
    cases[f"T={T} batch 1, 2 threads: base"] = b1(base, T, 2)
    for k in _core.available_kernels():
        cases[f"T={T} batch 1, 1 thread: {k}"] = with_kernels(k, b1(net, T, 1))
    cases[f"T={T} batch 1, 2 threads (split): best kernels"] = b1(net, T, 2)
    cases[f"T={T} batch 1000, 2 threads: base"] = big(base, T, 2)
    for k in _core.available_kernels():
        cases[f"T={T} batch 1000, 2 threads: {k}"] = with_kernels(k, big(net, T, 2))
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
res = {k: [] for k in cases}
for r in range(rounds):
    for k, f in cases.items() if r % 2 == 0 else reversed(list(cases.items())):
        res[k].append(f())
print(f"rounds {rounds}; min over rounds, ms per image; load {os.getloadavg()}")
for k, v in res.items():
    print(f"{k:48s} {min(v):8.4f}   (median {statistics.median(v):.4f})")
