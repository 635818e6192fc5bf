"""Models and rules shared by the NIR tests."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from helpers_convert import fashion

import snnfast
from snnfast.ann import load_model
from snnfast.convert import convert


def zero_reset(model):
    """``model`` with every layer reset to zero (what NIR expresses exactly)."""
    net = model.network
    layers = [dataclasses.replace(layer, reset="zero") for layer in net.layers]
    return model.replace(network=snnfast.Network(layers, net.input_shape, net.input_threshold))


@functools.cache
def shipped():
    """The shipped 32-64-10, converted with Algorithm 1 on 1,000 training images."""
    arch, state, _ = load_model()
    train, _ = fashion("train", 1000)
    return convert(state, arch, calibration_images=train)


def decide(counts: np.ndarray, membrane: np.ndarray) -> np.ndarray:
    """The class of each row: most spikes, then the higher potential, then the lower index
    (the rule of :func:`snnfast.embed.embed`), for any simulator's counts and potentials."""
    counts = np.asarray(counts, dtype=np.float64)
    membrane = np.asarray(membrane, dtype=np.float64)
    index = -np.arange(counts.shape[1], dtype=np.float64)
    return np.array(
        [np.lexsort((index, m, c))[-1] for c, m in zip(counts, membrane)], dtype=np.int64
    )
