"""The commands ``snnfast embed``, ``index``, ``search`` and ``embed-catalog``.

:func:`add_commands` adds their parsers to the ``snnfast`` command line (:mod:`snnfast.cli`);
each command's function takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, IndexMismatchError, ModelFormatError

__all__ = ["add_commands", "cmd_embed", "cmd_index", "cmd_search", "cmd_embed_catalog"]

_SPLITS = ("train", "test")


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}"


def _image_args(s: argparse.ArgumentParser) -> None:
    from ..data import FITS, RESAMPLING

    s.add_argument(
        "--labels", default=None, help="labels of a .npy source (a .npy file of integers)"
    )
    s.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="an image that cannot be decoded stops the run (raise) or is skipped with a warning",
    )
    s.add_argument(
        "--resample", choices=RESAMPLING, default="bilinear", help="Pillow resampling filter"
    )
    s.add_argument(
        "--fit",
        choices=FITS,
        default="stretch",
        help="fit another aspect ratio by stretching, cropping the centre or padding",
    )


def _run_args(s: argparse.ArgumentParser) -> None:
    from ..embed import READOUTS

    s.add_argument("--readout", choices=READOUTS, default="membrane", help="what is read out")
    s.add_argument("--timesteps", type=int, default=16, help="time steps of the simulation")
    s.add_argument("--threads", type=int, default=None, help="engine threads (default all cores)")


def _options(args: argparse.Namespace) -> Any:
    from ..data import ImageOptions

    return ImageOptions(resample=args.resample, fit=args.fit, on_error=args.on_error)


def _settings(model: Any, args: argparse.Namespace) -> Any:
    return model.settings.replace(timesteps=args.timesteps, threads=args.threads)


def _load_model(path: str) -> Any:
    from ..convert import ConvertedModel

    return ConvertedModel.load(path)


def _fashion(model: Any, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    from ..data import convert_array, load_fashion_mnist

    images, labels = load_fashion_mnist(split, limit=limit)
    return convert_array(images, model.network.input_shape), labels


def cmd_embed(args: argparse.Namespace) -> int:
    """``snnfast embed MODEL [SOURCE] --out FILE``."""
    from ..scale import embed_source

    source = args.source
    if source is not None and args.split is not None:
        raise ConfigError("give SOURCE or --split, not both")
    if source is None:
        source = args.split or "test"
    model = _load_model(args.converted)
    settings = _settings(model, args)
    if source in _SPLITS and not Path(source).exists():
        if args.labels is not None:
            raise ConfigError("--labels is for a .npy source; Fashion-MNIST has its own")
        images, labels = _fashion(model, source, args.limit)
        emb = embed_source(
            model, images, readout=args.readout, settings=settings, labels=labels,
            progress=not args.quiet,
        )  # fmt: skip
        what = f"{source} "
    else:
        emb = embed_source(
            model,
            source,
            readout=args.readout,
            settings=settings,
            options=_options(args),
            labels=args.labels,
            limit=args.limit,
            progress=not args.quiet,
        )
        what = ""
    emb.save(args.out)
    line = f"{len(emb)} {what}embeddings {emb.meta.dim}-d ({args.readout}, T={args.timesteps})"
    if emb.labels is not None:
        line += f", classification {_pct(float(np.mean(emb.predictions == emb.labels)))} %"
    print(f"{line} -> {args.out}")
    return 0


def _embeddings(path: str) -> Any:
    """An embeddings file, or a catalogue folder of ``snnfast embed-catalog``."""
    from ..embed import Embeddings
    from ..scale import PLAN, load_catalog

    p = Path(path)
    if p.is_dir() and (p / PLAN).is_file():
        return load_catalog(p)
    emb = Embeddings.load(p)
    if len(emb) == 0:
        raise ModelFormatError(f"{p} holds no embeddings")
    return emb


def cmd_index(args: argparse.Namespace) -> int:
    """``snnfast index EMBEDDINGS --out INDEX [--backend hnswlib|lancedb]``."""
    from .stores import build_index

    emb = _embeddings(args.embeddings)
    if args.backend == "lancedb":
        params: dict[str, Any] = {
            k: getattr(args, k)
            for k in ("num_partitions", "num_sub_vectors", "nprobes", "refine_factor")
            if getattr(args, k) is not None
        }
    else:
        params = {k: getattr(args, k) for k in ("M", "ef_construction", "ef")}
        params["threads"] = args.threads
    store = build_index(
        emb.vectors,
        emb.labels,
        emb.meta,
        backend=args.backend,
        path=args.out,
        ids=emb.ids,
        paths=emb.paths,
        **params,
    )
    m = emb.meta
    print(
        f"{args.backend} index of {len(store)} vectors ({m.readout}, T={m.timesteps}) -> {args.out}"
    )
    return 0


def _queries(args: argparse.Namespace, meta: Any) -> tuple[Any, np.ndarray, list[str]]:
    """The query embeddings, the rows asked for, and a name for each."""
    from .. import _container
    from ..scale import embed_source

    p = Path(args.query)
    sniffed = _container.sniff(p) if p.is_file() else None
    if sniffed is not None and sniffed[0] == "embeddings":
        if args.model is not None:
            raise ConfigError(f"{p} is an embeddings file: it needs no --model")
        emb = _embeddings(str(p))
    elif p.is_dir() and (p / "catalog.npz").is_file():
        emb = _embeddings(str(p))
    else:
        if args.model is None:
            raise ConfigError(
                f"{p} is not an embeddings file: to search with images, give --model "
                "(the converted model the index was built with)"
            )
        model = _load_model(args.model)
        if model.model_id() != meta.model_id:
            raise IndexMismatchError(
                f"query model_id is {model.model_id()!r} but the index was built with model_id "
                f"{meta.model_id!r}"
            )
        settings = model.settings.replace(timesteps=max(1, meta.timesteps), threads=args.threads)
        emb = embed_source(
            model, p, readout=meta.readout, settings=settings, options=_options(args),
            labels=args.labels,
        )  # fmt: skip
    rows = np.asarray(args.ids if args.ids else range(min(5, len(emb))), dtype=np.int64)
    if rows.min() < 0 or rows.max() >= len(emb):
        raise ConfigError(f"query ids must be rows in [0, {len(emb) - 1}], got {rows.tolist()}")
    if emb.paths is not None:
        names = [str(emb.paths[r]) for r in rows]
    else:
        names = [str(int(r)) for r in rows]
    return emb, rows, names


def cmd_search(args: argparse.Namespace) -> int:
    """``snnfast search INDEX QUERY [-k K] [--model MODEL] [--ids ...]``."""
    from .stores import open_index

    index = open_index(args.index)
    emb, rows, names = _queries(args, index.meta)
    found = index.search(emb.vectors[rows], args.k, emb.meta)
    for q, row in enumerate(rows):
        hits = []
        for j in range(found.ids.shape[1]):
            hit = f"{found.ids[q, j]} (label {found.labels[q, j]}, d={found.distances[q, j]:.3f}"
            if found.paths is not None and found.paths[q, j]:
                hit += f", {found.paths[q, j]}"
            hits.append(hit + ")")
        label = "" if emb.labels is None else f" (label {emb.labels[row]})"
        print(f"query {names[q]}{label}: {', '.join(hits)}")
    return 0


def cmd_embed_catalog(args: argparse.Namespace) -> int:
    """``snnfast embed-catalog SOURCE --model MODEL --out DIR [--address ray://...]``."""
    from ..scale import embed_catalog

    model = _load_model(args.model)
    result = embed_catalog(
        args.source,
        model,
        args.out,
        readout=args.readout,
        settings=_settings(model, args),
        options=_options(args),
        labels=args.labels,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        workers=args.workers,
        address=args.address,
        progress=not args.quiet,
    )
    print(
        f"{result.embedded} images embedded into {result.shards_embedded} shard(s), "
        f"{result.shards_reused} shard(s) already done, in {result.seconds:.1f} s -> {args.out}"
    )
    return 0


def add_commands(sub: Any) -> None:
    """Add ``embed``, ``index``, ``search`` and ``embed-catalog`` to the subparsers ``sub``."""
    from .stores import BACKENDS

    s = sub.add_parser(
        "embed", help="embed Fashion-MNIST, an image folder or a .npy file with a converted model"
    )
    s.add_argument("converted", help="converted model file (snnfast convert)")
    s.add_argument(
        "source",
        nargs="?",
        default=None,
        help="train or test (Fashion-MNIST), an image folder (class subfolders give labels), "
        "an image file or a .npy file of uint8 [N, C, H, W] (default: test)",
    )
    s.add_argument("--split", choices=_SPLITS, default=None, help="the same as SOURCE train/test")
    s.add_argument("--limit", type=int, default=None, help="first N images only")
    _run_args(s)
    _image_args(s)
    s.add_argument("--out", required=True, help="embeddings file (.npz)")
    s.set_defaults(func=cmd_embed)

    s = sub.add_parser("index", help="build a vector index over embeddings (hnswlib or LanceDB)")
    s.add_argument("embeddings", help="embeddings file (snnfast embed) or catalogue folder")
    s.add_argument("--out", required=True, help="index file (hnswlib) or folder (lancedb)")
    s.add_argument("--backend", choices=BACKENDS, default="hnswlib", help="vector store")
    s.add_argument("--threads", type=int, default=None, help="hnswlib insertion threads")
    s.add_argument("--M", type=int, default=12, help="hnswlib graph degree")
    s.add_argument("--ef-construction", type=int, default=64, help="hnswlib build beam width")
    s.add_argument("--ef", type=int, default=128, help="hnswlib search beam width")
    s.add_argument("--num-partitions", type=int, default=None, help="LanceDB IVF lists")
    s.add_argument("--num-sub-vectors", type=int, default=None, help="LanceDB PQ sub-vectors")
    s.add_argument("--nprobes", type=int, default=None, help="LanceDB lists probed per query")
    s.add_argument(
        "--refine-factor", type=int, default=None, help="LanceDB re-ranks refine_factor * k"
    )
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="nearest neighbours of query embeddings or images")
    s.add_argument("index", help="index file or folder (snnfast index)")
    s.add_argument(
        "query",
        help="embeddings file, or an image file, image folder or .npy file (with --model)",
    )
    s.add_argument("--model", default=None, help="converted model to embed query images with")
    s.add_argument("--ids", type=int, nargs="*", help="query rows (default the first 5)")
    s.add_argument("-k", type=int, default=3, help="neighbours per query")
    s.add_argument("--threads", type=int, default=None, help="engine threads for query images")
    _image_args(s)
    s.set_defaults(func=cmd_search)

    s = sub.add_parser(
        "embed-catalog", help="embed an image catalogue on Ray into resumable shard files"
    )
    s.add_argument("source", help="image folder or .npy file")
    s.add_argument("--model", required=True, help="converted model file (snnfast convert)")
    s.add_argument("--out", required=True, help="catalogue folder (catalog.npz, shard-*.npz)")
    s.add_argument(
        "--address", default=None, help="Ray cluster (ray://host:10001); default a local Ray"
    )
    s.add_argument("--shard-size", type=int, default=10_000, help="images per shard file")
    s.add_argument("--batch-size", type=int, default=256, help="images per engine call")
    s.add_argument(
        "--workers", type=int, default=None, help="Ray workers (default CPUs // threads)"
    )
    _run_args(s)
    _image_args(s)
    s.set_defaults(func=cmd_embed_catalog)
