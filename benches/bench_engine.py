"""Engine speed on the converted 32-64-10 with real Fashion-MNIST images, T = 16.

Goals (issue "The Rust engine"): batch 1 on one thread at most 0.5 ms per image; 1,000 images
on both cores at least 5x the images per second of the step-by-step exact PyTorch simulation
(``torch_baseline.ExactTorchSNN.step_major``) at its best batch size; halving the input spikes
(darker images) cuts the engine's time by at least 35 %.
Fig 4's sweep over T from one run with checkpoints takes at most 0.6 of six separate runs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from snnfast.latency import measure
from torch_baseline import ExactTorchSNN

T = 16


def _best_of(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` calls, in seconds (no warm-up: callers warm up themselves)."""
    return measure(fn, repeats=repeat, warmup=0).min_s


def test_batch1_one_thread(benchmark, converted, test_images):
    net = converted.network
    rec = [converted.output_layer]
    imgs = iter(np.resize(np.arange(len(test_images)), 100_000))

    def one():
        i = next(imgs)
        return net.run(test_images[i : i + 1], T, threads=1, record=rec)

    benchmark.pedantic(one, rounds=300, warmup_rounds=20, iterations=1)
    per_image_ms = benchmark.stats.stats.median * 1e3
    benchmark.extra_info["ms_per_image_median"] = per_image_ms
    benchmark.extra_info["paper_loihi_ms"] = 2.984
    assert per_image_ms <= 0.5, f"batch-1 latency {per_image_ms:.3f} ms > 0.5 ms"


def test_throughput_vs_dense_torch(benchmark, converted, test_images):
    import torch

    net = converted.network
    torch.set_num_threads(os.cpu_count() or 1)
    dense = ExactTorchSNN(net)
    # Same integers: the dense simulation reproduces the engine's spike counts.
    check = test_images[:50]
    want = net.run(check, T).spike_counts
    got = dense.step_major(check, T)
    for l, (a, b) in enumerate(zip(want, got)):
        np.testing.assert_array_equal(a, b, err_msg=f"layer {l}")

    torch_ips = {}
    for bs in (50, 200, 1000):

        def run_all(bs=bs):
            for i in range(0, len(test_images), bs):
                dense.step_major(test_images[i : i + bs], T)

        torch_ips[bs] = len(test_images) / _best_of(run_all, repeat=2)
    best_bs = max(torch_ips, key=torch_ips.get)

    rec = [converted.embedding_layer, converted.output_layer]
    benchmark.pedantic(lambda: net.run(test_images, T, record=rec), rounds=5, warmup_rounds=1)
    engine_ips = len(test_images) / benchmark.stats.stats.min
    ratio = engine_ips / torch_ips[best_bs]
    res = net.run(test_images, T, record=rec)
    benchmark.extra_info.update(
        engine_images_per_s=engine_ips,
        torch_images_per_s=torch_ips,
        torch_best_batch=best_bs,
        speedup_vs_torch=ratio,
        synaptic_events_per_s=float(res.synops.sum()) / benchmark.stats.stats.min,
        synops_per_image=float(res.synops.sum(axis=1).mean()),
    )
    assert ratio >= 5.0, f"engine {engine_ips:.0f} img/s is {ratio:.1f}x torch, goal 5x"


def test_halving_input_spikes(benchmark, converted, test_images):
    net = converted.network
    rec = [converted.output_layer]
    dark = test_images // 2
    full_spikes = net.run(test_images, T, record=[0]).spike_counts[0].sum()
    dark_spikes = net.run(dark, T, record=[0]).spike_counts[0].sum()
    t_full = _best_of(lambda: net.run(test_images, T, threads=1, record=rec), repeat=5)
    benchmark.pedantic(lambda: net.run(dark, T, threads=1, record=rec), rounds=5)
    t_dark = benchmark.stats.stats.min
    cut = 1.0 - t_dark / t_full
    benchmark.extra_info.update(
        input_spike_ratio=float(dark_spikes / full_spikes),
        time_cut=cut,
        full_s=t_full,
        dark_s=t_dark,
    )
    assert 0.45 <= dark_spikes / full_spikes <= 0.55
    assert cut >= 0.35, f"halving input spikes cut time by {cut:.0%}, goal 35 %"


@pytest.mark.parametrize("timesteps", [16, 128])
def test_engine_latency_by_timesteps(benchmark, converted, test_images, timesteps):
    """Engine latency at T = 16 and 128, batch 1 (one thread) and 1,000 images (all cores)."""
    net = converted.network
    rec = [converted.output_layer]
    benchmark.pedantic(lambda: net.run(test_images, timesteps, record=rec), rounds=3)
    b1 = (
        _best_of(
            lambda: [
                net.run(test_images[i : i + 1], timesteps, threads=1, record=rec)
                for i in range(100)
            ],
            repeat=3,
        )
        / 100
    )
    benchmark.extra_info.update(
        batch1_ms=b1 * 1e3,
        batch1000_ms_per_image=benchmark.stats.stats.min / len(test_images) * 1e3,
    )


def test_sweep_in_one_run(benchmark, converted, test_images):
    """Fig 4's sweep (T = 4, 8, ..., 128) from one run with checkpoints against six runs: the
    same readouts for 128 steps of work instead of 252 (goal: at most 0.6 of the time)."""
    net = converted.network
    steps = [4, 8, 16, 32, 64, 128]
    rec = [converted.embedding_layer, converted.output_layer]
    imgs = test_images[:200]
    one = net.run_checkpoints(imgs, steps, record=rec)
    for r in one:  # identical readouts, checked on the benchmark's own data
        alone = net.run(imgs, r.timesteps, record=rec)
        np.testing.assert_array_equal(r.membrane[rec[0]], alone.membrane[rec[0]])
    t_separate = _best_of(lambda: [net.run(imgs, t, record=rec) for t in steps], repeat=3)
    benchmark.pedantic(lambda: net.run_checkpoints(imgs, steps, record=rec), rounds=3)
    ratio = benchmark.stats.stats.min / t_separate
    benchmark.extra_info.update(separate_s=t_separate, time_ratio=ratio)
    assert ratio <= 0.6, f"one run with checkpoints took {ratio:.2f} of six runs, goal 0.6"
