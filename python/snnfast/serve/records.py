"""What the search service answers: typed records, turned into JSON at the edge.

Every response body of ``snnfast serve`` is one of these records' ``to_json()``; the same
classes describe the responses in the service's OpenAPI document. Labels that are not known are
``null`` (never ``-1``), and so are class names where the catalogue has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._records import Record

__all__ = [
    "ChipEstimate",
    "Health",
    "IndexInfo",
    "ItemsInfo",
    "LayerActivity",
    "Limits",
    "ModelInfo",
    "Neighbour",
    "Neighbours",
    "QueryInfo",
    "SearchOptions",
    "SearchResponse",
    "ServiceInfo",
    "Timing",
]


@dataclass(frozen=True)
class SearchOptions(Record):
    """What a search asks for, beside its query.

    Attributes:
        k: neighbours (default: the service's ``default_k``).
        readout, timesteps: which SNN index (default: the first the service was given); the
            index fixes both, so the query is embedded as the index was.
        ann: also search the ANN index, when the service has one.
        chip: also estimate the query's cost on the neuromorphic chip.
    """

    k: int | None = None
    readout: str | None = None
    timesteps: int | None = None
    ann: bool = True
    chip: bool = True


@dataclass(frozen=True)
class Neighbour(Record):
    """One catalogue item found for a query.

    Attributes:
        id: the item's id in the index (``GET /items/{id}`` shows it).
        distance: cosine distance ``1 - cos`` to the query.
        label: its label, or ``None`` when unknown.
        class_name: the label's name, or ``None``.
        path: the file it came from, or ``None``.
    """

    id: int
    distance: float
    label: int | None = None
    class_name: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Neighbours(Record):
    """The nearest items of one index, nearest first.

    Attributes:
        readout: the index's readout (``"ann"`` for the ANN's).
        timesteps: its time steps (0 for ``"ann"``).
        items: the neighbours.
    """

    readout: str
    timesteps: int
    items: tuple[Neighbour, ...]


@dataclass(frozen=True)
class LayerActivity(Record):
    """What one layer of the SNN did for the query.

    Attributes:
        name: the layer's name (``"input"``, ``"conv1"``, ...).
        neurons: its neurons.
        spikes: spikes it emitted over the run.
        synops: synaptic events delivered into it (0 for the input layer).
    """

    name: str
    neurons: int
    spikes: int
    synops: int


@dataclass(frozen=True)
class ChipEstimate(Record):
    """What the query would cost on the neuromorphic chip (:mod:`snnfast.chip`).

    Attributes:
        chip: the chip profile (``"Loihi 1"``).
        timesteps: the run's time steps; steps: the steps it ran (fewer with early exit).
        n_cores, n_chips: cores and chips the network is mapped onto.
        layers: per SNN layer, input first.
        spikes, synops: totals over the layers.
        latency_s: estimated latency of the inference.
        dynamic_energy_j, static_energy_j, total_energy_j: estimated energy.
    """

    chip: str
    timesteps: int
    steps: int
    n_cores: int
    n_chips: int
    layers: tuple[LayerActivity, ...]
    spikes: int
    synops: int
    latency_s: float
    dynamic_energy_j: float
    static_energy_j: float
    total_energy_j: float


@dataclass(frozen=True)
class QueryInfo(Record):
    """The query as the service saw it.

    Attributes:
        source: ``"upload"`` (an image file), ``"item"`` (a catalogue item by id) or
            ``"image"`` (an array given to :meth:`~snnfast.serve.SearchService.search`).
        id: the catalogue id, for an item.
        filename: the uploaded file's name, for an upload (as the client sent it).
        label, class_name: the item's label and its name, where known.
        predicted, predicted_name: the SNN's class for the query, and its name where known.
        image: the query as the network sees it (its input size), a ``data:image/png`` URL.
    """

    source: str
    predicted: int
    image: str
    id: int | None = None
    filename: str | None = None
    label: int | None = None
    class_name: str | None = None
    predicted_name: str | None = None


@dataclass(frozen=True)
class Timing(Record):
    """Where the request's time went, in milliseconds (measured in the worker).

    Attributes:
        decode_ms: reading the image; embed_ms: the SNN (and ANN) embedding; search_ms: the
        index searches; chip_ms: the chip estimate (its run included); total_ms: all of it.
    """

    decode_ms: float
    embed_ms: float
    search_ms: float
    chip_ms: float
    total_ms: float


@dataclass(frozen=True)
class SearchResponse(Record):
    """The answer of ``POST /search``.

    Attributes:
        query: the query.
        k: neighbours asked for.
        snn: the SNN index's neighbours.
        ann: the ANN index's neighbours, or ``None`` (no ANN index, or not asked for).
        chip: the chip estimate of the query, or ``None`` (not asked for, or the network does
            not fit the chip).
        timing: where the time went.
    """

    query: QueryInfo
    k: int
    snn: Neighbours
    timing: Timing
    ann: Neighbours | None = None
    chip: ChipEstimate | None = None


@dataclass(frozen=True)
class IndexInfo(Record):
    """One loaded index.

    Attributes:
        readout, timesteps, dim: what its vectors are (:class:`~snnfast.embed.IndexMeta`).
        backend: ``"hnswlib"`` or ``"lancedb"``.
        size: items stored.
    """

    readout: str
    timesteps: int
    dim: int
    backend: str
    size: int


@dataclass(frozen=True)
class ModelInfo(Record):
    """The converted model the service embeds with.

    Attributes:
        model_id: :meth:`~snnfast.convert.ConvertedModel.model_id`.
        name: its Table 1 architecture, or a description of its graph.
        input_shape: ``(C, H, W)``.
        layers: SNN layer names, input first; neurons: their sizes.
        v_init: the initial potential it was converted for.
    """

    model_id: str
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[str, ...]
    neurons: tuple[int, ...]
    v_init: float


@dataclass(frozen=True)
class ItemsInfo(Record):
    """The catalogue images the service shows.

    Attributes:
        description: where they come from.
        count: how many (ids ``0 .. count - 1`` for a folder, ``.npy`` file or split; the
            index's ids for images found through the index's paths).
        first_id: the smallest id.
        labelled: whether the images have labels.
        class_names: the label names, or ``None``.
    """

    description: str
    count: int
    first_id: int
    labelled: bool
    class_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Limits(Record):
    """What a request may ask for.

    Attributes:
        max_upload_bytes: largest image file.
        max_pixels: largest image (width x height) that is decoded.
        max_k: most neighbours.
        formats: image formats accepted (Pillow's names).
    """

    max_upload_bytes: int
    max_pixels: int
    max_k: int
    formats: tuple[str, ...]


@dataclass(frozen=True)
class ServiceInfo(Record):
    """The answer of ``GET /info``: what the service holds and accepts.

    Attributes:
        version: snnfast's version.
        model: the converted model.
        indexes: the SNN indexes; a search picks one by ``readout`` and ``T``.
        ann_index: the ANN index shown beside, or ``None``.
        items: the catalogue images, or ``None`` (items cannot be shown or searched by id).
        chip: the chip profile of the estimates, or ``None`` when the network does not fit it.
        notes: warnings about the set-up (chip mapping notes, a network that does not fit).
        limits: the request limits.
        default_k: neighbours returned when ``k`` is not given.
    """

    version: str
    model: ModelInfo
    indexes: tuple[IndexInfo, ...]
    limits: Limits
    default_k: int
    ann_index: IndexInfo | None = None
    items: ItemsInfo | None = None
    chip: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Health(Record):
    """The answer of ``GET /health``.

    Attributes:
        status: ``"ok"``.
        model_id: the model served.
        indexes: SNN indexes loaded.
        items: catalogue images (0 without).
        uptime_s: seconds since the service started.
        searches: searches answered so far (by this process, with ``--processes N``).
        process: the id of the process that answered.
    """

    status: str
    model_id: str
    indexes: int
    items: int
    uptime_s: float
    searches: int
    process: int
