"""The study's commands, ``snnfast lowlatency`` and ``snnfast reproduce`` (registered by
:mod:`snnfast.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "cmd_lowlatency", "cmd_reproduce"]


def cmd_lowlatency(args: argparse.Namespace) -> int:
    """``snnfast lowlatency``: the low-latency variants compared."""
    from ..qcfs import SHIPPED_MODELS
    from .lowlatency import lowlatency_report

    if args.qcfs_model is None:
        models = [str(p) for p in SHIPPED_MODELS.values() if p.is_file()]
    else:
        models = args.qcfs_model
    parts = [
        "snnfast",
        "lowlatency",
        args.outdir,
        "--qcfs-model",
        *models,
        "--timesteps",
        *map(str, args.timesteps),
        "--energy-images",
        str(args.energy_images),
    ]
    for flag, value in (
        ("--base-model", args.base_model),
        ("--n-train", args.n_train),
        ("--n-test", args.n_test),
        ("--threads", args.threads),
    ):
        if value is not None:
            parts += [flag, str(value)]
    lowlatency_report(
        args.outdir,
        timesteps=args.timesteps,
        qcfs_models=models,
        base_model=args.base_model,
        n_train=args.n_train,
        n_test=args.n_test,
        energy_images=args.energy_images,
        threads=args.threads,
        progress=not args.quiet,
        command=" ".join(parts),
    )
    print(f"report -> {Path(args.outdir) / 'lowlatency.md'}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``snnfast reproduce``: the paper's tables and figures beside ours."""
    from .reproduce import reproduce

    path = reproduce(args.outdir, quick=args.quick, progress=not args.quiet, jobs=args.jobs)
    print(f"report -> {path}")
    return 0


def add_commands(sub: Any, positive: Any) -> None:
    """Add the study's subcommands to the ``snnfast`` parser's subparsers ``sub``;
    ``positive`` is the argument type of positive integers."""
    s = sub.add_parser("lowlatency", help="low-latency variants at few time steps, compared")
    s.add_argument("outdir", help="report folder (lowlatency.md, lowlatency.json)")
    s.add_argument(
        "--qcfs-model",
        nargs="*",
        default=None,
        help="QCFS-trained model files (default: the shipped ones)",
    )
    s.add_argument(
        "--base-model",
        default=None,
        help="ReLU ANN of the conversion variants (default: the shipped one)",
    )
    s.add_argument(
        "--timesteps", type=positive, nargs="+", default=[4, 8, 16], help="time steps to run"
    )
    s.add_argument("--n-train", type=positive, default=None, help="first N corpus images only")
    s.add_argument("--n-test", type=positive, default=None, help="first N query images only")
    s.add_argument(
        "--energy-images",
        type=positive,
        default=2000,
        help="test images of the Loihi energy estimate",
    )
    s.add_argument("--threads", type=positive, default=None, help="default all cores")
    s.set_defaults(func=cmd_lowlatency)

    s = sub.add_parser("reproduce", help="the paper's tables and figures beside ours")
    s.add_argument("outdir", help="report folder (report.md, PNGs; cache/ makes reruns resume)")
    s.add_argument(
        "--quick",
        action="store_true",
        help="a cut-down run (under 10 minutes on 2 cores); the report says what was cut",
    )
    s.add_argument(
        "--jobs",
        type=positive,
        default=1,
        help="train the missing networks in N processes at once, one thread each "
        "(same weights as 1; default 1)",
    )
    s.set_defaults(func=cmd_reproduce)
