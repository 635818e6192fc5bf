"""The search service without its web server: :class:`SearchService`.

It holds what ``snnfast serve`` loads once at start-up (the converted model, one or more SNN
indexes, an optional ANN index, the catalogue images and the model's chip mapping) and answers
a query (an uploaded image file or a catalogue id) with its nearest items and the query's chip
estimate. Its methods are called from worker threads, several at a time: the engine releases
the GIL, each query runs the engine on ``engine_threads`` threads, and the searches of one
index are serialised by a lock (hnswlib's search sets the index's beam width).

An uploaded file is sniffed with Pillow before it is decoded: a file that is not an image of
:data:`FORMATS` is refused (415), one larger than ``max_pixels`` too (413), and one that does
not decode is a 422; every refusal is an :class:`UploadError` with its HTTP status and a message
that names the file.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence

import numpy as np

from .. import __version__, _checks
from ..chip import Loihi1, Mapping, estimate_energy, map_network, run_chip
from ..convert import ConvertedModel
from ..data import ImageOptions, read_image
from ..embed import IndexMeta, embed
from ..errors import ConfigError, DataError, IndexMismatchError, ResourceError
from ..retrieval import NO_LABEL, SearchResult, VectorStore, open_index
from ..settings import RunSettings
from .catalogue import Catalogue
from .records import (
    ChipEstimate,
    Health,
    IndexInfo,
    LayerActivity,
    Limits,
    ModelInfo,
    Neighbour,
    Neighbours,
    QueryInfo,
    SearchOptions,
    SearchResponse,
    ServiceInfo,
    Timing,
)

__all__ = [
    "DEFAULT_K",
    "FORMATS",
    "MAX_K",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "SearchService",
    "UploadError",
    "chip_estimate",
    "decode_upload",
    "png_bytes",
]

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")
"""Image formats an upload may have (Pillow's names; ``PPM`` includes PGM and PBM)."""
MAX_UPLOAD_BYTES = 10 << 20
"""Default size limit of an uploaded file (10 MiB)."""
MAX_PIXELS = 40_000_000
"""Default limit of an uploaded image's width x height (40 megapixels)."""
MAX_K = 100
"""Most neighbours a search returns."""
DEFAULT_K = 10
"""Neighbours returned when a search does not say."""
CHIP_NAME = "Loihi 1"
"""The chip profile of the estimates."""


class UploadError(DataError):
    """An uploaded file the service refuses, with the HTTP status that says why.

    Attributes:
        status: 413 (too large), 415 (not an image of :data:`FORMATS`) or 422 (does not
            decode, or is empty).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 ``[C, H, W]`` image (C = 1 or 3) as PNG file bytes."""
    from PIL import Image

    a = image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def decode_upload(
    data: bytes,
    shape: Sequence[int],
    *,
    filename: str | None = None,
    options: ImageOptions | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode an uploaded image file into the model's input, uint8 ``[C, H, W]`` of ``shape``,
    as :func:`snnfast.data.read_image` does a file on disk.

    Raises:
        UploadError: empty (422), not an image of :data:`FORMATS` (415), more than
            ``max_pixels`` pixels (413), or it does not decode (422); the message names it.
    """
    from PIL import Image

    name = repr(filename) if filename else "the uploaded file"
    if not data:
        raise UploadError(f"{name} is empty", 422)
    accepted = ", ".join(FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                fmt, (width, height) = img.format, img.size
    except Image.DecompressionBombError as exc:
        raise UploadError(f"{name} is too large an image: {exc}", 413) from exc
    except Exception as exc:  # Pillow's header parsers raise many kinds
        raise UploadError(f"{name} is not an image (accepted formats: {accepted})", 415) from exc
    if fmt not in FORMATS:
        raise UploadError(f"{name} is a {fmt} image; accepted formats: {accepted}", 415)
    if width * height > max_pixels:
        raise UploadError(
            f"{name} is {width} x {height} pixels, more than the limit of {max_pixels:,} pixels",
            413,
        )
    # read_image reads files; a temporary file (not a folder: removing one costs milliseconds)
    with tempfile.NamedTemporaryFile(prefix="snnfast-upload-", suffix=f".{fmt.lower()}") as fh:
        fh.write(data)
        fh.flush()
        try:
            return read_image(fh.name, shape, options)
        except DataError as exc:
            raise UploadError(str(exc).replace(fh.name, name), 422) from exc


def chip_estimate(
    model: ConvertedModel, mapping: Mapping, image: np.ndarray, settings: RunSettings, chip: str
) -> ChipEstimate:
    """What one image would cost on the chip ``mapping`` places the model on.

    The service's one call into :mod:`snnfast.chip`: the image runs counted on the mapping's
    cores (:func:`snnfast.chip.run_chip`, every layer recorded) and
    :func:`snnfast.chip.estimate_energy` reads the counts. Spike and synaptic-event counts are
    the engine's own.
    """
    net = model.network
    counted = run_chip(mapping, image[None], settings)
    result = counted.result
    report = estimate_energy(counted)
    spikes = result.spikes_per_layer()[0]
    synops = result.synops[0]
    layers = tuple(
        LayerActivity(name=name, neurons=int(size), spikes=int(s), synops=int(o))
        for name, size, s, o in zip(model.layer_names, net.sizes, spikes, synops)
    )
    return ChipEstimate(
        chip=chip,
        timesteps=settings.timesteps,
        steps=int(result.steps[0]),
        n_cores=report.n_cores,
        n_chips=report.n_chips,
        layers=layers,
        spikes=int(spikes.sum()),
        synops=int(synops.sum()),
        latency_s=report.latency_s,
        dynamic_energy_j=report.dynamic_energy_j,
        static_energy_j=report.static_energy_j,
        total_energy_j=report.total_energy_j,
    )


def _info(store: VectorStore) -> IndexInfo:
    m = store.meta
    return IndexInfo(m.readout, m.timesteps, m.dim, store.backend, len(store))


class SearchService:
    """Queries against a converted model's indexes (see the module docstring).

    Make one with :meth:`open` (files) or the constructor (objects).

    Args:
        model: the converted model the indexes were built with.
        indexes: SNN indexes (readouts other than ``"ann"``), each of a different readout or
            number of time steps; the first is the default.
        ann_index: an index of the ``"ann"`` readout, shown beside, or ``None``.
        catalogue: the catalogue images, or ``None`` (found through the first index's paths
            where it keeps them).
        options: how uploaded images are fitted to the model's input.
        engine_threads: engine threads per query (default 1: queries run side by side).
        max_upload_bytes, max_pixels: upload limits.
        chip: the chip profile of the estimates (default :class:`~snnfast.chip.Loihi1`).
        names: how the indexes are called in messages (default ``"index 0"``, ...).

    Raises:
        IndexMismatchError: an index built with another model, an SNN index given as the ANN
            one or the other way round, or catalogue images that are not the indexes'.
        ConfigError: no index, two indexes of the same readout and time steps, bad limits.
    """

    def __init__(
        self,
        model: ConvertedModel,
        indexes: Sequence[VectorStore],
        *,
        ann_index: VectorStore | None = None,
        catalogue: Catalogue | None = None,
        options: ImageOptions | None = None,
        engine_threads: int = 1,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_pixels: int = MAX_PIXELS,
        chip: Loihi1 | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.model_id = model.model_id()
        names = list(names) if names is not None else [f"index {i}" for i in range(len(indexes))]
        if not indexes:
            raise ConfigError("a search service needs at least one SNN index")
        seen: dict[tuple[str, int], str] = {}
        for store, name in zip(indexes, names):
            self._check_model(store.meta, name)
            if store.meta.readout == "ann":
                raise IndexMismatchError(
                    f"{name} holds ANN embeddings: give it as the ANN index (--ann-index)"
                )
            key = (store.meta.readout, store.meta.timesteps)
            if key in seen:
                raise ConfigError(
                    f"{name} and {seen[key]} both hold readout {key[0]!r} at T = {key[1]}"
                )
            seen[key] = name
        if ann_index is not None:
            self._check_model(ann_index.meta, "the ANN index")
            if ann_index.meta.readout != "ann":
                raise IndexMismatchError(
                    f"the ANN index holds readout {ann_index.meta.readout!r}, not 'ann': give "
                    "it as an SNN index (--index)"
                )
        self.indexes = tuple(indexes)
        self.ann_index = ann_index
        shape = tuple(int(s) for s in model.network.input_shape)
        assert len(shape) == 3
        self.input_shape: tuple[int, int, int] = (shape[0], shape[1], shape[2])
        self.options = options or ImageOptions()
        if catalogue is None:
            catalogue = Catalogue.from_index(self.indexes[0], self.input_shape, options=options)
        if catalogue is not None:
            for store, name in zip(self.indexes, names):
                catalogue.check_against(store, name)
            if ann_index is not None:
                catalogue.check_against(ann_index, "the ANN index")
        self.catalogue = catalogue
        self.engine_threads = _checks.positive_int(engine_threads, "engine_threads")
        self.limits = Limits(
            max_upload_bytes=_checks.positive_int(max_upload_bytes, "max_upload_bytes"),
            max_pixels=_checks.positive_int(max_pixels, "max_pixels"),
            max_k=min(MAX_K, *(len(s) for s in self._all_indexes())),
            formats=FORMATS,
        )
        self.chip = chip or Loihi1()
        self.notes: list[str] = []
        self.mapping: Mapping | None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # kept in mapping.notes
                self.mapping = map_network(model.network, self.chip)
            self.notes += list(self.mapping.notes)
        except ResourceError as exc:
            self.mapping = None
            self.notes.append(f"no chip estimates: the network does not fit {CHIP_NAME} ({exc})")
        self._locks = {id(s): threading.Lock() for s in self._all_indexes()}
        self._count_lock = threading.Lock()
        self.searches = 0
        self.started = time.monotonic()

    def _check_model(self, meta: IndexMeta, name: str) -> None:
        if meta.model_id != self.model_id:
            raise IndexMismatchError(
                f"{name} was built with model_id {meta.model_id!r} but the model is "
                f"{self.model_id!r}: build the index with this model"
            )

    def _all_indexes(self) -> list[VectorStore]:
        return [*self.indexes, *([self.ann_index] if self.ann_index is not None else [])]

    @classmethod
    def open(
        cls,
        model: str | os.PathLike[str],
        indexes: Sequence[str | os.PathLike[str]],
        *,
        ann_index: str | os.PathLike[str] | None = None,
        images: str | os.PathLike[str] | None = None,
        labels: str | os.PathLike[str] | None = None,
        class_names: Sequence[str] | None = None,
        options: ImageOptions | None = None,
        engine_threads: int = 1,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_pixels: int = MAX_PIXELS,
    ) -> SearchService:
        """Load the model, the indexes and the catalogue images from their files.

        ``images`` is the source the indexes were built from, ``labels`` its labels (a
        ``.npy`` source) and ``class_names`` their names (see :meth:`Catalogue.open`); the
        other arguments are the constructor's.

        Raises:
            ModelFormatError: a file that is missing, damaged or of another kind.
            DataError: missing catalogue images.
            IndexMismatchError, ConfigError: as the constructor says.
        """
        converted = ConvertedModel.load(model)
        stores = [open_index(p) for p in indexes]
        ann = None if ann_index is None else open_index(ann_index)
        c, h, w = (int(s) for s in converted.network.input_shape)
        catalogue = (
            None
            if images is None
            else Catalogue.open(
                images,
                (c, h, w),
                labels=labels,
                class_names=None if class_names is None else tuple(class_names),
                options=options,
            )
        )
        return cls(
            converted,
            stores,
            ann_index=ann,
            catalogue=catalogue,
            options=options,
            names=[str(p) for p in indexes],
            engine_threads=engine_threads,
            max_upload_bytes=max_upload_bytes,
            max_pixels=max_pixels,
        )

    # -- what it holds ----------------------------------------------------------------------

    def info(self) -> ServiceInfo:
        """What the service holds and accepts (``GET /info``)."""
        m = self.model
        net = m.network
        name = m.arch.spec if m.arch is not None else f"{len(m.graph.nodes)}-node graph"
        model = ModelInfo(
            model_id=self.model_id,
            name=name,
            input_shape=tuple(int(s) for s in net.input_shape),
            layers=tuple(m.layer_names),
            neurons=tuple(int(s) for s in net.sizes),
            v_init=float(m.config.v_init),
        )
        return ServiceInfo(
            version=__version__,
            model=model,
            indexes=tuple(_info(s) for s in self.indexes),
            limits=self.limits,
            default_k=min(DEFAULT_K, self.limits.max_k),
            ann_index=None if self.ann_index is None else _info(self.ann_index),
            items=None if self.catalogue is None else self.catalogue.info(),
            chip=None if self.mapping is None else CHIP_NAME,
            notes=tuple(self.notes),
        )

    def health(self) -> Health:
        """A short status (``GET /health``)."""
        return Health(
            status="ok",
            model_id=self.model_id,
            indexes=len(self.indexes),
            items=0 if self.catalogue is None else len(self.catalogue),
            uptime_s=time.monotonic() - self.started,
            searches=self.searches,
            process=os.getpid(),
        )

    def select(self, readout: str | None = None, timesteps: int | None = None) -> VectorStore:
        """The SNN index of ``readout`` and ``timesteps`` (either may be left out: the first
        index that matches the other; both: the default index).

        Raises:
            IndexMismatchError: no index matches; the message lists those there are.
        """
        if timesteps is not None:
            _checks.positive_int(timesteps, "T")
        for store in self.indexes:
            m = store.meta
            if (readout is None or m.readout == readout) and (
                timesteps is None or m.timesteps == timesteps
            ):
                return store
        asked = " and ".join(
            ([f"readout {readout!r}"] if readout is not None else [])
            + ([f"T = {timesteps}"] if timesteps is not None else [])
        )
        have = ", ".join(f"{s.meta.readout} at T = {s.meta.timesteps}" for s in self.indexes)
        raise IndexMismatchError(
            f"no index of this service was built with {asked}: the index fixes the readout and "
            f"T, and this service has {have}"
        )

    def item_image(self, item_id: int) -> np.ndarray:
        """A catalogue item as the model's input, uint8 ``[C, H, W]``.

        Raises:
            UnknownItem: no such item, or the service has no catalogue images.
        """
        from .catalogue import UnknownItem

        if self.catalogue is None:
            raise UnknownItem(
                "this service has no catalogue images: start it with --images SOURCE (the "
                "images the index was built from)"
            )
        return self.catalogue.image(_checks.integer(item_id, "id", 0))

    def item_png(self, item_id: int) -> bytes:
        """A catalogue item as PNG file bytes (``GET /items/{id}``)."""
        return png_bytes(self.item_image(item_id))

    # -- searches ---------------------------------------------------------------------------

    def search_upload(
        self, data: bytes, filename: str | None = None, options: SearchOptions | None = None
    ) -> SearchResponse:
        """Search with an uploaded image file (see :meth:`search`).

        Raises:
            UploadError: the file is refused (see :func:`decode_upload`).
        """
        t0 = time.perf_counter()
        opts = options or SearchOptions()
        self._check(opts)  # a bad k or T is refused before decoding
        image = decode_upload(
            data,
            self.input_shape,
            filename=filename,
            options=self.options,
            max_pixels=self.limits.max_pixels,
        )
        query = QueryInfo(source="upload", predicted=0, image="", filename=filename)
        return self.search(image, opts, query=query, decode_s=time.perf_counter() - t0)

    def search_item(self, item_id: int, options: SearchOptions | None = None) -> SearchResponse:
        """Search with a catalogue item (see :meth:`search`).

        Raises:
            UnknownItem: no such item, or no catalogue images.
        """
        t0 = time.perf_counter()
        opts = options or SearchOptions()
        self._check(opts)
        image = self.item_image(item_id)
        assert self.catalogue is not None
        label = self.catalogue.label(item_id)
        query = QueryInfo(
            source="item",
            predicted=0,
            image="",
            id=int(item_id),
            label=label,
            class_name=self.catalogue.class_name(label),
        )
        return self.search(image, opts, query=query, decode_s=time.perf_counter() - t0)

    def _check(self, opts: SearchOptions) -> tuple[VectorStore, int]:
        if not isinstance(opts, SearchOptions):
            raise ConfigError(f"options must be a SearchOptions, got {type(opts).__name__}")
        store = self.select(opts.readout, opts.timesteps)
        k = min(DEFAULT_K, self.limits.max_k) if opts.k is None else opts.k
        return store, _checks.integer(k, "k", 1, self.limits.max_k)

    def search(
        self,
        image: np.ndarray,
        options: SearchOptions | None = None,
        *,
        query: QueryInfo | None = None,
        decode_s: float = 0.0,
    ) -> SearchResponse:
        """The nearest items of ``image`` (uint8 ``[C, H, W]`` of the model's input).

        The SNN index is picked by ``options.readout`` and ``options.timesteps``
        (:meth:`select`) and the query is embedded as that index was; with ``options.ann`` the
        ANN index is searched too (when there is one), with ``options.chip`` the query's cost
        on the chip is estimated.

        Args:
            image: the query.
            options: the request's settings (default :class:`SearchOptions`).
            query: what is known of the query (its prediction and picture are filled in;
                default: an image of unknown source, ``source="image"``).
            decode_s: time spent reading the image, for :class:`Timing`.

        Raises:
            IndexMismatchError: no index of that readout and T.
            ConfigError: a bad ``k`` or ``T``.
        """
        t0 = time.perf_counter()
        opts = options or SearchOptions()
        store, k = self._check(opts)
        image = self.model.network.check_images(np.asarray(image)[None])[0]
        if query is None:
            query = QueryInfo(source="image", predicted=0, image="")
        meta = store.meta
        settings = self.model.settings.replace(
            timesteps=meta.timesteps, threads=self.engine_threads
        )
        batch = image[None]
        emb = embed(self.model, batch, meta.readout, settings)
        ann_emb = None
        if opts.ann and self.ann_index is not None:
            ann_emb = embed(self.model, batch, "ann")
        t1 = time.perf_counter()
        snn = self._neighbours(store, emb.vectors, k, emb.meta)
        ann_found = None
        if ann_emb is not None:
            assert self.ann_index is not None
            ann_found = self._neighbours(self.ann_index, ann_emb.vectors, k, ann_emb.meta)
        t2 = time.perf_counter()
        estimate = None
        if opts.chip and self.mapping is not None:
            estimate = chip_estimate(self.model, self.mapping, image, settings, CHIP_NAME)
        t3 = time.perf_counter()
        predicted = int(emb.predictions[0])
        cat = self.catalogue
        query = dataclasses.replace(
            query,
            predicted=predicted,
            predicted_name=None if cat is None else cat.class_name(predicted),
            image=_data_url(image),
        )
        with self._count_lock:
            self.searches += 1
        timing = Timing(
            decode_ms=decode_s * 1e3,
            embed_ms=(t1 - t0) * 1e3,
            search_ms=(t2 - t1) * 1e3,
            chip_ms=(t3 - t2) * 1e3,
            total_ms=(time.perf_counter() - t0 + decode_s) * 1e3,
        )
        return SearchResponse(
            query=query, k=k, snn=snn, timing=timing, ann=ann_found, chip=estimate
        )

    def _neighbours(
        self, store: VectorStore, vectors: np.ndarray, k: int, meta: IndexMeta
    ) -> Neighbours:
        with self._locks[id(store)]:
            found: SearchResult = store.search(vectors, k, meta)
        cat = self.catalogue
        items = []
        for j in range(found.ids.shape[1]):
            label = int(found.labels[0, j])
            lab = None if label == NO_LABEL else label
            path = None if found.paths is None else (str(found.paths[0, j]) or None)
            items.append(
                Neighbour(
                    id=int(found.ids[0, j]),
                    distance=float(found.distances[0, j]),
                    label=lab,
                    class_name=None if cat is None else cat.class_name(lab),
                    path=path,
                )
            )
        return Neighbours(readout=meta.readout, timesteps=meta.timesteps, items=tuple(items))
