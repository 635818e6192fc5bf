"""The web application of ``snnfast serve``: a FastAPI app around a :class:`SearchService`.

Routes (the OpenAPI document is at ``/openapi.json``, its pages at ``/docs`` and ``/redoc``):

- ``POST /search``: a multipart form with ``image`` (an image file) or ``id`` (a catalogue id),
  and optional ``k``, ``readout``, ``T``, ``ann`` and ``chip``; answers a
  :class:`~snnfast.serve.records.SearchResponse`.
- ``GET /items/{id}``: a catalogue image as PNG (as the model sees it).
- ``GET /info``: a :class:`~snnfast.serve.records.ServiceInfo`; ``GET /health``: a
  :class:`~snnfast.serve.records.Health`.
- ``GET /``: the web page (``static/``: HTML, JavaScript and CSS, no build step, nothing
  fetched from elsewhere).

Searches run in a pool of worker threads, never on the event loop, so requests do not wait for
each other beyond the pool's size; at most ``max_pending`` wait for a worker (then 503). Every
refused request is a 4xx with ``{"detail": message}``: 400 (neither or both of image and id),
404 (unknown item), 413 (too large a body or image), 415 (not an image), 422 (a bad value: k,
T, a readout no index has, an image that does not decode). An unexpected error is a 500 that
says only its kind; its traceback goes to the server's log.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions'
# annotations (``Annotated[UploadFile | None, File()]``) as objects, and their names are local.
import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from .. import _checks
from ..errors import DataError, MemoryLimitError, SnnfastError
from .catalogue import UnknownItem
from .records import Health, SearchOptions, SearchResponse, ServiceInfo
from .service import SearchService, UploadError

__all__ = ["DRAIN_FACTOR", "FORM_OVERHEAD", "INSTALL_HINT", "MAX_PENDING", "STATIC", "create_app"]

INSTALL_HINT = "snnfast serve needs the serve extra: pip install 'snnfast[serve]'"
STATIC = Path(__file__).resolve().parent / "static"
"""The web page's files (package data)."""
FORM_OVERHEAD = 64 << 10
"""Bytes a search form may hold beside its image file (field names, boundaries, values)."""
DRAIN_FACTOR = 4
"""A body too large is read to its end (and thrown away) up to this many times the limit, so
that the client reads the 413; a longer one has its connection closed."""
MAX_PENDING = 256
"""Default number of searches that may wait for a worker before the service answers 503."""

_log = logging.getLogger("snnfast.serve")
_LOCATIONS = ("body", "query", "path", "header")
T = TypeVar("T")


