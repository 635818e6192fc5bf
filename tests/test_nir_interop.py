"""Cross-checks of snnfast's NIR graphs against the real libraries (the ``interop`` extra).

1. The shipped 32-64-10 with every layer reset to zero, exported with :func:`snnfast.to_nir`,
   imported by snnTorch, Norse and sinabs and run in their own float simulation for T = 16 on
   1,000 test images, with the same input spikes (:func:`snnfast.interop.input_spikes`).
2. A spiking CNN built in snnTorch (the shipped ANN's weights, normalised by activation
   percentiles; leaky neurons with reset to zero), exported with snnTorch's own exporter and
   imported by :func:`snnfast.from_nir`.

Each library's importer has known flaws (``docs/nir.md``); the fixes below touch only those,
never the weights or thresholds:

* snnTorch builds ``IF`` as a leaky neuron (beta 0.9) with subtractive reset that returns a
  tuple: it is replaced by ``Leaky(beta=1, reset_mechanism="zero")`` of the same threshold;
* snnTorch and Norse turn NIR's ``Flatten(start_dim=0)`` (no batch axis) into a flatten of the
  batch axis: it is replaced by ``Flatten(1)``;
* sinabs builds ``IF`` with several spikes per step, subtractive reset and a floor at
  ``-threshold``: it gets one spike per step, reset to zero and no floor.

``pytest -rP tests/test_nir_interop.py`` prints the measured agreements.
"""

from __future__ import annotations

import contextlib
import io

import helpers_nir
import numpy as np
import pytest
from helpers_convert import fashion
from helpers_nir import decide, zero_reset

from snnfast.convert import ConversionConfig
from snnfast.interop import from_nir, input_spikes, to_nir

torch = pytest.importorskip("torch")
pytest.importorskip("nir")

N = 1000
T = 16
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def reference():
    """The shipped model (reset to zero), its run on N test images, and their input spikes."""
    model = zero_reset(helpers_nir.shipped())
    images, _ = fashion("test", N)
    res = model.network.run(images, T)
    return model, res.spike_counts[-1], torch.from_numpy(input_spikes(images, T))


