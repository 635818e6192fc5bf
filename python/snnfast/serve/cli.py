"""The command ``snnfast serve``: the search service and its web page.

:func:`add_commands` adds its parser to the ``snnfast`` command line (:mod:`snnfast.cli`);
:func:`cmd_serve` binds the address (``--port 0`` takes a free port), loads and checks
everything once, prints the URL and serves until it is interrupted; with ``--processes N`` the
bound socket is shared by N uvicorn worker processes (:func:`app_from_environment`), each of
which loads the service again.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from .. import _checks
from ..errors import ConfigError, DataError
from .app import INSTALL_HINT

__all__ = [
    "ARGS_ENV",
    "add_commands",
    "app_from_environment",
    "cmd_serve",
    "listen",
]

ARGS_ENV = "SNNFAST_SERVE_ARGS"
"""Where ``snnfast serve --processes N`` passes its arguments to its worker processes."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``port`` 0: a free one).

    Raises:
        ConfigError: a bad port, or the address cannot be bound (in use, not this machine's).
    """
    _checks.integer(port, "port", 0, 65535)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _uvicorn() -> Any:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise DataError(f"{INSTALL_HINT} ({exc.name} is missing)") from exc
    return uvicorn


def _service(args: argparse.Namespace) -> Any:
    """The search service the arguments describe, loaded."""
    from ..data import ImageOptions
    from .service import SearchService

    return SearchService.open(
        args.model,
        args.index,
        ann_index=args.ann_index,
        images=args.images,
        labels=args.labels,
        class_names=args.class_names,
        options=ImageOptions(resample=args.resample, fit=args.fit),
        engine_threads=args.engine_threads,
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        max_pixels=int(args.max_megapixels * 1e6),
    )


def _app(args: argparse.Namespace, service: Any) -> Any:
    from threadpoolctl import threadpool_limits

    from .app import create_app

    # Searches run side by side in the worker pool: one BLAS thread each (the ANN's matrix
    # products are small, and more threads only contend for the cores).
    threadpool_limits(1, "blas")
    return create_app(service, workers=args.workers, max_pending=args.max_pending)


def app_from_environment() -> Any:
    """The app of one worker process of ``snnfast serve --processes N`` (a uvicorn factory):
    the service the parent's arguments describe (``$SNNFAST_SERVE_ARGS``, JSON), loaded."""
    args = argparse.Namespace(**json.loads(os.environ[ARGS_ENV]))
    return _app(args, _service(args))


def cmd_serve(args: argparse.Namespace) -> int:
    """``snnfast serve --model MODEL --index INDEX [...]``."""
    uvicorn = _uvicorn()
    processes = _checks.positive_int(args.processes, "--processes")
    sock = listen(args.host, args.port)  # first: a port in use is said before any loading
    try:
        service = _service(args)  # every file is checked here, once, before serving
        info = service.info()
        items = "no catalogue images" if info.items is None else f"{info.items.count:,} images"
        indexes = ", ".join(f"{i.readout} T={i.timesteps} ({i.size:,})" for i in info.indexes)
        ann = "" if info.ann_index is None else f", ANN ({info.ann_index.size:,})"
        how = "" if processes == 1 else f"; {processes} processes"
        url = _url(sock)
        print(
            f"snnfast serve: {url} (model {info.model.name} {info.model.model_id}; indexes "
            f"{indexes}{ann}; {items}{how}; API docs at {url}docs)",
            flush=True,
        )
        for note in info.notes:
            print(f"snnfast serve: note: {note}", file=sys.stderr, flush=True)
        options = {
            "log_level": "warning",
            "access_log": args.access_log,
            "timeout_graceful_shutdown": 5,
        }
        if processes == 1:
            config = uvicorn.Config(_app(args, service), **options)
            uvicorn.Server(config).run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            del service  # each process loads its own
            settings = {k: v for k, v in vars(args).items() if k != "func"}
            os.environ[ARGS_ENV] = json.dumps(settings)
            config = uvicorn.Config(
                f"{__name__}:app_from_environment",
                factory=True,
                workers=processes,
                timeout_worker_healthcheck=60,
                **options,
            )
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    try:
        return _checks.number(value, "the value", 0.0, 1e6, lo_open=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(sub: Any) -> None:
    """Add ``serve`` to the subparsers ``sub``."""
    from ..data import FITS, RESAMPLING
    from .app import MAX_PENDING
    from .service import MAX_PIXELS, MAX_UPLOAD_BYTES

    s = sub.add_parser(
        "serve",
        help="a search service (JSON API) and web page over an index (needs snnfast[serve])",
        description="Serve searches of INDEX with MODEL over HTTP: a JSON API (POST /search, "
        "GET /items/{id}, /info, /health; OpenAPI docs at /docs) and a web page at /.",
    )
    s.add_argument("--model", required=True, help="converted model file the index was built with")
    s.add_argument(
        "--index",
        required=True,
        nargs="+",
        help="SNN index file(s) or folder(s) (snnfast index); several of different readouts or "
        "time steps can be chosen from per search; the first is the default",
    )
    s.add_argument(
        "--ann-index", default=None, help="an index of the ann readout, shown beside the SNN's"
    )
    s.add_argument(
        "--images",
        default=None,
        help="the images the index was built from, to show and to search by id: train or test "
        "(Fashion-MNIST), an image folder or a .npy file (default: the files an hnswlib index "
        "keeps the paths of)",
    )
    s.add_argument("--labels", default=None, help="labels of a .npy --images (a .npy file)")
    s.add_argument(
        "--class-names",
        nargs="+",
        default=None,
        help="names of the labels 0, 1, ... (default: an image folder's class subfolders, "
        "Fashion-MNIST's classes)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8000, help="port (0: a free one)")
    s.add_argument(
        "--workers", type=int, default=None, help="search worker threads (default all cores)"
    )
    s.add_argument(
        "--engine-threads", type=int, default=1, help="engine threads per search (default 1)"
    )
    s.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes, each with its own copy of the model and indexes and its own "
        "worker threads (default 1): the Python part of a search holds the GIL, so a process "
        "uses about one core",
    )
    s.add_argument(
        "--max-upload-mb",
        type=_megabytes,
        default=MAX_UPLOAD_BYTES / (1 << 20),
        help="largest image file accepted, MiB",
    )
    s.add_argument(
        "--max-megapixels",
        type=_megabytes,
        default=MAX_PIXELS / 1e6,
        help="largest image accepted, millions of pixels",
    )
    s.add_argument(
        "--max-pending",
        type=int,
        default=MAX_PENDING,
        help="searches that may wait for a worker before the service answers 503",
    )
    s.add_argument(
        "--resample", choices=RESAMPLING, default="bilinear", help="Pillow resampling filter"
    )
    s.add_argument(
        "--fit", choices=FITS, default="stretch", help="how another aspect ratio is fitted"
    )
    s.add_argument("--access-log", action="store_true", help="log every request")
    s.set_defaults(func=cmd_serve)
