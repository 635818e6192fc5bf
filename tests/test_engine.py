"""The Rust engine against the NumPy reference, and the engine's error handling."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import snnfast
from reference import V_MAX, V_MIN, simulate
from snnfast import _core

I16 = np.iinfo(np.int16)
# Every kernel set this processor runs, or only the one $SNNFAST_KERNELS forces for the whole
# session (SNNFAST_KERNELS=portable checks the portable kernels alone).
KERNELS = (
    [os.environ[_core.KERNELS_ENV]]
    if os.environ.get(_core.KERNELS_ENV)
    else _core.available_kernels()
)


@contextlib.contextmanager
def forced_kernels(name: str | None) -> Iterator[None]:
    """Runs inside use the kernel set ``name`` (``None``: the default choice)."""
    env = _core.KERNELS_ENV
    old = os.environ.get(env)
    if name is None:
        os.environ.pop(env, None)
    else:
        os.environ[env] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = old


@st.composite
def networks(draw: st.DrawFn) -> snnfast.Network:
    """Random small networks: conv (stride, padding), pooling, dense, leak, big currents."""
    c = draw(st.integers(1, 2))
    h = draw(st.integers(3, 8))
    w = draw(st.integers(3, 8))
    shape = (c, h, w)
    layers: list[snnfast.Layer] = []
    big = draw(st.booleans())  # large weights and biases drive potentials into saturation
    wmax = int(I16.max) if big else 40
    bmax = 2**24 if big else 200

    def threshold() -> int:
        return draw(st.one_of(st.integers(1, 300), st.integers(1, 2**24)))

    def leak() -> int:
        return draw(st.one_of(st.just(0), st.integers(0, 4096)))

    def neuron() -> dict:
        """Reset mode and current decay: mostly the defaults."""
        if draw(st.integers(0, 2)):
            return {}
        return {
            "reset": draw(st.sampled_from(["subtract", "zero"])),
            "du": draw(st.integers(0, 4096)),
        }

    for _ in range(draw(st.integers(1, 3))):
        spatial = len(shape) == 3
        cc, hh, ww = shape if spatial else (shape[0], 1, 1)
        kind = draw(st.sampled_from(["conv", "pool", "dense"])) if spatial else "dense"
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if kind == "conv":
            p = draw(st.integers(0, 2))
            k = draw(st.integers(1, min(4, hh + 2 * p, ww + 2 * p)))
            s = draw(st.integers(1, 3))
            # 8, 16: the vector kernels; 32, 64: whole mask words (update, pooling from bits)
            o = draw(st.sampled_from([1, 2, 3, 8, 16, 32, 64]))
            weight = rng.integers(-wmax, wmax + 1, size=(o, cc, k, k))
            bias = rng.integers(-bmax, bmax + 1, size=o)
            layers.append(
                snnfast.Conv2d(
                    weight, bias, threshold(), stride=s, padding=p, leak=leak(), **neuron()
                )
            )
            shape = (o, (hh + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1)
        elif kind == "pool":
            k = draw(st.integers(1, min(3, hh, ww)))
            layers.append(
                snnfast.AvgPool2d(
                    k, draw(st.integers(-wmax, wmax)), threshold(), leak=leak(), **neuron()
                )
            )
            shape = (cc, hh // k, ww // k)
        else:
            o = draw(st.sampled_from([1, 3, 6, 8, 16]))
            n_in = int(np.prod(shape))
            weight = rng.integers(-wmax, wmax + 1, size=(o, n_in))
            bias = rng.integers(-bmax, bmax + 1, size=o)
            layers.append(snnfast.Dense(weight, bias, threshold(), leak=leak(), **neuron()))
            shape = (o,)
    return snnfast.Network(layers, input_shape=(c, h, w), input_threshold=draw(st.integers(1, 400)))


@given(
    net=networks(),
    n=st.integers(1, 3),
    timesteps=st.integers(1, 12),
    delay=st.sampled_from([0, 1]),
    v_init=st.one_of(st.just(0.0), st.just(0.5), st.floats(0.0, 0.999)),
    threads=st.integers(1, 3),
    early_exit=st.one_of(st.none(), st.integers(1, 4)),
    seed=st.integers(0, 2**32 - 1),
    kernels=st.sampled_from(KERNELS),
)
def test_engine_matches_reference(
    net, n, timesteps, delay, v_init, threads, early_exit, seed, kernels
):
    images = np.random.default_rng(seed).integers(
        0, 256, size=(n, *net.input_shape), dtype=np.uint8
    )
    with forced_kernels(kernels):
        got = net.run(
            images, timesteps, delay=delay, v_init=v_init, threads=threads, early_exit=early_exit
        )
    assert got.kernels == kernels
    want = simulate(net, images, timesteps, delay=delay, v_init=v_init, early_exit=early_exit)
    for l in range(net.n_layers + 1):
        np.testing.assert_array_equal(
            got.spike_counts[l], want["spike_counts"][l], err_msg=f"spike counts, layer {l}"
        )
        np.testing.assert_array_equal(
            got.membrane[l], want["membrane"][l], err_msg=f"membrane, layer {l}"
        )
    np.testing.assert_array_equal(got.synops, want["synops"])
    assert got.spike_counts[0].dtype == np.int32 and got.synops.dtype == np.int64
    np.testing.assert_array_equal(got.steps, want["steps"])
    np.testing.assert_array_equal(got.neuron_updates, np.outer(want["steps"], net.sizes))
    if early_exit is None:
        assert (got.steps == timesteps).all()


@given(
    net=networks(),
    n=st.integers(1, 3),
    checkpoints=st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True),
    delay=st.sampled_from([0, 1]),
    v_init=st.sampled_from([0.0, 0.5]),
    threads=st.integers(1, 3),
    early_exit=st.one_of(st.none(), st.integers(1, 4)),
    seed=st.integers(0, 2**32 - 1),
)
def test_checkpoints_equal_separate_runs(
    net, n, checkpoints, delay, v_init, threads, early_exit, seed
):
    images = np.random.default_rng(seed).integers(
        0, 256, size=(n, *net.input_shape), dtype=np.uint8
    )
    opts = {"delay": delay, "v_init": v_init, "threads": threads, "early_exit": early_exit}
    results = net.run_checkpoints(images, checkpoints, **opts)
    assert [r.timesteps for r in results] == sorted(checkpoints)
    for got in results:
        want = net.run(images, got.timesteps, **opts)
        for l in range(net.n_layers + 1):
            np.testing.assert_array_equal(got.spike_counts[l], want.spike_counts[l])
            np.testing.assert_array_equal(got.membrane[l], want.membrane[l])
        np.testing.assert_array_equal(got.synops, want.synops)
        np.testing.assert_array_equal(got.steps, want.steps)
        np.testing.assert_array_equal(got.neuron_updates, want.neuron_updates)
        assert (got.timesteps, got.delay, got.v_init, got.early_exit) == (
            want.timesteps,
            want.delay,
            want.v_init,
            want.early_exit,
        )


def small_cnn(seed: int = 0) -> snnfast.Network:
    rng = np.random.default_rng(seed)
    return snnfast.Network(
        [
            snnfast.Conv2d(rng.integers(-30, 60, (4, 1, 5, 5)), rng.integers(-50, 50, 4), 900),
            snnfast.AvgPool2d(2, 64, 150),
            snnfast.Conv2d(
                rng.integers(-30, 60, (8, 4, 3, 3)), np.zeros(8, np.int64), 700, stride=2, padding=1
            ),
            snnfast.Dense(rng.integers(-40, 40, (10, 8 * 6 * 6)), np.zeros(10, np.int64), 300),
        ],
        input_shape=(1, 28, 28),
    )


def test_saturation_is_reached_and_held():
    net = snnfast.Network(
        [snnfast.Dense(np.zeros((2, 4), np.int16), np.array([2**22, -(2**22)]), 2**24)],
        input_shape=(1, 2, 2),
    )
    res = net.run(np.zeros((1, 1, 2, 2), np.uint8), timesteps=5)
    np.testing.assert_array_equal(res.membrane[1][0], [V_MAX, V_MIN])
    assert res.spike_counts[1].sum() == 0


def test_batch_size_and_threads_do_not_change_results():
    net = small_cnn()
    images = np.random.default_rng(1).integers(0, 256, (9, 1, 28, 28), dtype=np.uint8)
    whole = net.run(images, 16, threads=3, delay=1, v_init=0.5)
    for i in range(9):
        one = net.run(images[i : i + 1], 16, threads=1, delay=1, v_init=0.5)
        for l in range(net.n_layers + 1):
            np.testing.assert_array_equal(one.spike_counts[l][0], whole.spike_counts[l][i])
            np.testing.assert_array_equal(one.membrane[l][0], whole.membrane[l][i])
        np.testing.assert_array_equal(one.synops[0], whole.synops[i])


def test_record_subset_and_non_contiguous_input():
    net = small_cnn()
    big = np.random.default_rng(2).integers(0, 256, (4, 1, 56, 28), dtype=np.uint8)
    view = big[:, :, ::2, :]  # non-contiguous
    assert not view.flags.c_contiguous
    full = net.run(np.ascontiguousarray(view), 8)
    part = net.run(view, 8, record=[2])
    assert part.spike_counts[0] is None and part.membrane[4] is None
    np.testing.assert_array_equal(part.spike_counts[2], full.spike_counts[2])
    np.testing.assert_array_equal(part.synops, full.synops)
    three = net.run(view[:, 0], 8, record=[4])  # [N, H, W] accepted for one channel
    np.testing.assert_array_equal(three.spike_counts[4], full.spike_counts[4])


def test_synapse_counts_match_fan_out():
    net = small_cnn()
    counts = net.synapse_counts()
    assert counts[0] == 0
    for l in range(net.n_layers):
        assert net.fan_out(l).shape == net.shapes[l]
        assert int(net.fan_out(l).sum()) == counts[l + 1]
    assert counts[1] == 4 * 24 * 24 * 25
    assert counts[4] == 10 * 8 * 6 * 6


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_after_threaded_run():
    net = small_cnn()
    images = np.random.default_rng(3).integers(0, 256, (6, 1, 28, 28), dtype=np.uint8)
    before = net.run(images, 8, threads=2).synops
    pid = os.fork()
    if pid == 0:  # child: the engine must still work with threads
        code = 0
        try:
            again = net.run(images, 8, threads=2).synops
            code = 0 if np.array_equal(again, before) else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- bad input --------------------------------------------------------------------------------

GOOD_W = np.ones((2, 1, 3, 3), np.int16)


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (
            lambda: snnfast.Conv2d(GOOD_W.astype(np.float32), np.zeros(2), 5),
            snnfast.ShapeError,
            "integer",
        ),
        (
            lambda: snnfast.Conv2d(GOOD_W[0], np.zeros(2, int), 5),
            snnfast.ShapeError,
            "4 dimensions",
        ),
        (
            lambda: snnfast.Conv2d(GOOD_W.astype(np.int32) * 40000, np.zeros(2, int), 5),
            snnfast.ConfigError,
            "int16",
        ),
        (lambda: snnfast.Conv2d(GOOD_W, np.zeros(3, int), 5), snnfast.ShapeError, "bias"),
        (lambda: snnfast.Conv2d(GOOD_W, np.zeros(2, int), 0), snnfast.ConfigError, "threshold"),
        (
            lambda: snnfast.Conv2d(GOOD_W, np.zeros(2, int), 5, leak=4097),
            snnfast.ConfigError,
            "leak",
        ),
        (
            lambda: snnfast.Conv2d(np.ones((2, 3, 3, 3), int), np.zeros(2, int), 5),
            snnfast.ShapeError,
            "input channels",
        ),
        (
            lambda: snnfast.Dense(np.ones((2, 5), int), np.zeros(2, int), 5),
            snnfast.ShapeError,
            "inputs",
        ),
        (lambda: snnfast.AvgPool2d(9, 1, 5), snnfast.ShapeError, "kernel"),
        (
            lambda: snnfast.Conv2d(np.ones((2, 1, 9, 9), int), np.zeros(2, int), 5),
            snnfast.ShapeError,
            "kernel",
        ),
        (
            lambda: snnfast.Dense(np.ones((2, 36), int), np.array([2**31 - 1, 0]), 5),
            snnfast.ConfigError,
            "accumulator",
        ),
    ],
)
def test_bad_layers_name_the_layer_and_problem(make, error, words):
    with pytest.raises(error) as info:
        layer = make()
        snnfast.Network([layer], input_shape=(1, 6, 6))
    assert "layer 1" in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, snnfast.SnnfastError)


def test_bad_run_arguments():
    net = snnfast.Network(
        [snnfast.Dense(np.ones((2, 36), int), np.zeros(2, int), 5)], input_shape=(1, 6, 6)
    )
    img = np.zeros((2, 1, 6, 6), np.uint8)
    cases = [
        (lambda: net.run(img.astype(np.float32)), snnfast.ShapeError, "uint8"),
        (lambda: net.run(img[0, 0]), snnfast.ShapeError, "[N, 1, 6, 6]"),
        (lambda: net.run(np.zeros((2, 1, 5, 6), np.uint8)), snnfast.ShapeError, "shape"),
        (lambda: net.run(img[:0]), snnfast.ShapeError, "empty"),
        (lambda: net.run(img.tolist()), snnfast.ShapeError, "NumPy"),
        (lambda: net.run(img, timesteps=0), snnfast.ConfigError, "timesteps"),
        (lambda: net.run(img, delay=2), snnfast.ConfigError, "delay"),
        (lambda: net.run(img, v_init=1.0), snnfast.ConfigError, "v_init"),
        (lambda: net.run(img, threads=0), snnfast.ConfigError, "threads"),
        (lambda: net.run(img, record=[7]), snnfast.ConfigError, "record"),
        (lambda: net.run(img, early_exit=0), snnfast.ConfigError, "early_exit"),
        (lambda: net.run_checkpoints(img, []), snnfast.ConfigError, "not empty"),
        (lambda: net.run_checkpoints(img, [4, 4]), snnfast.ConfigError, "distinct"),
        (lambda: net.run_checkpoints(img, [0, 4]), snnfast.ConfigError, "checkpoint"),
        (lambda: net.run_checkpoints(img, 8), snnfast.ConfigError, "sequence"),
        (lambda: net.run_checkpoints(img, [2.5]), snnfast.ConfigError, "integer"),
        (lambda: net.run_checkpoints(img[:0], [2]), snnfast.ShapeError, "empty"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=None) as info:
            call()
        assert words in str(info.value), str(info.value)


def test_network_save_load_round_trip(tmp_path):
    net = small_cnn()
    path = tmp_path / "net.npz"
    net.save(path, metadata={"arch": "toy"})
    again, meta = snnfast.Network.load(path)
    assert meta == {"arch": "toy"}
    img = np.random.default_rng(4).integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
    a, b = net.run(img, 8), again.run(img, 8)
    for l in range(net.n_layers + 1):
        np.testing.assert_array_equal(a.membrane[l], b.membrane[l])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(snnfast.ModelFormatError):
        snnfast.Network.load(tmp_path / "bad.npz")
    with pytest.raises(snnfast.ModelFormatError):
        snnfast.Network.load(tmp_path / "missing.npz")


def test_import_needs_no_torch():
    code = (
        "import sys, snnfast, snnfast.network; assert 'torch' not in sys.modules, 'torch imported'"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_early_exit_matches_reference_and_saves_steps():
    net = small_cnn(5)
    images = np.random.default_rng(6).integers(0, 256, (6, 1, 28, 28), dtype=np.uint8)
    got = net.run(images, 40, early_exit=3)
    want = simulate(net, images, 40, early_exit=3)
    np.testing.assert_array_equal(got.steps, want["steps"])
    for l in range(net.n_layers + 1):
        np.testing.assert_array_equal(got.spike_counts[l], want["spike_counts"][l])
    assert (got.steps < 40).any()
    full = net.run(images, 40)
    assert (got.synops.sum(axis=1) <= full.synops.sum(axis=1)).all()


def test_public_names_resolve_without_torch():
    code = (
        "import sys, snnfast\n"
        "missing = [n for n in snnfast.__all__ if getattr(snnfast, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(bool(os.environ.get(_core.KERNELS_ENV)), reason="a kernel set is forced")
def test_kernel_choice_is_reported_and_forced():
    net = small_cnn()
    images = np.random.default_rng(7).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    assert KERNELS[0] == "portable"
    with forced_kernels(None):
        assert net.kernels == _core.kernels() == KERNELS[-1]
        best = net.run(images, 12, delay=1)
        assert best.kernels == KERNELS[-1]
    for name in KERNELS:
        with forced_kernels(name):
            assert net.kernels == name
            res = net.run(images, 12, delay=1)
        assert res.kernels == name
        for l in range(net.n_layers + 1):
            np.testing.assert_array_equal(res.membrane[l], best.membrane[l])
            np.testing.assert_array_equal(res.spike_counts[l], best.spike_counts[l])
    with forced_kernels("avx9"), pytest.raises(snnfast.ConfigError, match="SNNFAST_KERNELS"):
        net.run(images, 4)


def test_early_exit_ties_follow_the_chw_index_of_a_spatial_output():
    # A pooling output layer with two channels: the decision's "lower index" is the C, H, W
    # index, as in the reference (the engine once compared in its internal H, W, C order).
    net = snnfast.Network([snnfast.AvgPool2d(2, 1, 1)], input_shape=(2, 3, 8), input_threshold=105)
    images = np.random.default_rng(1).integers(0, 256, size=(2, 2, 3, 8), dtype=np.uint8)
    for name in KERNELS:
        with forced_kernels(name):
            got = net.run(images, 3, early_exit=2, threads=1)
        want = simulate(net, images, 3, early_exit=2)
        np.testing.assert_array_equal(got.steps, want["steps"])
        np.testing.assert_array_equal(got.spike_counts[0], want["spike_counts"][0])


@pytest.mark.parametrize("kernels", KERNELS)
def test_wide_channels_match_reference(kernels):
    """32 and 64 channels, as the shipped network has: whole mask words in the update and in
    pooling from spike bits, a complemented input feeding 32 channels, and a pooling layer
    that leaves the last row and column of its input without a target."""
    rng = np.random.default_rng(7)
    layers = [
        snnfast.Conv2d(
            rng.integers(-60, 90, (32, 1, 5, 5)), rng.integers(-40, 60, 32), 300, padding=2
        ),
        snnfast.AvgPool2d(2, 90, 300),
        snnfast.Conv2d(
            rng.integers(-50, 80, (64, 32, 3, 3)), rng.integers(-30, 40, 64), 400, padding=1
        ),
        snnfast.AvgPool2d(2, 120, 300),
        snnfast.Dense(rng.integers(-60, 60, (10, 64 * 3 * 3)), rng.integers(-9, 9, 10), 200),
    ]
    net = snnfast.Network(layers, input_shape=(1, 14, 14))
    images = rng.integers(0, 256, (3, 1, 14, 14), dtype=np.uint8)
    images[0, :, :4] = 0  # a dark band: words of the mask without a spike
    for delay in (0, 1):
        with forced_kernels(kernels):
            got = net.run(images, 24, delay=delay, threads=2)
        want = simulate(net, images, 24, delay=delay)
        for l in range(net.n_layers + 1):
            np.testing.assert_array_equal(got.spike_counts[l], want["spike_counts"][l])
            np.testing.assert_array_equal(got.membrane[l], want["membrane"][l])
        np.testing.assert_array_equal(got.synops, want["synops"])
        assert all(c.sum() > 0 for c in got.spike_counts[1:4]), "every hidden layer spikes"
