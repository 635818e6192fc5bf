"""A dense PyTorch simulation of the same integer network, the speed baseline of the engine.

Every step it runs each layer as a float32 convolution (or matrix product) over the whole
previous layer's spike tensor, spikes or not: the usual way to simulate a converted SNN on a
CPU. Integers up to 2^24 are exact in float32, so it reproduces the engine's results (checked
in the benchmark) for leak-free networks like the converted ones.
"""

from __future__ import annotations

import numpy as np

import snnfast

V_MIN = -(2**23)
V_MAX = 2**23 - 1


class DenseTorchSNN:
    """The network's layers as torch float32 tensors."""

    def __init__(self, net: snnfast.Network) -> None:
        import torch

        self.torch = torch
        self.net = net
        self.ops = []
        for layer in net.layers:
            if layer.leak:
                raise ValueError("the dense baseline simulates leak-free networks only")
            if isinstance(layer, snnfast.Conv2d):
                w = torch.from_numpy(layer.weight.astype(np.float32))
                b = torch.from_numpy(layer.bias.astype(np.float32)).view(1, -1, 1, 1)
                self.ops.append(("conv", w, b, layer.stride, layer.padding, layer.threshold))
            elif isinstance(layer, snnfast.AvgPool2d):
                self.ops.append(("pool", layer.kernel, float(layer.weight), layer.threshold))
            else:
                w = torch.from_numpy(layer.weight.astype(np.float32))
                b = torch.from_numpy(layer.bias.astype(np.float32)).view(1, -1)
                self.ops.append(("dense", w, b, layer.threshold))

    def run(self, images: np.ndarray, timesteps: int) -> list[np.ndarray]:
        """Spike counts of every layer (input first), like ``Network.run``."""
        torch = self.torch
        f = torch.nn.functional
        with torch.no_grad():
            x = torch.from_numpy(images.astype(np.float32))
            th0 = float(self.net.input_threshold)
            v = [torch.zeros_like(x)]
            counts = [torch.zeros_like(x)]
            shapes = self.net.shapes
            for s in shapes[1:]:
                v.append(torch.zeros((x.shape[0], *s)))
                counts.append(torch.zeros((x.shape[0], *s)))
            for _ in range(timesteps):
                vv = v[0] + x
                s = (vv >= th0).float()
                v[0] = vv - th0 * s
                counts[0] += s
                for l, op in enumerate(self.ops, start=1):
                    if op[0] == "conv":
                        _, w, b, stride, pad, th = op
                        z = f.conv2d(s, w, stride=stride, padding=pad) + b
                    elif op[0] == "pool":
                        _, k, w, th = op
                        z = f.avg_pool2d(s, k) * (w * k * k)
                    else:
                        _, w, b, th = op
                        z = s.reshape(s.shape[0], -1) @ w.T + b
                    vv = torch.clamp(v[l] + z, V_MIN, V_MAX)
                    s = (vv >= th).float()
                    v[l] = vv - th * s
                    counts[l] += s
            return [c.numpy().astype(np.int32) for c in counts]
