"""snnfast: fast, exact, event-driven integer spiking networks for neuromorphic image retrieval.

The engine contract (``Network``, ``Conv2d``, ``AvgPool2d``, ``Dense``, ``RunResult``) needs only
NumPy. The pipeline's stages are modules of their own: :mod:`snnfast.data`, :mod:`snnfast.ann`,
:mod:`snnfast.train` (PyTorch, the ``train`` extra), :mod:`snnfast.convert` (Algorithm 1),
:mod:`snnfast.embed`, :mod:`snnfast.retrieval`, :mod:`snnfast.metrics`,
:mod:`snnfast.evaluation` (calibration, then embed, index, search, score), :mod:`snnfast.chip`
(chip profiles, mapper, energy and latency model), :mod:`snnfast.graph` and
:mod:`snnfast.torch_graph` (any CNN: the layer graph, the user's PyTorch model),
:mod:`snnfast.interop` (NIR), :mod:`snnfast.scale` (Ray) and :mod:`snnfast.serve` (the search
service). Their main names are available here too; importing ``snnfast`` never imports torch.
The paper's study is the ``paper`` subpackage, a client of the library that the library never
imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._core import __version__
from .errors import (
    ConfigError,
    ConversionError,
    DataError,
    IndexMismatchError,
    MemoryLimitError,
    ModelFormatError,
    ResourceError,
    ShapeError,
    SnnfastError,
)
from .network import (
    AvgPool2d,
    Conv2d,
    ConvSynapses,
    Dense,
    DenseSynapses,
    GroupGeometry,
    Layer,
    Network,
    PoolSynapses,
    RunResult,
    SpikingLayer,
)

# Names re-exported from the pipeline modules, loaded on first use.
_LAZY = {
    "load_fashion_mnist": "data",
    "CLASS_NAMES": "data",
    "Architecture": "ann",
    "load_model": "ann",
    "save_model": "ann",
    "SHIPPED_MODEL": "ann",
    "RunSettings": "settings",
    "Graph": "graph",
    "from_torch": "torch_graph",
    "graph_from_torch": "torch_graph",
    "convert": "convert",
    "convert_graph": "convert",
    "ConversionConfig": "convert",
    "ConvertedModel": "convert",
    "embed": "embed",
    "embed_checkpoints": "embed",
    "Embeddings": "embed",
    "RetrievalIndex": "retrieval",
    "IndexMeta": "retrieval",
    "SearchResult": "retrieval",
    "evaluate_retrieval": "metrics",
    "calibration_indices": "evaluation",
    "calibrate_and_convert": "evaluation",
    "evaluate_model": "evaluation",
    "score_embeddings": "evaluation",
    "EmbeddingScores": "evaluation",
    "Loihi1": "chip",
    "map_network": "chip",
    "check_deployable": "chip",
    "EnergyModel": "chip",
    "EnergyReport": "chip",
    "estimate_energy": "chip",
    "estimate_network": "chip",
    "to_nir": "interop",
    "from_nir": "interop",
}

__all__ = [
    "__version__",
    "AvgPool2d",
    "Conv2d",
    "ConvSynapses",
    "Dense",
    "DenseSynapses",
    "GroupGeometry",
    "Layer",
    "Network",
    "PoolSynapses",
    "RunResult",
    "SpikingLayer",
    "SnnfastError",
    "ShapeError",
    "ConfigError",
    "ResourceError",
    "DataError",
    "ModelFormatError",
    "IndexMismatchError",
    "ConversionError",
    "MemoryLimitError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'snnfast' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
