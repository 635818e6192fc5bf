"""The ``snnfast`` command line: the pipeline's stages one by one, plus ``demo``.

``snnfast demo`` is the main job: the shipped 32-64-10 on Fashion-MNIST, converted with
Algorithm 1, embedded by the SNN, indexed with hnswlib, scored beside the paper's Table 2, with
the chip model's mapping and energy estimate, and a PNG of queries and their nearest images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._io import atomic_write
from .errors import ModelFormatError, SnnfastError

__all__ = ["main"]

# The paper's Table 2 (Liu et al. 2022): classification, top-1, top-3 accuracy in %.
PAPER_TABLE2 = {
    "ANN": (90.07, 87.49, 94.55),
    "SNN(16)": (85.05, 85.55, 93.56),
    "SNN(128)": (90.01, 86.58, 93.93),
}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:6.2f}"


def table2(results: Sequence[dict[str, Any]]) -> str:
    """Our metrics beside the paper's Table 2 (percent)."""
    lines = [
        f"{'model':<10}{'class.':>8}{'top-1':>8}{'top-3':>8}{'mAP@10':>8}{'recall@10':>10}   "
        f"paper: class. / top-1 / top-3",
    ]
    for r in results:
        paper = PAPER_TABLE2.get(r["name"])
        ref = " / ".join(f"{p:.2f}" for p in paper) if paper else "—"
        lines.append(
            f"{r['name']:<10}{_pct(r.get('classification')):>8}"
            f"{_pct(r.get('top1')):>8}{_pct(r.get('top3')):>8}"
            f"{_pct(r.get('map_at_10')):>8}{_pct(r.get('recall_at_10')):>10}   {ref}"
        )
    return "\n".join(lines)


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=2, default=float)


# -- subcommands ------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    fields = {
        k: getattr(args, k)
        for k in (
            "epochs",
            "seed",
            "batch_size",
            "lr",
            "weight_decay",
            "dropout",
            "threads",
            "limit",
            "qcfs_levels",
        )
        if getattr(args, k) is not None
    }
    if args.qcfs_input:
        fields["qcfs_input"] = True
    result = train(args.arch, progress=not args.quiet, **fields)
    result.save(args.out)
    meta = result.metadata()
    print(
        f"{args.arch}: train {_pct(meta['train_accuracy'])} %, val {_pct(meta['val_accuracy'])} %"
        f", test {_pct(meta['test_accuracy'])} % (best epoch {meta['best_epoch']}) -> {args.out}"
    )
    return 0


def _convert(args: argparse.Namespace):
    from . import qcfs
    from .convert import ConversionConfig, convert
    from .data import load_fashion_mnist
    from .pipeline import calibration_indices

    arch, state, spec, _ = qcfs.load(args.model)  # a QCFS model converts with its thresholds
    train_x, _ = load_fashion_mnist("train")
    calib = train_x[calibration_indices(len(train_x), args.calibration_size, args.seed)]
    config = ConversionConfig(
        rounding=args.rounding,
        v_init=args.v_init,
        threshold_balancing=args.threshold_balancing,
        balance_timesteps=args.balance_timesteps,
    )
    return convert(
        state,
        arch,
        calibration_images=calib,
        config=config,
        activation_scales=None if spec is None else spec.scales,
    )


def cmd_convert(args: argparse.Namespace) -> int:
    model = _convert(args)
    model.save(args.out)
    print(f"converted {model.arch}: thresholds {model.thresholds} -> {args.out}")
    return 0