def _report(name: str, counts: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    same = float(np.mean(np.all(counts.astype(np.int64) == want, axis=1)))
    agree = float(np.mean(counts.argmax(1) == want.argmax(1)))
    print(
        f"{name}: identical output spike counts on {same:.1%}, same class on {agree:.1%} "
        f"of {len(want)} images (T = {T})"
    )
    return same, agree


def test_snntorch_runs_the_exported_network(reference):
    snn = pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model, want, x = reference
    with contextlib.redirect_stdout(io.StringIO()):
        gm = import_from_nir(to_nir(model, pooling="avg"))  # snnTorch maps AvgPool2d only
    for name, m in list(gm.named_children()):
        if isinstance(m, snn.Leaky):
            fixed = snn.Leaky(
                beta=1.0,
                threshold=float(m.threshold),
                reset_mechanism="zero",
                init_hidden=True,
                reset_delay=False,
            )
            setattr(gm, name, fixed)
        elif isinstance(m, torch.nn.Flatten):
            setattr(gm, name, torch.nn.Flatten(1))
    counts = 0
    with torch.no_grad():
        for t in range(T):
            out = gm(x[t])
            counts = counts + (out[0] if isinstance(out, tuple) else out)
    same, agree = _report("snnTorch", counts.numpy(), want)
    assert agree >= 0.99 and same >= 0.99


def test_norse_runs_the_exported_network(reference):
    norse = pytest.importorskip("norse.torch")
    model, want, x = reference
    m = norse.from_nir(to_nir(model, pooling="sum"))
    for sub in m.modules():
        if isinstance(sub, torch.nn.Flatten):
            sub.start_dim = 1
    counts, state = 0, None
    with torch.no_grad():
        for t in range(T):
            out, state = m(x[t], state)
            counts = counts + out
    same, agree = _report("Norse", counts.numpy(), want)
    assert agree >= 0.99 and same >= 0.99


def test_sinabs_runs_the_exported_network(reference):
    snir = pytest.importorskip("sinabs.nir")
    import sinabs.activation as sa
    import sinabs.layers as sl

    model, want, x = reference
    graph = to_nir(model, pooling="sum")
    chunk = 200
    parts = []
    for start in range(0, N, chunk):
        m = snir.from_nir(graph, batch_size=chunk)
        for sub in m.modules():
            if isinstance(sub, sl.IAFSqueeze):
                sub.spike_fn = sa.SingleSpike
                sub.reset_fn = sa.MembraneReset()
                sub.min_v_mem = None
        xs = x[:, start : start + chunk].permute(1, 0, 2, 3, 4).reshape(chunk * T, 1, 28, 28)
        with torch.no_grad():
            out = m(xs)
        out = out[0] if isinstance(out, tuple) else out
        parts.append(out.reshape(chunk, T, -1).sum(1).numpy())
    same, agree = _report("sinabs", np.concatenate(parts), want)
    assert agree >= 0.99 and same >= 0.99


# -- a network made in snnTorch --------------------------------------------------------------

BETA = 1 - 32 / 4096  # a leak the engine's 12-bit dv holds exactly (dv = 32)


def _snntorch_cnn(snn):
    """The shipped ANN as an snnTorch CNN: each layer's weights divided by the 99.9th percentile
    of its ReLU activation on 1,000 training images (data-based normalisation), threshold 1,
    leaky neurons with reset to zero, average pooling into neurons of its own."""
    from snnfast.ann import load_model

    arch, state, _ = load_model()
    train, _ = fashion("train", 1000)
    acts = arch.graph(state).forward(train, ["conv1.relu", "conv2.relu", "fc"], dtype=np.float64)
    lam1 = np.percentile(acts["conv1.relu"], 99.9)
    lam2 = np.percentile(acts["conv2.relu"], 99.9)
    lam3 = np.percentile(np.maximum(acts["fc"], 0), 99.9)

    def leaky(shape, output=False):
        # per-neuron beta and threshold: snnTorch's exporter needs shaped parameters to infer
        # the graph's types
        return snn.Leaky(
            beta=torch.full(shape, BETA),
            threshold=torch.ones(shape),
            reset_mechanism="zero",
            init_hidden=True,
            output=output,
        )

    c1, c2 = torch.nn.Conv2d(1, 32, 5), torch.nn.Conv2d(32, 64, 5)
    fc = torch.nn.Linear(1024, 10)
    with torch.no_grad():
        for layer, key, w_scale, b_scale in (
            (c1, "conv1", 1 / lam1, 1 / lam1),
            (c2, "conv2", lam1 / lam2, 1 / lam2),
            (fc, "fc", lam2 / lam3, 1 / lam3),
        ):
            layer.weight[:] = torch.from_numpy(state[f"{key}.weight"] * w_scale)
            layer.bias[:] = torch.from_numpy(state[f"{key}.bias"] * b_scale)
    pool = lambda: torch.nn.AvgPool2d((2, 2), stride=(2, 2))  # noqa: E731
    return torch.nn.Sequential(
        c1,
        leaky((32, 24, 24)),
        pool(),
        leaky((32, 12, 12)),
        c2,
        leaky((64, 8, 8)),
        pool(),
        leaky((64, 4, 4)),
        torch.nn.Flatten(),
        fc,
        leaky((10,), output=True),
    )


def test_an_snntorch_cnn_exported_by_snntorch_imports():
    snn = pytest.importorskip("snntorch")
    import snntorch.utils as su
    from snntorch.export_nir import export_to_nir

    net = _snntorch_cnn(snn)
    images, labels = fashion("test", N)
    x = torch.from_numpy(input_spikes(images, T))
    su.reset(net)
    counts = 0
    with torch.no_grad():
        for t in range(T):
            spk, mem = net(x[t])
            counts = counts + spk
    # snnTorch resets a neuron that fired at the start of the next step; the engine at once
    theirs = decide(counts.numpy(), (mem * (1 - spk)).numpy())
    with contextlib.redirect_stdout(io.StringIO()):  # its exporter prints warnings
        graph = export_to_nir(net, torch.zeros(1, 1, 28, 28), ignore_dims=[0])
    print(f"snnTorch's own run: accuracy {np.mean(theirs == labels):.1%}")
    for name, cfg, need in (
        (
            "16-bit weights, rounded",
            ConversionConfig(num_weight_bits=16, num_bias_bits=16, rounding="round", clip=True),
            0.97,
        ),
        (
            "12-bit weights, rounded",
            ConversionConfig(num_weight_bits=12, num_bias_bits=12, rounding="round", clip=True),
            0.95,
        ),
        ("9-bit weights (paper)", None, 0.90),
    ):
        model = from_nir(graph, dt=1e-4, config=cfg)  # snnTorch's exporter assumes dt = 1e-4
        assert [layer.leak for layer in model.network.layers] == [32] * 5
        res = model.network.run(images, T)
        ours = decide(res.spike_counts[-1], res.membrane[-1])
        agree = float(np.mean(ours == theirs))
        print(
            f"from_nir, {name}: same class as snnTorch on {agree:.1%} of {N} images "
            f"(accuracy {np.mean(ours == labels):.1%})"
        )
        assert agree >= need, name
