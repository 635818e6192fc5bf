"""Image embeddings from a converted model: the SNN's activity, or the ANN's, before the output.

Readouts (the paper's is ``"membrane"``):

- ``"membrane"``: membrane potentials of the layer before the output after the last time step;
- ``"spike_count"``: spikes that layer emitted over the run;
- ``"ann"``: the ANN's float activation of the same layer (the baseline).

Vectors are float32 ``[N, D]``, the layer flattened in C, H, W order (``D = 1024`` for
``32-64-10``). Predictions: for the SNN readouts, the output neuron with the most spikes; ties go
to the higher final membrane potential, then to the lowest class index. For ``"ann"``, the
argmax of the logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from . import ann
from .convert import ConvertedModel
from .errors import ConfigError
from .retrieval import IndexMeta

__all__ = ["READOUTS", "Embeddings", "embed", "predict_from_output"]

READOUTS = ("membrane", "spike_count", "ann")


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of a batch of images.

    Attributes:
        vectors: float32 ``[N, D]``.
        predictions: int64 ``[N]`` predicted classes.
        meta: what produced them (model id, readout, time steps (0 for ``"ann"``), dimension);
            give it to :meth:`snnfast.retrieval.RetrievalIndex.build` / ``search``.
        synops: int64 ``[N, L + 1]`` synaptic events delivered into each SNN layer, or ``None``
            for the ``"ann"`` readout.
    """

    vectors: np.ndarray
    predictions: np.ndarray
    meta: IndexMeta
    synops: np.ndarray | None = None


def predict_from_output(spike_counts: np.ndarray, membrane: np.ndarray) -> np.ndarray:
    """Class of each image from the output layer: most spikes, then highest potential, then
    lowest index. Both arguments int ``[N, n_classes]``; returns int64 ``[N]``."""
    counts = spike_counts.astype(np.int64)
    v = membrane.astype(np.int64) + (1 << 31)  # in [0, 2**32): below the count's bits
    return np.argmax((counts << 32) | v, axis=1).astype(np.int64)


def embed(
    converted: ConvertedModel,
    images: np.ndarray,
    readout: str = "membrane",
    timesteps: int = 16,
    batch_size: int = 1000,
    threads: int | None = None,
    progress: bool = True,
    delay: int = 0,
    v_init: float = 0.0,
) -> Embeddings:
    """Embed ``images`` (uint8 ``[N, 1, 28, 28]`` or ``[N, 28, 28]``) with ``converted``.

    The SNN runs ``batch_size`` images at a time, recording only the embedding and output
    layers, so memory stays bounded. ``timesteps``, ``delay``, ``v_init`` and ``threads`` go to
    :meth:`snnfast.Network.run` (ignored by the ``"ann"`` readout, whose ``meta.timesteps`` is 0).

    Raises:
        ShapeError: images of the wrong dtype or shape (the message gives what was passed).
        ConfigError: unknown readout, or a bad batch size / run setting.
    """
    if readout not in READOUTS:
        raise ConfigError(f"readout must be one of {READOUTS}, got {readout!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
        batch_size < 1
    ):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    net = converted.network
    imgs = net._check_images(images)  # the engine's own check: uint8 [N, C, H, W], N > 0
    n = imgs.shape[0]
    emb, out = converted.embedding_layer, converted.output_layer
    dim = net.sizes[emb]
    vectors = np.empty((n, dim), dtype=np.float32)
    predictions = np.empty(n, dtype=np.int64)
    synops = np.zeros((n, net.n_layers + 1), dtype=np.int64)
    label = "ANN" if readout == "ann" else f"SNN T={timesteps}"
    with tqdm(total=n, unit="img", desc=f"embed {label}", disable=not progress) as bar:
        for start in range(0, n, int(batch_size)):
            batch = imgs[start : start + int(batch_size)]
            stop = start + batch.shape[0]
            if readout == "ann":
                acts = ann.forward(converted.arch, converted.ann_state, batch)
                vectors[start:stop] = acts[emb - 1].reshape(batch.shape[0], -1)
                predictions[start:stop] = acts[-1].argmax(axis=1)
            else:
                res = net.run(batch, timesteps=timesteps, delay=delay, v_init=v_init,
                              threads=threads, record=[emb, out])
                source = res.membrane[emb] if readout == "membrane" else res.spike_counts[emb]
                vectors[start:stop] = source.reshape(batch.shape[0], -1)
                predictions[start:stop] = predict_from_output(res.spike_counts[out],
                                                              res.membrane[out])
                synops[start:stop] = res.synops
            bar.update(batch.shape[0])
    steps = 0 if readout == "ann" else int(timesteps)
    meta = IndexMeta(converted.model_id(), readout, steps, dim)
    return Embeddings(vectors, predictions, meta, None if readout == "ann" else synops)
