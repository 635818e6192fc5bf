"""Limits of the engine: sizes checked before allocating, wide geometry, time-step bound,
Ctrl-C, and networks that own their arrays."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from test_engine import small_cnn

import snnfast
from snnfast import _core
from snnfast.errors import ConfigError, MemoryLimitError, ShapeError
from snnfast.settings import MAX_TIMESTEPS


def conv(o: int = 2, i: int = 1, k: int = 3, **kw) -> snnfast.Conv2d:
    return snnfast.Conv2d(np.ones((o, i, k, k), np.int16), np.zeros(o, np.int32), 50, **kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda: snnfast.Network([conv()], input_shape=(1, 6, 2**40)),
        lambda: snnfast.Network([snnfast.AvgPool2d(2, 1, 5)], input_shape=(1, 70000, 70000)),
        lambda: snnfast.Network([conv(padding=2**30)], input_shape=(1, 6, 6)),
    ],
)
def test_huge_networks_are_refused_before_allocating(make):
    with pytest.raises(MemoryLimitError) as info:
        make()
    err = info.value
    assert isinstance(err, MemoryError) and isinstance(err, snnfast.SnnfastError)
    assert err.need_bytes > err.limit_bytes > 0
    assert "GB" in str(err) and "limit" in str(err)


def test_huge_runs_are_refused_before_allocating():
    net = snnfast.Network([conv(64, padding=1)], input_shape=(1, 64, 64))
    many = np.broadcast_to(np.zeros((1, 1, 64, 64), np.uint8), (200_000, 1, 64, 64))
    with pytest.raises(MemoryLimitError, match="this run needs"):
        net.run(many, 4)
    with pytest.raises(MemoryLimitError) as info:
        net.run_checkpoints(many[:100], list(range(1, 2001)))
    assert info.value.need_bytes > info.value.limit_bytes


def test_the_memory_limit_comes_from_the_environment(monkeypatch):
    net = small_cnn()
    images = np.zeros((50, 1, 28, 28), np.uint8)
    net.run(images, 2)
    monkeypatch.setenv("SNNFAST_MEMORY_LIMIT", "1e6")
    with pytest.raises(MemoryLimitError) as info:
        net.run(images, 2)
    assert info.value.limit_bytes == 10**6
    monkeypatch.setenv("SNNFAST_MEMORY_LIMIT", "1e4")
    with pytest.raises(MemoryLimitError, match="the network"):
        small_cnn()


def test_coordinates_beyond_65535_route_exactly():
    # x = 65,539 once wrapped to 3 (16-bit coordinates).
    net = snnfast.Network([conv(4, padding=1)], input_shape=(1, 1, 65540))
    x = np.zeros((1, 1, 1, 65540), np.uint8)
    x[0, 0, 0, 65539] = 255
    res = net.run(x, 1)
    for c in range(4):
        np.testing.assert_array_equal(np.nonzero(res.membrane[1][0, c, 0])[0], [65538, 65539])
    assert res.synops[0, 1] == 4 * 2
    # Channel 65,536 once read as channel 0.
    pool = snnfast.Network([snnfast.AvgPool2d(1, 3, 100)], input_shape=(65537, 1, 1))
    x = np.zeros((1, 65537, 1, 1), np.uint8)
    x[0, 65536] = 255
    v = pool.run(x, 1).membrane[1][0, :, 0, 0]
    np.testing.assert_array_equal(np.nonzero(v)[0], [65536])
    assert v[65536] == 3


def test_timesteps_are_bounded():
    assert _core.MAX_TIMESTEPS == MAX_TIMESTEPS == 1 << 20
    net = small_cnn()
    img = np.zeros((1, 1, 28, 28), np.uint8)
    for call in (
        lambda: net.run(img, MAX_TIMESTEPS + 1),
        lambda: net.run_checkpoints(img, [2, MAX_TIMESTEPS + 1]),
        lambda: net.run(img, 4, early_exit=MAX_TIMESTEPS + 1),
    ):
        with pytest.raises(ConfigError, match=str(MAX_TIMESTEPS)):
            call()


INTERRUPTED = """
import signal, sys, time, numpy as np
# What a terminal gives: a job started in the background (CI runners, nohup) inherits SIGINT
# ignored, and Python then installs no handler of its own.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path[:0] = {paths!r}
from test_engine import small_cnn
net = small_cnn()
images = np.random.default_rng(0).integers(0, 256, (400, 1, 28, 28), dtype=np.uint8)
print("ready", flush=True)
try:
    net.run(images, 20000, threads={threads})
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_run_within_a_second(threads):
    code = textwrap.dedent(INTERRUPTED.format(paths=sys.path, threads=threads))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # well inside the run (it takes minutes)
        sent = time.monotonic()
        child.send_signal(subprocess.signal.SIGINT)
        line = child.stdout.readline().strip()
        took = time.monotonic() - sent
        child.wait(timeout=10)
    finally:
        child.kill()
    assert line == "interrupted", child.stderr.read() if child.stderr else line
    assert took < 1.0, f"KeyboardInterrupt arrived {took:.2f} s after SIGINT"


