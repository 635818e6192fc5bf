"""What conversion makes: :class:`ConvertedModel` (the SNN beside the ANN it came from), the
settings that made it (:class:`ConversionConfig`) and its file.

A converted-model file is one checksummed container (:mod:`snnfast._container`, kind
``"converted"``, version 2) holding the spiking network, the float graph of the ANN, the
conversion settings, the per-layer scales and the calibration record; loading runs no code.
Files of the first format (an ``snnfast.network`` file with the Table 1 architecture string and
the ANN state in its metadata) still load.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _checks, _container
from ._records import Record
from .ann import Architecture, check_state
from .errors import ConfigError, ModelFormatError, ShapeError
from .graph import Graph
from .network import Network
from .settings import RunSettings

__all__ = ["BALANCINGS", "ROUNDINGS", "CalibrationRecord", "ConversionConfig", "ConvertedModel"]

ROUNDINGS = ("truncate", "round")
BALANCINGS = ("none", "spike-norm", "mse")
FORMAT = "converted"
FORMAT_VERSION = 2
_LEGACY_FORMAT = "network"
_LEGACY_RECORD = "snnfast.converted"


@dataclass(frozen=True)
class ConversionConfig(Record):
    """Options of Algorithm 1 (:mod:`snnfast.convert`); the defaults are the paper's.

    Attributes:
        num_weight_bits: weight bits including sign: ``W_MAX = 2**(bits - 1) - 1`` (2..16).
        num_bias_bits: bias bits including sign: ``b_MAX = 2**(bits - 1) - 1`` (2..24).
        param_percentile: percentile of ``|weight|`` and ``|bias|`` mapped to ``W_MAX``/``b_MAX``.
        activation_percentile: percentile of the layer's ``dvdt`` taken as its threshold.
        rounding: ``"truncate"`` (the paper's ``int()``) or ``"round"`` (half to even).
        clip: saturate the integer weights/biases to ``±W_MAX``/``±b_MAX`` (not in the paper).
        v_init: initial potential fraction in [0, 1) the network is meant to run with
            (:attr:`ConvertedModel.settings`; threshold balancing calibrates with it).
        threshold_balancing: ``"none"`` (Algorithm 1), ``"spike-norm"`` or ``"mse"`` (see
            :mod:`snnfast.convert`).
        balance_timesteps: time steps of the calibration runs of threshold balancing.
        balance_percentile: the percentile of ``"spike-norm"``.
    """

    num_weight_bits: int = 9
    num_bias_bits: int = 9
    param_percentile: float = 99.999
    activation_percentile: float = 99.999
    rounding: str = "truncate"
    clip: bool = False
    v_init: float = 0.0
    threshold_balancing: str = "none"
    balance_timesteps: int = 8
    balance_percentile: float = 99.9

    def __post_init__(self) -> None:
        where = "ConversionConfig"
        _checks.integer(self.num_weight_bits, "num_weight_bits", 2, 16, where=where)
        _checks.integer(self.num_bias_bits, "num_bias_bits", 2, 24, where=where)
        for name in ("param_percentile", "activation_percentile", "balance_percentile"):
            _checks.number(getattr(self, name), name, 0.0, 100.0, lo_open=True, where=where)
        _checks.choice(self.rounding, "rounding", ROUNDINGS, where=where)
        _checks.flag(self.clip, "clip", where=where)
        _checks.number(self.v_init, "v_init", 0.0, 1.0, hi_open=True, where=where)
        _checks.choice(self.threshold_balancing, "threshold_balancing", BALANCINGS, where=where)
        _checks.integer(self.balance_timesteps, "balance_timesteps", 1, 1 << 16, where=where)

    @property
    def w_max(self) -> int:
        """``W_MAX = 2**(num_weight_bits - 1) - 1``."""
        return (1 << (self.num_weight_bits - 1)) - 1

    @property
    def b_max(self) -> int:
        """``b_MAX = 2**(num_bias_bits - 1) - 1``."""
        return (1 << (self.num_bias_bits - 1)) - 1

    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """The algorithm's ``int()``: truncation toward zero, or rounding (int64)."""
        y = np.trunc(x) if self.rounding == "truncate" else np.rint(x)
        return np.asarray(y).astype(np.int64)


@dataclass(frozen=True)
class CalibrationRecord(Record):
    """Facts about a conversion's calibration.

    Attributes:
        n_images: calibration images.
        input_theta: the algorithm's input threshold ``theta_0`` (before mapping it to the
            network's ``input_threshold``).
        threshold_rules: how each layer's threshold was set: ``"percentile"``,
            ``"spike-norm"``, ``"mse"`` or ``"scale"`` (a QCFS ``lam``).
        activation_scales: the QCFS scales given, by layer name.
    """

    n_images: int
    input_theta: int
    threshold_rules: tuple[str, ...]
    activation_scales: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ConvertedModel:
    """An ANN and the integer SNN Algorithm 1 made of it.

    SNN layer ``l`` (0 is the input layer) is called ``layer_names[l]`` and stands for the
    value of the graph node ``layer_nodes[l]`` (its spike rate approximates that activation).

    Attributes:
        network: the integer spiking network.
        graph: the float ANN it came from (:mod:`snnfast.graph`).
        config: the conversion options used.
        param_scales: ``param_scale`` of each layer, input first.
        slopes: ``slope`` after each layer, input first (SNN rate / ANN activation).
        calibration: the calibration record.
        layer_names, layer_nodes: see above.
        embedding_layers: the SNN layers read out as the embedding (those the output layer
            reads; one for a chain network).
        arch: the Table 1 architecture, for networks of that family; else ``None``.
    """

    network: Network
    graph: Graph
    config: ConversionConfig
    param_scales: tuple[float, ...]
    slopes: tuple[float, ...]
    calibration: CalibrationRecord
    layer_names: tuple[str, ...]
    layer_nodes: tuple[str, ...]
    embedding_layers: tuple[int, ...]
    arch: Architecture | None = None

    def __post_init__(self) -> None:
        n = self.network.n_layers + 1
        for name in ("param_scales", "slopes", "layer_names", "layer_nodes"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"ConvertedModel: {name} needs {n} entries")
        if not self.embedding_layers or not all(0 <= e < n - 1 for e in self.embedding_layers):
            raise ConfigError(f"ConvertedModel: bad embedding layers {self.embedding_layers}")
        for node in self.layer_nodes:
            self.graph.node(node)

    def __repr__(self) -> str:
        what = self.arch.spec if self.arch is not None else f"{len(self.graph.nodes)}-node graph"
        return (
            f"ConvertedModel({what}, {self.network.n_layers} spiking layers, input "
            f"{self.network.input_shape}, thresholds {self.thresholds})"
        )

    @property
    def thresholds(self) -> list[int]:
        """Threshold of each SNN layer, input first (the input's is ``input_threshold``)."""
        return self.network.thresholds

    @property
    def settings(self) -> RunSettings:
        """The :class:`~snnfast.settings.RunSettings` the model was converted for (its
        ``v_init``; the other fields at their defaults)."""
        return RunSettings(v_init=float(self.config.v_init))

    @property
    def embedding_layer(self) -> int:
        """The SNN layer of the embedding, for a model with one embedding layer.

        Raises:
            ConfigError: the embedding spans several layers (see :attr:`embedding_layers`).
        """
        if len(self.embedding_layers) != 1:
            raise ConfigError(
                f"the embedding spans layers {self.embedding_layers}; use embedding_layers"
            )
        return self.embedding_layers[0]

    @property
    def embedding_dim(self) -> int:
        """Values of the embedding (the embedding layers' neurons together)."""
        return sum(self.network.sizes[e] for e in self.embedding_layers)

    @property
    def output_layer(self) -> int:
        """SNN layer index of the output layer (the last)."""
        return self.network.n_layers

    @property
    def n_classes(self) -> int:
        """Number of output neurons."""
        return self.network.sizes[-1]

    @property
    def ann_state(self) -> dict[str, np.ndarray]:
        """The Table 1 state dict of the ANN (``conv1.weight``, ..., ``fc.bias``).

        Raises:
            ConfigError: the model is not of the Table 1 family.
        """
        if self.arch is None:
            raise ConfigError("ann_state exists for Table 1 models only; use graph")
        state: dict[str, np.ndarray] = {}
        for node in self.graph.nodes:
            if node.op in ("conv", "dense"):
                name = "fc" if node.op == "dense" else node.name
                state[f"{name}.weight"] = np.array(node.weight)  # type: ignore[union-attr]
                state[f"{name}.bias"] = np.array(node.bias)  # type: ignore[union-attr]
        return state

    # -- identity and files ---------------------------------------------------------------

    def _record(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        net_spec, net_arrays = self.network.to_container()
        graph_spec, graph_arrays = self.graph.to_record()
        body = {
            "network": net_spec,
            "graph": graph_spec,
            "config": self.config.to_json(),
            "param_scales": list(self.param_scales),
            "slopes": list(self.slopes),
            "calibration": self.calibration.to_json(),
            "layer_names": list(self.layer_names),
            "layer_nodes": list(self.layer_nodes),
            "embedding_layers": list(self.embedding_layers),
            "arch": None if self.arch is None else self.arch.spec,
        }
        arrays = {f"snn.{k}": v for k, v in net_arrays.items()}
        arrays.update({f"ann.{k}": v for k, v in graph_arrays.items()})
        return body, arrays

    def model_id(self) -> str:
        """A stable 16-hex-digit hash of the network, its ANN and the conversion settings.

        Equal for a model and its saved-and-loaded copy, on any machine.
        """
        body, arrays = self._record()
        h = hashlib.sha256(json.dumps(body, sort_keys=True).encode())
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            h.update(f"{name}{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to one checksummed ``.npz`` container, atomically (no pickle)."""
        body, arrays = self._record()
        _container.write(path, FORMAT, FORMAT_VERSION, body, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConvertedModel:
        """Read a model written by :meth:`save` (or by the first file format).

        Raises:
            ModelFormatError: the file is missing, damaged, of another kind, or inconsistent.
            MemoryLimitError: its arrays would not fit the memory limit.
        """
        contents = _container.read(
            path, (FORMAT, _LEGACY_FORMAT), (1, FORMAT_VERSION), what="converted model"
        )
        try:
            if contents.kind == _LEGACY_FORMAT:
                return _load_legacy(contents.body, contents.arrays, str(path))
            body, arrays = contents.body, contents.arrays
            net = Network.from_container(
                body["network"],
                {k[4:]: v for k, v in arrays.items() if k.startswith("snn.")},
                where=str(path),
            )
            graph = Graph.from_record(
                body["graph"], {k[4:]: v for k, v in arrays.items() if k.startswith("ann.")}
            )
            arch = None if body.get("arch") is None else Architecture.parse(str(body["arch"]))
            return cls(
                network=net,
                graph=graph,
                config=ConversionConfig.from_json(body["config"]),
                param_scales=tuple(float(x) for x in body["param_scales"]),
                slopes=tuple(float(x) for x in body["slopes"]),
                calibration=CalibrationRecord.from_json(body["calibration"]),
                layer_names=tuple(str(x) for x in body["layer_names"]),
                layer_nodes=tuple(str(x) for x in body["layer_nodes"]),
                embedding_layers=tuple(int(x) for x in body["embedding_layers"]),
                arch=arch,
            )
        except ModelFormatError as exc:
            raise ModelFormatError(f"{path}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError, ShapeError, ConfigError) as exc:
            raise ModelFormatError(
                f"{path}: converted-model record is damaged ({type(exc).__name__}: {exc})"
            ) from exc

    def replace(self, **changes: Any) -> ConvertedModel:
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)


def _decode_array(d: Mapping[str, Any]) -> np.ndarray:
    if d["dtype"] != "<f4":
        raise ValueError(f"unsupported dtype {d['dtype']!r}")
    raw = base64.b64decode(d["data"], validate=True)
    shape = tuple(int(s) for s in d["shape"])
    if len(raw) != 4 * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"array data of {len(raw)} bytes does not fit shape {shape}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def _load_legacy(
    header: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str
) -> ConvertedModel:
    """A converted model of the first file format: a chain network, a Table 1 record."""
    record = header.get("metadata", {}).get(_LEGACY_RECORD)
    if not isinstance(record, dict) or record.get("format") != _LEGACY_RECORD:
        raise ModelFormatError(f"{where} is a network file without a conversion record")
    if record.get("version") != 1:
        raise ModelFormatError(
            f"{where} has conversion record version {record.get('version')}, this snnfast "
            "reads 1 (in this file format)"
        )
    net = Network.from_container(header, arrays, where=where)
    arch = Architecture.parse(record["arch"])
    state = check_state(arch, {k: _decode_array(v) for k, v in record["ann_state"].items()})
    cal = dict(record["calibration"])
    descs = arch.layers
    kinds = {"conv": "conv2d", "pool": "avgpool2d", "dense": "dense"}
    if len(descs) != net.n_layers or any(
        kinds[d.kind] != layer.kind or tuple(d.out_shape) != tuple(s)
        for d, layer, s in zip(descs, net.layers, net.shapes[1:])
    ):
        raise ModelFormatError(f"{where}: network layers do not match architecture {arch.spec}")
    scales = {str(k): float(v) for k, v in dict(cal.get("activation_scales", {})).items()}
    return ConvertedModel(
        network=net,
        graph=arch.graph(state),
        config=ConversionConfig(**record["config"]),
        param_scales=tuple(float(x) for x in record["param_scales"]),
        slopes=tuple(float(x) for x in record["slopes"]),
        calibration=CalibrationRecord(
            int(cal["n_images"]), int(cal["input_theta"]), tuple(cal["threshold_rules"]), scales
        ),
        layer_names=("input", *(d.name for d in descs)),
        layer_nodes=("input", *arch.node_names()),
        embedding_layers=(arch.embedding_layer + 1,),
        arch=arch,
    )