def _load_converted(path: str):
    from .convert import ConvertedModel

    return ConvertedModel.load(path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import run_pipeline

    report = run_pipeline(
        args.model,
        timesteps=tuple(args.timesteps),
        readout=args.readout,
        n_train=args.n_train,
        n_test=args.n_test,
        threads=args.threads,
        progress=not args.quiet,
        delay=args.delay,
        v_init=args.v_init,
    )
    print(table2(report["results"]))
    if args.json:
        _write_json(Path(args.json), report)
    return 0


def cmd_chip(args: argparse.Namespace) -> int:
    from .chip import Loihi1
    from .data import load_fashion_mnist
    from .energy import compare_with_paper, estimate_network
    from .plots import core_map

    chip = Loihi1(soft_reset_compartments=args.compartments, max_chips=args.max_chips)
    try:
        model = _load_converted(args.model)
    except ModelFormatError:  # an ANN model file: convert it first
        model = _convert(args)
    images, _ = load_fashion_mnist("test", limit=args.n_images)
    reports = []
    mapping = None
    for T in args.timesteps:
        mapping, report = estimate_network(
            model.network,
            images,
            timesteps=T,
            threads=args.threads,
            chip=chip,
            **model.run_settings,
        )
        reports.append(report)
    assert mapping is not None
    print(mapping.report())
    for report in reports:
        print()
        print(report.report())
    if any(r.timesteps in (16, 128) for r in reports):
        print()
        print(compare_with_paper(reports))
    if args.png:
        core_map(mapping, args.png, title=f"{model.arch} on Loihi 1 cores")
        print(f"core map -> {args.png}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .data import load_fashion_mnist
    from .energy import compare_with_paper, estimate_network
    from .pipeline import run_pipeline
    from .plots import core_map

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = run_pipeline(
        None,
        timesteps=tuple(args.timesteps),
        n_train=args.n_train,
        n_test=args.n_test,
        threads=args.threads,
        progress=not args.quiet,
        grid_path=out / "queries.png",
    )
    print(
        f"\nFashion-MNIST retrieval, shipped {report['arch']} "
        f"({report['n_train']} corpus images, {report['n_test']} queries)"
    )
    print(table2(report["results"]))

    from . import ann
    from .convert import convert
    from .pipeline import calibration_indices

    arch, state, _ = ann.load_model(None)
    train_x, _ = load_fashion_mnist("train")
    model = convert(state, arch, calibration_images=train_x[calibration_indices(len(train_x))])
    test_x, _ = load_fashion_mnist("test", limit=200)
    energy = []
    mapping = None
    for T in args.timesteps:
        mapping, rep = estimate_network(model.network, test_x, timesteps=T, threads=args.threads)
        energy.append(rep)
    assert mapping is not None
    print("\nLoihi 1 chip model (200 test images):")
    print(mapping.report())
    if any(r.timesteps in (16, 128) for r in energy):
        print(compare_with_paper(energy))
    core_map(mapping, out / "core_map.png", title=f"{arch} on Loihi 1 cores")
    report["chip"] = {
        "n_cores": mapping.n_cores,
        "n_chips": mapping.n_chips,
        "cores_per_layer": mapping.cores_per_layer,
        "energy": [
            {
                "timesteps": r.timesteps,
                "latency_s": r.latency_s,
                "dynamic_energy_j": r.dynamic_energy_j,
                "total_energy_j": r.total_energy_j,
            }
            for r in energy
        ],
    }
    _write_json(out / "demo.json", report)
    print(
        f"\nwrote {out / 'demo.json'}, {out / 'queries.png'}, {out / 'core_map.png'} "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return 0


def cmd_lowlatency(args: argparse.Namespace) -> int:
    from .lowlatency import lowlatency_report
    from .qcfs import SHIPPED_MODELS

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
    command = " ".join(parts)
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
        command=command,
    )
    print(f"report -> {Path(args.outdir) / 'lowlatency.md'}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    path = reproduce(args.outdir, quick=args.quick, progress=not args.quiet, jobs=args.jobs)
    print(f"report -> {path}")
    return 0


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snnfast`` command."""
    p = argparse.ArgumentParser(prog="snnfast", description=__doc__.split("\n")[0])
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("train", help="train a Table-1 CNN with PyTorch (needs snnfast[train])")
    s.add_argument("arch", help="architecture, e.g. 32-64-10")
    s.add_argument("--out", required=True, help="model file (.npz)")
    s.add_argument("--epochs", type=int, default=None, help="default: the shipped recipe's")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--weight-decay", type=float, default=None)
    s.add_argument("--dropout", type=float, default=None)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--limit", type=int, default=None, help="first N images only (quick runs)")
    s.add_argument(
        "--qcfs-levels",
        type=int,
        default=None,
        help="train with the QCFS activation of L levels instead of ReLU",
    )
    s.add_argument(
        "--qcfs-input",
        action="store_true",
        help="with --qcfs-levels, quantise the input to L levels too",
    )
    s.set_defaults(func=cmd_train)

    def conversion_args(s: argparse.ArgumentParser) -> None:
        s.add_argument("--calibration-size", type=int, default=1000)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--rounding", choices=["truncate", "round"], default="truncate")
        s.add_argument(
            "--v-init",
            type=float,
            default=0.0,
            help="initial potential / threshold the model is meant to run with",
        )
        s.add_argument(
            "--threshold-balancing",
            choices=["none", "spike-norm", "mse"],
            default="none",
            help="set thresholds on the SNN itself",
        )
        s.add_argument(
            "--balance-timesteps",
            type=int,
            default=8,
            help="time steps of the threshold-balancing runs",
        )

    s = sub.add_parser("convert", help="convert an ANN model file with Algorithm 1")
    s.add_argument("model", help="ANN model file (snnfast train)")
    s.add_argument("--out", required=True, help="converted model file (.npz)")
    conversion_args(s)
    s.set_defaults(func=cmd_convert)

    from .retrieval.cli import add_commands

    add_commands(sub)  # embed, index, search, embed-catalog

    s = sub.add_parser("evaluate", help="the paper's Table 2 on Fashion-MNIST")
    s.add_argument("--model", default=None, help="ANN model file (default the shipped one)")
    s.add_argument("--timesteps", type=int, nargs="+", default=[16, 128])
    s.add_argument(
        "--readout", choices=["membrane", "spike_count", "integrated"], default="membrane"
    )
    s.add_argument("--n-train", type=int, default=None)
    s.add_argument("--n-test", type=int, default=None)
    s.add_argument("--delay", type=int, default=0)
    s.add_argument("--v-init", type=float, default=0.0)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--json", default=None, help="also write the figures to this JSON file")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("chip", help="map a model onto Loihi 1 cores and estimate its energy")
    s.add_argument("model", help="converted model file, or an ANN model file to convert")
    s.add_argument("--timesteps", type=int, nargs="+", default=[16, 128])
    s.add_argument("--n-images", type=int, default=200)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--png", default=None, help="write the core map (the paper's Fig 3)")
    s.add_argument("--max-chips", type=int, default=1, help="refuse mappings over this")
    s.add_argument(
        "--compartments",
        type=int,
        choices=[1, 2],
        default=2,
        help="compartments per neuron (2: Loihi 1's soft reset, as NxTF builds it)",
    )
    conversion_args(s)
    s.set_defaults(func=cmd_chip)

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
    s.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16])
    s.add_argument("--n-train", type=int, default=None)
    s.add_argument("--n-test", type=int, default=None)
    s.add_argument("--energy-images", type=int, default=2000)
    s.add_argument("--threads", type=int, default=None)
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
        type=int,
        default=1,
        help="train the missing networks in N processes at once, one thread each "
        "(same weights as 1; default 1)",
    )
    s.set_defaults(func=cmd_reproduce)

    s = sub.add_parser("demo", help="the main job: the shipped model end to end")
    s.add_argument("--out", default="runs/demo", help="output folder")
    s.add_argument("--timesteps", type=int, nargs="+", default=[16])
    s.add_argument("--n-train", type=int, default=None)
    s.add_argument("--n-test", type=int, default=None)
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``snnfast`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # The chip model's warnings are printed in its mapping report: not twice.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"snnfast\.")
            return int(args.func(args))
    except SnnfastError as exc:
        print(f"snnfast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snnfast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