class _BodyLimit:
    """ASGI middleware: a POST body over ``max_bytes`` is refused with 413 and a JSON message.

    The refusal comes once the body has been read (and thrown away), so that a client that
    sends its whole body before it reads the answer gets the message rather than a broken
    connection; a body longer than ``drain_bytes`` is not read on: the connection is closed.
    A body whose ``Content-Length`` is over the limit is refused without going further; one
    streamed without it, as soon as it passes the limit (the route's error handler answers).
    """

    def __init__(self, app: Any, max_bytes: int, drain_bytes: int, message: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes
        self.message = message

    async def _drain(self, receive: Any, seen: int) -> None:
        more = True
        while more and seen <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            more = message.get("more_body", False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse

        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            if int(length) <= self.drain_bytes:
                await self._drain(receive, 0)
            response = JSONResponse({"detail": self.message}, status_code=413)
            await response(scope, receive, send)
            return
        total = 0

        async def limited() -> Any:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.max_bytes:
                    if message.get("more_body", False):
                        await self._drain(receive, total)
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, limited, send)


def _status(exc: SnnfastError) -> int:
    if isinstance(exc, UploadError):
        return exc.status
    if isinstance(exc, UnknownItem):
        return 404
    if isinstance(exc, MemoryLimitError):
        return 413
    return 422


def create_app(
    service: SearchService, *, workers: int | None = None, max_pending: int = MAX_PENDING
) -> Any:
    """The FastAPI application serving ``service``.

    Args:
        service: what answers the searches.
        workers: worker threads of the search pool (default all cores,
            :func:`snnfast._checks.all_cores`).
        max_pending: searches that may wait for a worker; more are answered 503.

    Raises:
        DataError: FastAPI is not installed (the ``serve`` extra).
    """
    try:
        from fastapi import FastAPI, File, Form, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, JSONResponse, Response
        from fastapi.staticfiles import StaticFiles
        from starlette.exceptions import HTTPException
    except ImportError as exc:
        raise DataError(f"{INSTALL_HINT} ({exc.name} is missing)") from exc

    n_workers = _checks.threads(workers, where="create_app")
    max_pending = _checks.positive_int(max_pending, "max_pending", where="create_app")
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="snnfast-search")
    pending = 0
    pending_lock = threading.Lock()
    limit = service.limits.max_upload_bytes

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(
        title="snnfast search",
        version=service.info().version,
        summary="Content-based image retrieval with an integer spiking neural network",
        description=(
            "Search a catalogue with an image: the query is embedded by the spiking network "
            "the index was built with (and by its ANN, when an ANN index is loaded), its "
            "nearest items are returned with their distances, labels and paths, and the cost "
            "of the query on a Loihi 1 chip is estimated from the engine's exact event counts."
        ),
        lifespan=lifespan,
    )

    async def in_pool(fn: Callable[[], T]) -> T:
        nonlocal pending
        with pending_lock:
            if pending >= max_pending:
                raise HTTPException(503, f"the service is busy ({pending} searches waiting)")
            pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        finally:
            with pending_lock:
                pending -= 1

    @app.exception_handler(SnnfastError)
    async def snnfast_error(_: Request, exc: SnnfastError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=_status(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Any:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in _LOCATIONS)
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg"))
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    app.add_middleware(
        _BodyLimit,
        max_bytes=limit + FORM_OVERHEAD,
        drain_bytes=DRAIN_FACTOR * (limit + FORM_OVERHEAD),
        message=f"the request is larger than the limit of {limit + FORM_OVERHEAD:,} bytes "
        f"(an image file may have {limit:,} bytes)",
    )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Any:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Any:
        _log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the service's log"},
            status_code=500,
        )

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health", response_model=Health, summary="Whether the service is up")
    async def health() -> Any:
        return JSONResponse(service.health().to_json())

    info_json = service.info().to_json()

    @app.get("/info", response_model=ServiceInfo, summary="What the service holds and accepts")
    async def info() -> Any:
        return JSONResponse(info_json)

    @app.get(
        "/items/{item_id}",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the image as PNG"}},
        summary="A catalogue image, as the model sees it",
    )
    async def item(item_id: int) -> Any:
        png = await in_pool(lambda: service.item_png(item_id))
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/search",
        response_model=SearchResponse,
        summary="The nearest catalogue items of an image or of a catalogue item",
    )
    async def search(
        image: Annotated[UploadFile | None, File(description="an image file")] = None,
        id: Annotated[int | None, Form(description="a catalogue id, instead of an image")] = None,
        k: Annotated[int | None, Form(description="neighbours (default 10)")] = None,
        readout: Annotated[
            str | None, Form(description="the SNN index's readout (default the first index's)")
        ] = None,
        T: Annotated[
            int | None, Form(description="the SNN index's time steps (the index fixes them)")
        ] = None,
        ann: Annotated[bool, Form(description="also search the ANN index")] = True,
        chip: Annotated[bool, Form(description="also estimate the chip cost")] = True,
    ) -> Any:
        if (image is None) == (id is None):
            raise HTTPException(
                400,
                "give either an image file (form field image) or a catalogue id (form field "
                "id), in a multipart or url-encoded form",
            )
        opts = SearchOptions(k=k, readout=readout, timesteps=T, ann=ann, chip=chip)
        if image is not None:
            data = await image.read(limit + 1)
            if len(data) > limit:
                raise UploadError(
                    f"{image.filename or 'the uploaded file'!r} is larger than the limit of "
                    f"{limit:,} bytes",
                    413,
                )
            name = image.filename
            result = await in_pool(lambda: service.search_upload(data, name, opts).to_json())
        else:
            assert id is not None
            item_id = id
            result = await in_pool(lambda: service.search_item(item_id, opts).to_json())
        return JSONResponse(result)

    return app