def test_network_copies_what_it_is_given(tmp_path):
    w = np.ones((2, 1, 3, 3), np.int16)
    b = np.zeros(2, np.int32)
    layer = snnfast.Conv2d(w, b, 50)
    net = snnfast.Network([layer], input_shape=(1, 6, 6))
    img = np.random.default_rng(0).integers(0, 256, (2, 1, 6, 6), dtype=np.uint8)
    before = net.run(img, 8).membrane[1]
    w[:] = 7
    b[:] = 1000
    np.testing.assert_array_equal(net.run(img, 8).membrane[1], before)
    assert int(net.layers[0].weight.max()) == 1 and int(net.layers[0].bias.max()) == 0
    assert not net.layers[0].weight.flags.writeable
    with pytest.raises(ValueError):
        net.layers[0].weight[0, 0, 0, 0] = 5
    net.save(tmp_path / "n.npz")
    again, _ = snnfast.Network.load(tmp_path / "n.npz")
    np.testing.assert_array_equal(again.run(img, 8).membrane[1], before)


def test_network_arguments_are_what_they_claim():
    layer = conv()
    for shape in [(1, 6.0, 6), (1, True, 6), (1, 6, 6.5)]:
        with pytest.raises(ConfigError, match="integer"):
            snnfast.Network([layer], input_shape=shape)
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        snnfast.Network([layer], input_shape=(6, 6))
    with pytest.raises(ConfigError, match="list or tuple"):
        snnfast.Network(iter([layer]), input_shape=(1, 6, 6))
    with pytest.raises(ShapeError, match="at least one layer"):
        snnfast.Network([], input_shape=(1, 6, 6))


def test_reprs_are_short_summaries():
    net = small_cnn()
    res = net.run(np.zeros((3, 1, 28, 28), np.uint8), 4)
    for text in (repr(net), repr(res), repr(net.layers[0])):
        assert len(text) < 400 and "array(" not in text and "[[" not in text
    assert "4 layers" in repr(net) and "(8, 6, 6)" in repr(net)
    assert "3 images" in repr(res) and "timesteps=4" in repr(res)


def test_a_huge_channel_offset_is_refused_not_aborted():
    """A channel offset near 2**31 names billions of channels; nothing may be sized by them
    before the memory check (it was: a 16 GiB vector, an abort under a limited address space)."""
    code = textwrap.dedent(
        """
        import resource, numpy as np, snnfast
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        group = snnfast.ConvSynapses(np.ones((2, 1, 3, 3), np.int16), channel_offset=2**31 - 8)
        try:
            snnfast.Network([snnfast.SpikingLayer([group], 50)], input_shape=(1, 6, 6))
        except snnfast.SnnfastError as exc:
            print(type(exc).__name__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() in ("MemoryLimitError", "ShapeError"), out.stdout
