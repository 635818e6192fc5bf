"""Image embeddings from a converted model: the SNN's activity, or the ANN's, before the output.

Readouts (the paper's is ``"membrane"``), all of the layer before the output (of the layers the
output layer reads, concatenated, for a graph whose output reads several):

- ``"membrane"``: membrane potentials after the last time step;
- ``"spike_count"``: spikes emitted over the run;
- ``"integrated"``: the total input the neurons integrated over the run,
  ``spike_count * threshold + membrane - v0`` with ``v0 = floor(v_init * threshold)`` the
  initial potential (:meth:`snnfast.RunResult.integrated_input`). It is
  finer than the spike count (which has ``T + 1`` values) and, unlike the membrane alone, does
  not forget the part of the input that became spikes;
- ``"ann"``: the ANN's float activation of the same layer (the baseline).

Vectors are float32 ``[N, D]``, the layer flattened in C, H, W order (``D = 1024`` for
``32-64-10``). Predictions: for the SNN readouts, the output neuron with the most spikes; ties go
to the higher final membrane potential, then to the lowest class index. For ``"ann"``, the
argmax of the logits.

:func:`embed_readouts` gives several readouts of one simulation; :func:`embed` one;
:func:`embed_checkpoints` the readouts at several numbers of time steps, from one simulation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import _checks, _container
from ._records import Record
from .convert import ConvertedModel
from .errors import ConfigError, IndexMismatchError, ModelFormatError, ShapeError
from .settings import MAX_TIMESTEPS, RunSettings

__all__ = [
    "READOUTS",
    "Embeddings",
    "IndexMeta",
    "embed",
    "embed_checkpoints",
    "embed_readouts",
    "predict_from_output",
]

READOUTS = ("membrane", "spike_count", "integrated", "ann")
_MODEL_ID = re.compile(r"[0-9a-f]{16}")
FORMAT = "embeddings"
FORMAT_VERSION = 2


@dataclass(frozen=True)
class IndexMeta(Record):
    """What produced a set of embeddings; queries must match the corpus on every field.

    Attributes:
        model_id: :meth:`snnfast.convert.ConvertedModel.model_id` of the model.
        readout: one of :data:`READOUTS`.
        timesteps: simulation steps (0 for the ``"ann"`` readout).
        dim: embedding dimension.
    """

    model_id: str
    readout: str
    timesteps: int
    dim: int

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str) or not _MODEL_ID.fullmatch(self.model_id):
            raise ConfigError(
                f"IndexMeta: model_id must be 16 hexadecimal digits, got {self.model_id!r}"
            )
        if self.readout not in READOUTS:
            raise ConfigError(f"IndexMeta: readout must be one of {READOUTS}, got {self.readout!r}")
        lo = 0 if self.readout == "ann" else 1
        hi = 0 if self.readout == "ann" else MAX_TIMESTEPS
        _checks.integer(self.timesteps, "timesteps", lo, hi, where="IndexMeta")
        _checks.positive_int(self.dim, "dim", where="IndexMeta")

    def check_against(self, other: IndexMeta) -> None:
        """Raise :class:`IndexMismatchError` naming the first field where ``other`` differs."""
        for name in ("model_id", "readout", "timesteps", "dim"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise IndexMismatchError(
                    f"query {name} is {theirs!r} but the index was built with {name} {mine!r}"
                )


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
        steps: int32 ``[N]`` time steps each image ran (fewer than ``timesteps`` where it
            exited early), or ``None`` for the ``"ann"`` readout.
        labels: int64 ``[N]`` the images' labels, or ``None`` when unknown.
        ids: int64 ``[N]`` catalogue ids of the images, or ``None`` (rows ``0 .. N - 1``).
        paths: ``[N]`` unicode strings, the file each image came from, or ``None``.
    """

    vectors: np.ndarray
    predictions: np.ndarray
    meta: IndexMeta
    synops: np.ndarray | None = None
    steps: np.ndarray | None = None
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    paths: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = self.vectors
        if not isinstance(v, np.ndarray) or v.ndim != 2 or v.dtype != np.float32:
            raise ShapeError(f"Embeddings: vectors must be float32 [N, D], got {_describe(v)}")
        n = v.shape[0]
        if v.shape[1] != self.meta.dim:
            raise ShapeError(
                f"Embeddings: vectors have dimension {v.shape[1]}, meta says {self.meta.dim}"
            )
        for name, dtype, ndim in (
            ("predictions", np.int64, 1),
            ("synops", np.int64, 2),
            ("steps", np.int32, 1),
            ("labels", np.int64, 1),
            ("ids", np.int64, 1),
        ):
            a = getattr(self, name)
            if a is None and name != "predictions":
                continue
            if (
                not isinstance(a, np.ndarray)
                or a.dtype != dtype
                or a.ndim != ndim
                or a.shape[0] != n
            ):
                raise ShapeError(
                    f"Embeddings: {name} must be {np.dtype(dtype).name} with {ndim} "
                    f"dimension(s) and {n} rows, got {_describe(a)}"
                )
        if self.paths is not None and (
            not isinstance(self.paths, np.ndarray)
            or self.paths.dtype.kind != "U"
            or self.paths.shape != (n,)
        ):
            raise ShapeError(f"Embeddings: paths must be {n} strings, got {_describe(self.paths)}")

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __repr__(self) -> str:
        m = self.meta
        t = "" if m.readout == "ann" else f", T={m.timesteps}"
        return f"Embeddings({len(self)} x {m.dim}, {m.readout}{t}, model {m.model_id})"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the embeddings to one checksummed ``.npz`` file, atomically."""
        arrays = {
            name: getattr(self, name)
            for name in ("vectors", "predictions", "synops", "steps", "labels", "ids", "paths")
            if getattr(self, name) is not None
        }
        _container.write(
            path, FORMAT, FORMAT_VERSION, {"meta": self.meta.to_json()}, arrays, compress=False
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embeddings:
        """Read embeddings written by :meth:`save` (or by ``snnfast embed``).

        Raises:
            ModelFormatError: the file is missing, damaged, of another kind, or inconsistent.
        """
        contents = _container.read(path, FORMAT, [FORMAT_VERSION], what="embeddings")
        arrays = dict(contents.arrays)
        known = {"vectors", "predictions", "synops", "steps", "labels", "ids", "paths"}
        if set(arrays) - known or not {"vectors", "predictions"} <= set(arrays):
            raise ModelFormatError(
                f"{path}: embeddings arrays {sorted(arrays)} are not the expected ones"
            )
        try:
            meta = IndexMeta.from_json(contents.body.get("meta"))
            return cls(meta=meta, **arrays)
        except (ConfigError, ShapeError) as exc:
            raise ModelFormatError(f"{path}: {exc}") from exc


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} shape {a.shape}"
    return type(a).__name__


def predict_from_output(spike_counts: np.ndarray, membrane: np.ndarray) -> np.ndarray:
    """Class of each image from the output layer: most spikes, then highest potential, then
    lowest index. Both arguments int ``[N, n_classes]``; returns int64 ``[N]``."""
    counts = spike_counts.astype(np.int64)
    v = membrane.astype(np.int64) + (1 << 31)  # in [0, 2**32): below the count's bits
    return np.argmax((counts << 32) | v, axis=1).astype(np.int64)


def _settings(
    converted: ConvertedModel, settings: RunSettings | None, timesteps: int | None
) -> RunSettings:
    if settings is not None and not isinstance(settings, RunSettings):
        raise ConfigError(f"settings must be a RunSettings, got {type(settings).__name__}")
    base = converted.settings if settings is None else settings
    return base if timesteps is None else base.replace(timesteps=timesteps)


def embed(
    converted: ConvertedModel,
    images: np.ndarray,
    readout: str = "membrane",
    settings: RunSettings | None = None,
    *,
    timesteps: int | None = None,
    batch_size: int = 1000,
    progress: bool = False,
) -> Embeddings:
    """Embed ``images`` (uint8 ``[N, C, H, W]`` of the model's input shape) with ``converted``.

    The SNN runs ``batch_size`` images at a time, recording only the embedding and output
    layers, so memory stays bounded. ``settings`` (default: the model's own,
    :attr:`snnfast.convert.ConvertedModel.settings`) say how the SNN runs; ``timesteps``
    overrides their number of steps. The ``"ann"`` readout ignores them (its
    ``meta.timesteps`` is 0). With ``early_exit`` each image's readout is taken at the step it
    stopped.

    Raises:
        ShapeError: images of the wrong dtype or shape (the message gives what was passed).
        ConfigError: unknown readout, or a bad batch size / run setting.
    """
    run = _settings(converted, settings, timesteps)
    return embed_checkpoints(
        converted,
        images,
        [run.timesteps],
        (readout,),
        run,
        batch_size=batch_size,
        progress=progress,
    )[run.timesteps][readout]


def embed_readouts(
    converted: ConvertedModel,
    images: np.ndarray,
    readouts: Sequence[str] = ("membrane", "spike_count", "integrated"),
    settings: RunSettings | None = None,
    *,
    timesteps: int | None = None,
    batch_size: int = 1000,
    progress: bool = False,
) -> dict[str, Embeddings]:
    """Several readouts of ``images`` from one simulation: ``{readout: Embeddings}``.

    The arguments are those of :func:`embed`; ``readouts`` names any of :data:`READOUTS`
    (``"ann"`` runs the ANN instead of the SNN).
    """
    run = _settings(converted, settings, timesteps)
    return embed_checkpoints(
        converted, images, [run.timesteps], readouts, run, batch_size=batch_size, progress=progress
    )[run.timesteps]


def embed_checkpoints(
    converted: ConvertedModel,
    images: np.ndarray,
    checkpoints: Sequence[int],
    readouts: Sequence[str] = ("membrane",),
    settings: RunSettings | None = None,
    *,
    batch_size: int = 1000,
    progress: bool = False,
) -> dict[int, dict[str, Embeddings]]:
    """Readouts of ``images`` at several numbers of time steps from one simulation of
    ``max(checkpoints)`` steps (:meth:`snnfast.Network.run_checkpoints`):
    ``{T: {readout: Embeddings}}``, each equal to ``embed_readouts(..., timesteps=T)``.
    ``settings.timesteps`` is not used (the checkpoints say it).

    Raises:
        ShapeError: images of the wrong dtype or shape.
        ConfigError: bad checkpoints or readouts, or a bad batch size / run setting.
    """
    if isinstance(checkpoints, (str, bytes)) or not isinstance(checkpoints, Sequence):
        raise ConfigError(f"checkpoints must be a sequence of step counts, got {checkpoints!r}")
    names = [readouts] if isinstance(readouts, str) else list(readouts)
    unknown = [r for r in names if r not in READOUTS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"readouts must name distinct entries of {READOUTS}, got {readouts!r}")
    _checks.positive_int(batch_size, "batch_size", where="embed")
    steps_list = sorted(
        {_checks.positive_int(t, "timesteps", MAX_TIMESTEPS, where="embed") for t in checkpoints}
    )
    if not steps_list or len(steps_list) != len(checkpoints):
        raise ConfigError(f"checkpoints must be distinct and not empty, got {list(checkpoints)}")
    run = _settings(converted, settings, None)
    net = converted.network
    imgs = net.check_images(images)  # the engine's own check: uint8 [N, C, H, W], N > 0
    n = imgs.shape[0]
    emb, out = converted.embedding_layers, converted.output_layer
    dim = converted.embedding_dim
    snn = [r for r in names if r != "ann"]
    vectors = {(t, r): np.empty((n, dim), dtype=np.float32) for t in steps_list for r in snn}
    predictions = {t: np.empty(n, dtype=np.int64) for t in steps_list}
    synops = {t: np.zeros((n, net.n_layers + 1), dtype=np.int64) for t in steps_list}
    steps = {t: np.zeros(n, dtype=np.int32) for t in steps_list}
    ann_vectors = np.empty((n if "ann" in names else 0, dim), dtype=np.float32)
    ann_predictions = np.empty(n, dtype=np.int64)
    ann_nodes = [converted.layer_nodes[e] for e in emb]
    graph = converted.graph
    shown = "/".join(map(str, steps_list))
    label = " + ".join(([f"SNN T={shown}"] if snn else []) + (["ANN"] if "ann" in names else []))
    with tqdm(total=n, unit="img", desc=f"embed {label}", disable=not progress) as bar:
        for start in range(0, n, int(batch_size)):
            batch = imgs[start : start + int(batch_size)]
            stop = start + batch.shape[0]
            if "ann" in names:
                acts = graph.forward(batch, [*ann_nodes, graph.output])
                ann_vectors[start:stop] = _flat([acts[a] for a in ann_nodes])
                ann_predictions[start:stop] = acts[graph.output].argmax(axis=1)
            if snn:
                results = net.run_checkpoints(
                    batch,
                    steps_list,
                    delay=run.delay,
                    v_init=run.v_init,
                    threads=run.threads,
                    record=sorted({*emb, out}),
                    early_exit=run.early_exit,
                )
                for t, res in zip(steps_list, results):
                    for r in snn:
                        vectors[t, r][start:stop] = _flat([_readout(res, e, r, net) for e in emb])
                    out_counts, out_membrane = res.spike_counts[out], res.membrane[out]
                    assert out_counts is not None and out_membrane is not None
                    predictions[t][start:stop] = predict_from_output(out_counts, out_membrane)
                    synops[t][start:stop] = res.synops
                    steps[t][start:stop] = res.steps
            bar.update(batch.shape[0])
    model_id = converted.model_id()
    result: dict[int, dict[str, Embeddings]] = {}
    for t in steps_list:
        result[t] = {}
        for r in names:
            if r == "ann":
                result[t][r] = Embeddings(
                    ann_vectors if len(steps_list) == 1 else ann_vectors.copy(),
                    ann_predictions.copy(),
                    IndexMeta(model_id, r, 0, dim),
                )
            else:
                result[t][r] = Embeddings(
                    vectors[t, r],
                    predictions[t].copy(),
                    IndexMeta(model_id, r, t, dim),
                    synops[t].copy(),
                    steps[t].copy(),
                )
    return result


def _flat(parts: list[np.ndarray]) -> np.ndarray:
    n = parts[0].shape[0]
    if len(parts) == 1:
        return np.reshape(parts[0], (n, -1))
    return np.concatenate([np.reshape(p, (n, -1)) for p in parts], axis=1)


def _readout(res: Any, layer: int, readout: str, net: Any) -> np.ndarray:
    """One SNN readout of one recorded layer."""
    if readout == "integrated":
        return res.integrated_input(layer, net.thresholds[layer])
    value = res.membrane[layer] if readout == "membrane" else res.spike_counts[layer]
    assert value is not None  # recorded
    return value
