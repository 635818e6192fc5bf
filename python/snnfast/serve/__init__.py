"""A search service over an index: ``snnfast serve`` (the ``serve`` extra: FastAPI, uvicorn).

- :class:`SearchService` (:mod:`~snnfast.serve.service`): the model, the indexes, the catalogue
  images and the chip mapping, loaded once; answers a query image or catalogue id with its
  nearest items (SNN, and ANN beside when an ANN index is loaded) and the query's chip estimate.
- :func:`create_app` (:mod:`~snnfast.serve.app`): the FastAPI app: ``POST /search``,
  ``GET /items/{id}``, ``GET /info``, ``GET /health``, OpenAPI docs at ``/docs``, and the web page
  at ``/`` (``static/``: plain HTML, JavaScript and CSS).
- :mod:`~snnfast.serve.records`: what the service answers, as typed records.
- :class:`Catalogue` (:mod:`~snnfast.serve.catalogue`): catalogue images by id.

Only :func:`create_app` and the command need FastAPI; the rest runs with snnfast's own
dependencies. See ``docs/serve.md``.
"""

from __future__ import annotations

from .app import create_app
from .catalogue import Catalogue, UnknownItem
from .records import (
    ChipEstimate,
    Health,
    LayerActivity,
    Neighbour,
    Neighbours,
    QueryInfo,
    SearchOptions,
    SearchResponse,
    ServiceInfo,
)
from .service import SearchService, UploadError, chip_estimate, decode_upload

__all__ = [
    "Catalogue",
    "ChipEstimate",
    "Health",
    "LayerActivity",
    "Neighbour",
    "Neighbours",
    "QueryInfo",
    "SearchOptions",
    "SearchResponse",
    "SearchService",
    "ServiceInfo",
    "UnknownItem",
    "UploadError",
    "chip_estimate",
    "create_app",
    "decode_upload",
]
