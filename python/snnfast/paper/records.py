"""The study's results as typed records: the schema of ``results.json`` and ``lowlatency.json``.

Each section of :func:`snnfast.paper.reproduce.reproduce` and each document of
:func:`snnfast.paper.lowlatency.lowlatency_report` is a frozen dataclass (:class:`Section`, a
:class:`snnfast._records.Record`), written to JSON only at the file edge and read back with
``from_json``. A field marked :func:`optional` is left out of the JSON while it is ``None``
(the files then read as before: a Table 1 row that was not run has no ``"ours"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .._records import Record
from ..chip import EnergySummary, MappingSummary
from ..evaluation import EmbeddingScores
from ..latency import MachineInfo, MeasurementSummary
from .config import ReproduceConfig

__all__ = [
    "AnnTimings",
    "ChipCost",
    "EngineTimings",
    "Hardware",
    "LowLatencyAnn",
    "LowLatencyReport",
    "LowLatencyRow",
    "LowLatencySettings",
    "MetricSummary",
    "ModelInfo",
    "PaperTable1Row",
    "ReadoutScores",
    "ReproduceResults",
    "Section",
    "SeedSweep",
    "SnnAccuracy",
    "Sweep",
    "SweepPoint",
    "Table1",
    "Table1Ours",
    "Table1Row",
    "Table2",
    "optional",
]


def optional() -> Any:
    """A field that defaults to ``None`` and is left out of the JSON while ``None``."""
    return field(default=None, metadata={"omit_if_none": True})


class Section(Record):
    """A :class:`~snnfast._records.Record` whose :func:`optional` fields are omitted when
    ``None``."""

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data, without its unset optional fields."""
        data = super().to_json()
        for f in fields(self):  # type: ignore[arg-type]
            if f.metadata.get("omit_if_none") and getattr(self, f.name) is None:
                del data[f.name]
        return data


# -- Table 1 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperTable1Row(Section):
    """The paper's row (percent); ``snn_test`` is ``None`` where it printed N/A."""

    train: float
    val: float
    test: float
    snn_test: float | None
    deployable: bool


@dataclass(frozen=True)
class Table1Ours(Section):
    """Our network of the row (percent) and the test images of its SNN accuracy."""

    train: float
    val: float
    test: float
    snn_test: float
    snn_n_test: int
    best_epoch: int | None


@dataclass(frozen=True)
class SnnAccuracy(Section):
    """SNN classification accuracy (a fraction) on the first ``n_test`` test images."""

    classification: float
    n_test: int


@dataclass(frozen=True)
class Table1Row(Section):
    """One architecture: the paper's figures, deployability on one chip, ours if run."""

    arch: str
    paper: PaperTable1Row
    deployable: bool
    reason: str
    n_cores: int | None
    n_chips: int | None
    run: bool
    ours: Table1Ours | None = optional()


@dataclass(frozen=True)
class Table1(Section):
    """Table 1: SNN accuracy at ``timesteps`` of networks trained with ``seed``."""

    timesteps: int
    seed: int
    rows: list[Table1Row]


# -- Fig 4 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint(Section):
    """Retrieval figures of one network at one ``T`` (0: the ANN); fractions."""

    classification: float | None
    top1: float
    top3: float
    map_at_10: float
    recall_at_10: float | None
    n_queries: int
    timesteps: int
    n_train: int
    seconds: float


@dataclass(frozen=True)
class SeedSweep(Section):
    """One independently trained network of the sweep."""

    seed: int
    ann: SweepPoint
    snn: list[SweepPoint]


@dataclass(frozen=True)
class MetricSummary(Section):
    """Mean and sample standard deviation over seeds, per ``T`` and for the ANN (percent)."""

    mean: list[float]
    std: list[float]
    ann_mean: float
    ann_std: float


@dataclass(frozen=True)
class Sweep(Section):
    """Fig 4: figures per seed and ``T``, and their summary per metric."""

    arch: str
    seeds: list[int]
    timesteps: list[int]
    n_train: int
    n_test: int
    per_seed: list[SeedSweep]
    summary: dict[str, MetricSummary]


# -- Table 2 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipCost(Section):
    """Where ``snnfast demo``'s network (``model_id``, the one it scored) sits on the chip and
    what it costs at each ``T``."""

    model_id: str
    n_cores: int
    n_chips: int
    cores_per_layer: list[int]
    energy: list[EnergySummary]


