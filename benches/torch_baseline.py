"""The fastest exact PyTorch simulations of an snnfast network: the engine's speed baselines.

Both simulate the same integers as the engine with float32 tensors (every value stays an integer
below 2^24, so float32 is exact) and reproduce its spike counts on every layer (checked in the
benchmarks). They are what a careful PyTorch user would write for a converted network:

* :meth:`ExactTorchSNN.layer_major` — one layer at a time over all ``T`` steps: the layer's
  input for every step comes from one convolution (pooling, matrix product) over ``T x N``
  images, then an in-place ``T``-step integrate-and-fire loop (``add_``, ``ge(out=)``,
  ``sub_``). Fewest calls: the fastest at batch 1, where each call's fixed cost dominates.
  Images are processed in chunks so that the ``T x N`` tensors stay within memory.
* :meth:`ExactTorchSNN.step_major` — the whole network one step at a time over the batch, the
  state in preallocated buffers: the faster one at large batch (its tensors stay in cache).

The input layer's spikes follow in closed form (``floor((t + 1) p / th) - floor(t p / th)``)
when no pixel exceeds the input threshold, as for every uint8 image with the default 255. The
24-bit saturation is applied only where it can happen: when ``T`` times the largest possible
input current of a layer (plus its threshold) stays below 2^23, the potential provably never
reaches it, and the clamp is skipped (an exact shortcut a careful user would take too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import snnfast

V_MIN = -(2**23)
V_MAX = 2**23 - 1


@dataclass
class _Op:
    kind: str  # "conv", "pool", "dense"
    weight: Any  # torch tensor, or the pooling weight (float)
    bias: Any  # torch tensor or None
    stride: int
    padding: int
    kernel: int
    threshold: float
    max_input: int  # largest |input current| of one step (sum of |w| plus |b|)


class ExactTorchSNN:
    """The network's layers as float32 torch tensors (chains of :class:`snnfast.Conv2d`,
    :class:`snnfast.AvgPool2d` and :class:`snnfast.Dense` without leak, current or zero reset,
    as conversion makes them)."""

    def __init__(self, net: snnfast.Network) -> None:
        import torch

        self.torch = torch
        self.net = net
        self.ops: list[_Op] = []
        for i, layer in enumerate(net.layers, start=1):
            if not isinstance(layer, (snnfast.Conv2d, snnfast.AvgPool2d, snnfast.Dense)):
                raise ValueError(f"layer {i}: the torch baseline takes chains of shorthands")
            if layer.leak or layer.reset != "subtract" or layer.du != 4096 or layer.source:
                raise ValueError(f"layer {i}: the torch baseline simulates plain IF neurons")
            th = float(layer.threshold)
            if isinstance(layer, snnfast.Conv2d):
                if layer.groups != 1:
                    raise ValueError(f"layer {i}: grouped convolution")
                w = layer.weight.astype(np.int64)
                b = layer.bias.astype(np.int64)
                bound = int(np.abs(w).reshape(w.shape[0], -1).sum(1).max() + np.abs(b).max())
                self.ops.append(
                    _Op(
                        "conv",
                        torch.from_numpy(w.astype(np.float32)),
                        torch.from_numpy(b.astype(np.float32)),
                        layer.stride,
                        layer.padding,
                        w.shape[2],
                        th,
                        bound,
                    )
                )
            elif isinstance(layer, snnfast.AvgPool2d):
                if (layer.stride not in (None, layer.kernel)) or layer.padding:
                    raise ValueError(f"layer {i}: strided or padded pooling")
                k = layer.kernel
                self.ops.append(
                    _Op("pool", float(layer.weight), None, k, 0, k, th, k * k * abs(layer.weight))
                )
            else:
                w = layer.weight.astype(np.int64)
                b = layer.bias.astype(np.int64)
                bound = int(np.abs(w).sum(1).max() + np.abs(b).max())
                self.ops.append(
                    _Op(
                        "dense",
                        torch.from_numpy(w.T.astype(np.float32)).contiguous(),
                        torch.from_numpy(b.astype(np.float32)),
                        1,
                        0,
                        1,
                        th,
                        bound,
                    )
                )

    # -- pieces -------------------------------------------------------------------------------

    def _input_spikes(self, x: Any, timesteps: int) -> Any:
        """Input spikes ``[T, N, C, H, W]`` (float32 0/1) of uint8 images ``x`` (a tensor)."""
        torch = self.torch
        th = float(self.net.input_threshold)
        p = x.to(torch.float32)
        if float(p.max()) <= th:  # v stays in [0, th): spikes = steps of floor(t p / th)
            t = torch.arange(timesteps + 1, dtype=torch.float32).view(-1, *([1] * p.dim()))
            counts = torch.floor(t * p / th)
            return counts[1:] - counts[:-1]
        v = torch.zeros_like(p)
        out = torch.empty((timesteps, *p.shape))
        for t in range(timesteps):
            v.add_(p)
            torch.ge(v, th, out=out[t])
            v.sub_(out[t], alpha=th)
        return out

    def _current(self, op: _Op, s: Any) -> Any:
        """The synaptic input (with bias) of layer ``op`` from spikes ``s`` ``[M, ...]``."""
        f = self.torch.nn.functional
        if op.kind == "conv":
            return f.conv2d(s, op.weight, op.bias, stride=op.stride, padding=op.padding)
        if op.kind == "pool":
            return f.avg_pool2d(s, op.kernel, divisor_override=1).mul_(op.weight)
        return self.torch.addmm(op.bias, s.reshape(s.shape[0], -1), op.weight)

    def _saturates(self, op: _Op, timesteps: int) -> bool:
        """Whether the 24-bit clamp can change anything in a run of ``timesteps`` steps."""
        return timesteps * op.max_input + op.threshold >= V_MAX

    # -- schedules ------------------------------------------------------------------------------

    def layer_major(
        self, images: np.ndarray, timesteps: int, chunk: int | None = None
    ) -> list[np.ndarray]:
        """Spike counts of every layer (input first, int32 ``[N, *shape]``), one layer at a time
        over all steps, ``chunk`` images at a time (default: all)."""
        torch = self.torch
        n = len(images)
        chunk = n if chunk is None else chunk
        parts: list[list[np.ndarray]] = []
        with torch.inference_mode():
            for i in range(0, n, chunk):
                x = torch.from_numpy(np.ascontiguousarray(images[i : i + chunk]))
                m = x.shape[0]
                s = self._input_spikes(x, timesteps)
                counts = [s.sum(0)]
                for op in self.ops:
                    z = self._current(op, s.reshape(timesteps * m, *s.shape[2:]))
                    z = z.reshape(timesteps, m, *z.shape[1:])
                    clamp = self._saturates(op, timesteps)
                    v = torch.zeros(z.shape[1:])
                    s = torch.empty_like(z)
                    for t in range(timesteps):
                        v.add_(z[t])
                        if clamp:
                            v.clamp_(V_MIN, V_MAX)
                        torch.ge(v, op.threshold, out=s[t])
                        v.sub_(s[t], alpha=op.threshold)
                    counts.append(s.sum(0))
                parts.append([c.numpy().astype(np.int32) for c in counts])
        return [np.concatenate([p[l] for p in parts]) for l in range(len(self.ops) + 1)]

    def step_major(self, images: np.ndarray, timesteps: int) -> list[np.ndarray]:
        """Spike counts of every layer (input first), the whole network one step at a time."""
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images))
            s_in = self._input_spikes(x, timesteps)
            shapes = [tuple(s_in.shape[1:])]
            probe = s_in[0]
            for op in self.ops:  # the shapes, from one step
                probe = self._current(op, probe)
                shapes.append(tuple(probe.shape))
            v = [torch.zeros(sh) for sh in shapes[1:]]
            s = [torch.empty(sh) for sh in shapes[1:]]
            counts = [s_in.sum(0)] + [torch.zeros(sh) for sh in shapes[1:]]
            clamps = [self._saturates(op, timesteps) for op in self.ops]
            for t in range(timesteps):
                prev = s_in[t]
                for l, op in enumerate(self.ops):
                    v[l].add_(self._current(op, prev))
                    if clamps[l]:
                        v[l].clamp_(V_MIN, V_MAX)
                    torch.ge(v[l], op.threshold, out=s[l])
                    v[l].sub_(s[l], alpha=op.threshold)
                    counts[l + 1].add_(s[l])
                    prev = s[l]
        return [c.numpy().astype(np.int32) for c in counts]
