"""What chip counting costs the engine, on the converted 32-64-10 with real Fashion-MNIST images.

Goals (issue 14): a run without a mapping costs what it cost before the counting observer
existed (ratio to a baseline build of the engine, when one is given); a run counted on the
121-core Loihi 1 mapping (every core's events of every step, the busiest core's time) takes at
most 1.5x the plain run. Both at batch 1 on one thread and at batch 200 on all cores, T = 16,
only the output layer recorded, medians of interleaved rounds in one process.

The baseline is a ``_core.abi3.so`` built from the engine without the observer:
``SNNFAST_BASELINE_CORE=/path/to/_core.abi3.so`` (the plain-run ratio is skipped without it).
"""

from __future__ import annotations

import importlib
import os
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from snnfast.chip import map_network, run_chip
from snnfast.settings import RunSettings

T = 16


def _baseline_engine(net, tmp: Path):
    """The network compiled by the baseline build's engine, or ``None``."""
    path = os.environ.get("SNNFAST_BASELINE_CORE")
    if not path or not Path(path).is_file():
        return None
    pkg = tmp / "snnfast_baseline"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(path, pkg / "_core.abi3.so")
    sys.path.insert(0, str(tmp))
    core = importlib.import_module("snnfast_baseline._core")
    from snnfast._checks import memory_limit
    from snnfast.network import _engine_spec  # the bench reads the spec as the network does

    return core.Engine(
        [_engine_spec(layer) for layer in net.layers],
        input_shape=tuple(net.input_shape),
        input_threshold=net.input_threshold,
        memory_limit=memory_limit(),
    )


def _interleaved(fns: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each function over ``rounds`` interleaved rounds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


@pytest.mark.parametrize("batch, threads, rounds", [(1, 1, 400), (200, None, 15)])
def test_counting_cost(benchmark, converted, test_images, tmp_path, batch, threads, rounds):
    net = converted.network
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mapping = map_network(net)
    rec = [converted.output_layer]
    settings = RunSettings(timesteps=T, threads=threads)
    n_threads = threads or os.cpu_count() or 1
    x = test_images[:batch]
    base = _baseline_engine(net, tmp_path)
    fns = {
        "plain": lambda: net.run(x, T, threads=threads, record=rec),
        "counted": lambda: run_chip(mapping, x, settings, record=rec),
    }
    if base is not None:
        # the Python wrapper is the same in both builds: time the two engines' own calls
        imgs = np.ascontiguousarray(x)
        engine = getattr(net, "_engine")  # noqa: B009 - the bench times the raw engine call
        args = dict(timesteps=T, delay=0, v_init=0.0, threads=n_threads, record=rec,
                    early_exit=None, checkpoints=[T], memory_limit=1 << 40)  # fmt: skip
        fns["baseline_engine"] = lambda: base.run(imgs, **args)
        fns["current_engine"] = lambda: engine.run(imgs, **args)
    for fn in fns.values():  # warm up
        fn()
    med = _interleaved(fns, rounds)
    benchmark.pedantic(fns["counted"], rounds=3, iterations=1)
    ratio = med["counted"] / med["plain"]
    info = {f"{k}_ms_per_image": v * 1e3 / batch for k, v in med.items()}
    info["counted_over_plain"] = ratio
    if base is not None:
        info["current_over_baseline_engine"] = med["current_engine"] / med["baseline_engine"]
    info["cpu"] = _cpu()
    benchmark.extra_info.update(info)
    print(f"\nbatch {batch}: " + ", ".join(f"{k} {v:.4g}" for k, v in info.items() if k != "cpu"))
    assert ratio <= 1.5, f"a counted run takes {ratio:.2f}x the plain run, goal <= 1.5x"
    if base is not None:
        slower = info["current_over_baseline_engine"]
        assert slower <= 1.05, f"the plain engine run is {slower:.3f}x the baseline build"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