@dataclass(frozen=True)
class Table2(Section):
    """The Table 2 run (:func:`snnfast.paper.table2.run_pipeline`) and what it ran on.

    Attributes:
        model, arch, model_id: the ANN file, its architecture, the converted model's id.
        n_train, n_test: corpus and query images.
        calibration: ``size`` and ``seed`` of the calibration sample and the converter's
            facts about it (:attr:`snnfast.convert.ConvertedModel.calibration`).
        config: the conversion options.
        thresholds: the SNN's thresholds, input first.
        readout, delay, v_init: how the SNN was run and read out.
        index_params: the HNSW index options given.
        results: the ANN, then each SNN(T).
        timings: seconds per stage of the whole run.
        chip: the chip model's cost of the same network (``snnfast demo`` only).
    """

    model: str
    arch: str
    model_id: str
    n_train: int
    n_test: int
    calibration: dict[str, Any]
    config: dict[str, Any]
    thresholds: list[int]
    readout: str
    delay: int
    v_init: float
    index_params: dict[str, int]
    results: list[EmbeddingScores]
    timings: dict[str, float]
    chip: ChipCost | None = optional()


# -- Tables 3-5 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnTimings(Section):
    """The ANN timed in PyTorch (when installed) and NumPy, batch 1 and a large batch."""

    numpy_1: MeasurementSummary
    numpy_large: MeasurementSummary
    torch_1: MeasurementSummary | None = optional()
    torch_large: MeasurementSummary | None = optional()
    torch_error: str | None = optional()


@dataclass(frozen=True)
class EngineTimings(Section):
    """The engine timed at one ``T``: batch 1 on one thread, a large batch on all threads."""

    batch1: MeasurementSummary
    large: MeasurementSummary | None = optional()


@dataclass(frozen=True)
class Hardware(Section):
    """Tables 3-5 and Figs 3 and 5: latency measured here, the chip model's estimates.

    ``engine`` and ``chip`` are keyed by ``str(T)``; ``mapping`` is filled in after the
    measurements are read from the cache.
    """

    machine: MachineInfo
    ann: AnnTimings
    engine: dict[str, EngineTimings]
    chip: dict[str, EnergySummary]
    compare_with_paper: str | None
    torch_threads: int | None = optional()
    mapping: MappingSummary | None = optional()


# -- low-latency variants ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReadoutScores(Section):
    """Retrieval figures of one readout (fractions)."""

    top1: float
    top3: float
    map_at_10: float
    recall_at_10: float | None

    @classmethod
    def of(cls, scores: EmbeddingScores) -> ReadoutScores:
        """The retrieval part of :class:`~snnfast.evaluation.EmbeddingScores`."""
        return cls(scores.top1, scores.top3, scores.map_at_10, scores.recall_at_10)


@dataclass(frozen=True)
class LowLatencySettings(Section):
    """What the low-latency study ran (``total_s`` is set when it finished)."""

    timesteps: list[int]
    n_train: int
    n_test: int
    calibration_size: int
    validation_size: int
    seed: int
    energy_images: int
    latency_repeats: int
    index_params: dict[str, int]
    recall_queries: int
    early_exit_tolerance: float
    variants: list[dict[str, Any]]
    command: str | None
    total_s: float | None = optional()


@dataclass(frozen=True)
class LowLatencyAnn(Section):
    """One ANN of the study: its classification and retrieval (readout ``"ann"``)."""

    model: str
    qcfs: dict[str, Any] | None
    classification: float
    readouts: dict[str, ReadoutScores]


@dataclass(frozen=True)
class LowLatencyRow(Section):
    """One variant at one ``T``: accuracy, every readout, Loihi estimates, engine latency."""

    variant: str
    timesteps: int
    readout: str
    model: str
    model_id: str
    early_exit: int | None
    v_init: float
    thresholds: list[int]
    threshold_rules: list[str] | None
    mean_steps: float
    classification: float
    readouts: dict[str, ReadoutScores]
    loihi_energy_j: float
    loihi_dynamic_energy_j: float
    loihi_latency_s: float
    loihi_mean_steps: float
    engine_latency_s: float
    seconds: float


@dataclass(frozen=True)
class LowLatencyReport(Section):
    """The low-latency study (``lowlatency.json``)."""

    settings: LowLatencySettings
    ann: list[LowLatencyAnn]
    rows: list[LowLatencyRow]


# -- the whole study --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo(Section):
    """The Table-2 model: a label, its file and the key naming its content."""

    label: str
    path: str
    key: str


@dataclass(frozen=True)
class ReproduceResults(Section):
    """``results.json`` of :func:`snnfast.paper.reproduce.reproduce`."""

    version: str
    config: ReproduceConfig
    cuts: list[str]
    table2_model: ModelInfo
    table1: Table1
    sweep: Sweep
    table2: Table2
    hardware: Hardware
    lowlatency: LowLatencyReport | None
    paper: dict[str, Any]
    figures: dict[str, str]
    cache: dict[str, int]
    finished: str
    wall_s: float
