"""The ``snnfast`` command line: the pipeline's stages one by one, plus ``demo``.

``snnfast demo`` is the main job: the shipped 32-64-10 on Fashion-MNIST, converted with
Algorithm 1, embedded by the SNN, indexed with hnswlib, scored beside the paper's Table 2, with
the chip model's mapping and energy estimate, and a PNG of queries and their nearest images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from . import _checks
from ._io import atomic_write
from .errors import ConfigError, ModelFormatError, SnnfastError
from .paper import cli as paper_cli

__all__ = ["main"]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:6.2f}"


def _positive(text: str) -> int:
    """Argument type of the counts: an integer >= 1 (one wording, :mod:`snnfast._checks`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    try:
        return _checks.positive_int(value, "the value")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed(text: str) -> int:
    """Argument type of seeds: an integer >= 0 (NumPy and torch refuse negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0 or value >= 2**63:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, 2**63), got {value}")
    return value


def _check_output(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse, before any work, an output file that cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {p} is a folder, not a file")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"{what} {p} cannot be written ({parent} is not a writable folder)")
    return p


def _check_folder(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse, before any work, an output folder that cannot be made or written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {p} is a file, not a folder")
    _check_output(p / "probe", what)
    return p


# Outputs each command writes (destination -> "file" or "folder"), checked before the work:
# the default is a file for --out, --json, --png; these write folders instead.
_FOLDER_OUTPUTS = {
    "demo": ("out",),
    "embed-catalog": ("out",),
    "lowlatency": ("outdir",),
    "reproduce": ("outdir",),
}


def _check_outputs(args: argparse.Namespace) -> None:
    folders = _FOLDER_OUTPUTS.get(args.command, ())
    if args.command == "index" and getattr(args, "backend", None) == "lancedb":
        folders = ("out",)
    for dest in ("out", "outdir", "json", "png"):
        value = getattr(args, dest, None)
        if not isinstance(value, str):
            continue
        positional = dest == "outdir" or args.command == "export-nir"
        flag = dest.upper() if positional else "--" + dest
        if dest in folders:
            _check_folder(value, flag)
        elif dest != "outdir":
            _check_output(value, flag)


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=2, default=float)


# -- subcommands ------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .ann import Architecture

    arch = Architecture.parse(args.arch)
    if arch.n_classes != 10:
        raise ConfigError(
            f"architecture {args.arch!r} has {arch.n_classes} outputs; Fashion-MNIST has 10 "
            "classes (the last number is the class count, e.g. 32-64-10)"
        )
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


def _calibration_fits(size: int, available: int) -> None:
    """Refuse a calibration sample larger than its pool (the library would take them all)."""
    if size > available:
        raise ConfigError(
            f"--calibration-size {size} is more than the {available} images to calibrate on"
        )


def _convert(args: argparse.Namespace):
    from .convert import ConversionConfig
    from .data import load_fashion_mnist
    from .evaluation import calibrate_and_convert

    train_x, _ = load_fashion_mnist("train")
    _calibration_fits(args.calibration_size, train_x.shape[0])
    config = ConversionConfig(
        rounding=args.rounding,
        v_init=args.v_init,
        threshold_balancing=args.threshold_balancing,
        balance_timesteps=args.balance_timesteps,
    )
    # the calibration rule of snnfast.evaluation; a QCFS model converts with its thresholds
    return calibrate_and_convert(
        args.model,
        train_x,
        calibration_size=args.calibration_size,
        seed=args.seed,
        config=config,
    )


def cmd_convert(args: argparse.Namespace) -> int:
    model = _convert(args)
    model.save(args.out)
    print(f"converted {model.arch}: thresholds {model.thresholds} -> {args.out}")
    return 0


def cmd_convert_torch(args: argparse.Namespace) -> int:
    from .convert import ConversionConfig
    from .data import ImageOptions, convert_array, load_fashion_mnist, load_images
    from .evaluation import calibration_images
    from .torch_graph import from_torch, load_torch_model

    _check_output(args.out, "--out")
    if (args.mean is None) != (args.std is None):
        raise ConfigError("give both --mean and --std, or neither")
    shape = tuple(args.input_shape)
    options = ImageOptions(fit=args.fit)
    if args.images is None:
        pool, _ = load_fashion_mnist("train")
    else:
        pool = load_images(args.images, shape, options=options).images
    _calibration_fits(args.calibration_size, pool.shape[0])
    pool = convert_array(calibration_images(pool, args.calibration_size, args.seed), shape, options)
    config = ConversionConfig(
        rounding=args.rounding,
        v_init=args.v_init,
        threshold_balancing=args.threshold_balancing,
        balance_timesteps=args.balance_timesteps,
    )
    model = load_torch_model(args.target, args.weights)
    normalize = None if args.mean is None else (args.mean, args.std)
    converted = from_torch(model, pool, config=config, normalize=normalize)
    converted.save(args.out)
    print(
        f"converted {args.target}: {converted.network.n_layers} spiking layers, thresholds "
        f"{converted.thresholds} -> {args.out}"
    )
    return 0


def _load_converted(path: str):
    from .convert import ConvertedModel

    return ConvertedModel.load(path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .paper.table2 import format_table2, run_pipeline

    if args.json:
        _check_output(args.json, "--json")
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
    print(format_table2(report.results))
    if args.json:
        _write_json(Path(args.json), report.to_json())
    return 0


def cmd_chip(args: argparse.Namespace) -> int:
    """Map the model on each profile's chip and estimate what an inference costs there."""
    import math

    from .chip import (
        PROFILES,
        ProfileReport,
        core_map,
        estimate_energy,
        map_network,
        run_chip_checkpoints,
    )
    from .data import ImageOptions, convert_array, load_fashion_mnist
    from .paper.hardware import compare_with_paper

    for path, what in ((args.png, "--png"), (args.json, "--json")):
        if path:
            _check_output(path, what)
    try:
        model = _load_converted(args.model)
    except ModelFormatError:  # an ANN model file: convert it first
        model = _convert(args)
    net = model.network
    images, _ = load_fashion_mnist("test", limit=args.n_images)
    if tuple(net.input_shape) != tuple(images.shape[1:]):
        images = convert_array(images, tuple(net.input_shape), ImageOptions(fit="center"))
    settings = model.settings.replace(threads=args.threads)
    name = model.arch or "the model"
    reports = []
    for profile_name in args.profile:
        changes: dict[str, Any] = {"max_chips": args.max_chips}
        if args.compartments is not None:
            changes["soft_reset_compartments"] = args.compartments
        profile = PROFILES[profile_name].replace(**changes)
        with warnings.catch_warnings():  # the mapping report prints its notes
            warnings.simplefilter("ignore", UserWarning)
            mapping = map_network(net, profile)
        print(f"== profile {profile.name}: {profile.description}")
        print(mapping.report())
        runs = run_chip_checkpoints(mapping, images, sorted(set(args.timesteps)), settings)
        energy = [estimate_energy(r) for r in runs]
        for rep in energy:
            print()
            print(rep.report())
        paper = [r for r in energy if r.timesteps in (16, 128) and math.isfinite(r.latency_s)]
        if paper:
            print()
            print(compare_with_paper(paper))
        print()
        reports.append(
            ProfileReport(profile.name, mapping.summary(), [r.summary() for r in energy])
        )
        if args.png and len(reports) == 1:
            core_map(mapping, args.png, title=f"{name} on {profile.resources.name} cores")
            print(f"core map -> {args.png}")
    if args.json:
        _write_json(
            Path(args.json), {"model": str(args.model), "profiles": [r.to_json() for r in reports]}
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The shipped model end to end; the network it scores is the network it costs."""
    from .chip import core_map, estimate_network
    from .data import load_fashion_mnist
    from .evaluation import calibrate_and_convert
    from .paper.hardware import compare_with_paper
    from .paper.records import ChipCost
    from .paper.table2 import format_table2, run_pipeline

    out = Path(args.out)
    _check_output(out / "demo.json", "--out")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_x, _ = load_fashion_mnist("train")
    model = calibrate_and_convert(None, train_x)
    report = run_pipeline(
        None,
        timesteps=tuple(args.timesteps),
        n_train=args.n_train,
        n_test=args.n_test,
        threads=args.threads,
        progress=not args.quiet,
        grid_path=out / "queries.png",
        converted=model,
    )
    print(
        f"\nFashion-MNIST retrieval, shipped {report.arch} "
        f"({report.n_train} corpus images, {report.n_test} queries)"
    )
    print(format_table2(report.results))

    test_x, _ = load_fashion_mnist("test", limit=200)
    energy = []
    mapping = None
    for T in args.timesteps:
        settings = model.settings.replace(timesteps=T, threads=args.threads)
        mapping, rep = estimate_network(model.network, test_x, settings)
        energy.append(rep)
    assert mapping is not None
    print("\nLoihi 1 chip model (200 test images):")
    print(mapping.report())
    if any(r.timesteps in (16, 128) for r in energy):
        print(compare_with_paper(energy))
    core_map(mapping, out / "core_map.png", title=f"{model.arch} on Loihi 1 cores")
    cost = ChipCost(
        model_id=model.model_id(),
        n_cores=mapping.n_cores,
        n_chips=mapping.n_chips,
        cores_per_layer=mapping.cores_per_layer,
        energy=[r.summary() for r in energy],
    )
    _write_json(out / "demo.json", replace(report, chip=cost).to_json())
    print(
        f"\nwrote {out / 'demo.json'}, {out / 'queries.png'}, {out / 'core_map.png'} "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return 0


def cmd_export_nir(args: argparse.Namespace) -> int:
    from .interop import to_nir, write_nir

    _check_output(args.out, "OUT.nir")
    model = _load_converted(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = to_nir(model, dt=args.dt, pooling=args.pooling)
    for w in caught:
        print(f"snnfast: warning: {w.message}", file=sys.stderr)
    write_nir(graph, args.out)
    print(f"{len(graph.nodes)} NIR nodes, {len(graph.edges)} edges -> {args.out}")
    return 0


def cmd_import_nir(args: argparse.Namespace) -> int:
    from .convert import ConversionConfig
    from .interop import from_nir

    _check_output(args.out, "--out")
    config = None
    if args.weight_bits is not None or args.rounding is not None:
        config = ConversionConfig(
            num_weight_bits=args.weight_bits or 9,
            num_bias_bits=args.weight_bits or 9,
            rounding=args.rounding or "truncate",
            clip=args.weight_bits is not None,
        )
    model = from_nir(args.nir, config=config, dt=args.dt)
    model.save(args.out)
    print(f"{model.network.n_layers} spiking layers, thresholds {model.thresholds} -> {args.out}")
    return 0


# -- parser -----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (usage is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser, default: Any) -> None:
    """``-q`` and ``--debug``, before or after the subcommand (``default``: the top level's
    ``False``, a subcommand's ``SUPPRESS``, so it does not undo a flag given before it)."""
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars")
    p.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="on an error, show the traceback (and raise it) instead of one line",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snnfast`` command."""
    from . import __version__

    p = _Parser(prog="snnfast", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"snnfast {__version__}")
    _common(p, False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("train", help="train a Table-1 CNN with PyTorch (needs snnfast[train])")
    s.add_argument("arch", help="architecture, e.g. 32-64-10")
    s.add_argument("--out", required=True, help="model file (.npz)")
    s.add_argument("--epochs", type=_positive, default=None, help="default: the shipped recipe's")
    s.add_argument("--seed", type=_seed, default=None, help="training seed (default 0)")
    s.add_argument(
        "--batch-size", type=_positive, default=None, help="images per step (default the recipe's)"
    )
    s.add_argument("--lr", type=float, default=None, help="learning rate (default the recipe's)")
    s.add_argument(
        "--weight-decay", type=float, default=None, help="AdamW weight decay (default the recipe's)"
    )
    s.add_argument(
        "--dropout", type=float, default=None, help="dropout before the classifier, in [0, 1)"
    )
    s.add_argument("--threads", type=_positive, default=None, help="torch threads (default all)")
    s.add_argument("--limit", type=_positive, default=None, help="first N images only (quick runs)")
    s.add_argument(
        "--qcfs-levels",
        type=_positive,
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
        s.add_argument(
            "--calibration-size",
            type=_positive,
            default=1000,
            help="calibration images (a seeded sample of the training set; default 1000)",
        )
        s.add_argument("--seed", type=_seed, default=0, help="seed of the calibration sample")
        s.add_argument(
            "--rounding",
            choices=["truncate", "round"],
            default="truncate",
            help="integer weights, biases and thresholds by truncation (the paper) or rounding",
        )
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
            type=_positive,
            default=8,
            help="time steps of the threshold-balancing runs",
        )

    s = sub.add_parser("convert", help="convert an ANN model file with Algorithm 1")
    s.add_argument("model", help="ANN model file (snnfast train)")
    s.add_argument("--out", required=True, help="converted model file (.npz)")
    conversion_args(s)
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser(
        "convert-torch", help="convert your own PyTorch model (needs snnfast[train])"
    )
    s.add_argument(
        "target", help="MODULE:FACTORY (or path/to/file.py:FACTORY) that makes the nn.Module"
    )
    s.add_argument(
        "--weights",
        default=None,
        help="state dict: .safetensors, a torch.save file (read with weights_only=True), or "
        "an snnfast zoo file",
    )
    s.add_argument("--out", required=True, help="converted model file (.npz)")
    s.add_argument(
        "--input-shape",
        type=_positive,
        nargs=3,
        default=[1, 28, 28],
        metavar=("C", "H", "W"),
        help="the model's input (default 1 28 28)",
    )
    s.add_argument(
        "--images",
        default=None,
        help="calibration images: a folder or .npy file (default: Fashion-MNIST training images)",
    )
    s.add_argument(
        "--fit",
        choices=["stretch", "crop", "pad", "center"],
        default="stretch",
        help="how images of another size fit the input (center: unscaled, zero-padded)",
    )
    s.add_argument("--mean", type=float, nargs="+", default=None, help="input normalisation mean")
    s.add_argument("--std", type=float, nargs="+", default=None, help="input normalisation std")
    conversion_args(s)
    s.set_defaults(func=cmd_convert_torch)

    from .retrieval.cli import add_commands
    from .serve.cli import add_commands as add_serve_commands

    add_commands(sub, _positive)  # embed, index, search, embed-catalog
    add_serve_commands(sub)  # serve

    s = sub.add_parser("evaluate", help="the paper's Table 2 on Fashion-MNIST")
    s.add_argument("--model", default=None, help="ANN model file (default the shipped one)")
    s.add_argument(
        "--timesteps", type=_positive, nargs="+", default=[16, 128], help="SNN time steps"
    )
    s.add_argument(
        "--readout",
        choices=["membrane", "spike_count", "integrated"],
        default="membrane",
        help="SNN embedding (membrane: the paper's)",
    )
    s.add_argument("--n-train", type=_positive, default=None, help="first N corpus images only")
    s.add_argument("--n-test", type=_positive, default=None, help="first N query images only")
    s.add_argument(
        "--delay", type=int, choices=[0, 1], default=0, help="1: Loihi's one-step synaptic delay"
    )
    s.add_argument(
        "--v-init", type=float, default=0.0, help="initial potential / threshold, in [0, 1)"
    )
    s.add_argument("--threads", type=_positive, default=None, help="default all cores")
    s.add_argument("--json", default=None, help="also write the figures to this JSON file")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser(
        "chip", help="map a model onto Loihi cores and estimate its energy, latency and metrics"
    )
    s.add_argument("model", help="converted model file, or an ANN model file to convert")
    s.add_argument(
        "--timesteps", type=_positive, nargs="+", default=[16, 128], help="time steps to cost"
    )
    s.add_argument(
        "--n-images", type=_positive, default=200, help="test images the estimate averages over"
    )
    s.add_argument("--threads", type=_positive, default=None, help="default all cores")
    s.add_argument("--png", default=None, help="write the core map (the paper's Fig 3)")
    s.add_argument("--max-chips", type=_positive, default=1, help="refuse mappings over this")
    s.add_argument(
        "--profile",
        nargs="+",
        choices=["loihi1", "loihi1-sanafe", "loihi2"],
        default=["loihi1", "loihi1-sanafe", "loihi2"],
        help="chip profiles to cost (default all three)",
    )
    s.add_argument(
        "--compartments",
        type=int,
        choices=[1, 2],
        default=None,
        help="compartments per soft-reset neuron (default the profile's: 2 on Loihi 1, as NxTF "
        "builds it; 1 on Loihi 2)",
    )
    s.add_argument("--json", default=None, help="also write every profile's figures to this file")
    conversion_args(s)
    s.set_defaults(func=cmd_chip)

    s = sub.add_parser("export-nir", help="write a converted model as a NIR graph (.nir)")
    s.add_argument("model", help="converted model file (snnfast convert, snnfast import-nir)")
    s.add_argument("out", help="NIR file to write")
    s.add_argument(
        "--dt", type=float, default=1e-3, help="seconds one step stands for (sets LIF tau)"
    )
    s.add_argument(
        "--pooling",
        choices=["sum", "avg"],
        default="sum",
        help="pooling node: SumPool2d (Norse, sinabs) or AvgPool2d (snnTorch)",
    )
    s.set_defaults(func=cmd_export_nir)

    s = sub.add_parser("import-nir", help="read a NIR graph (.nir) as a converted model")
    s.add_argument("nir", help="NIR file")
    s.add_argument("--out", required=True, help="converted model file (.npz)")
    s.add_argument(
        "--dt", type=float, default=None, help="the graph's time step (default its metadata)"
    )
    s.add_argument(
        "--weight-bits",
        type=_positive,
        default=None,
        help="quantise to these weight and bias bits (clipped); default the paper's 9",
    )
    s.add_argument(
        "--rounding",
        choices=["truncate", "round"],
        default=None,
        help="integer weights by truncation or rounding (default truncate)",
    )
    s.set_defaults(func=cmd_import_nir)

    paper_cli.add_commands(sub, _positive)

    s = sub.add_parser("demo", help="the main job: the shipped model end to end")
    s.add_argument("--out", default="runs/demo", help="output folder")
    s.add_argument("--timesteps", type=_positive, nargs="+", default=[16], help="SNN time steps")
    s.add_argument("--n-train", type=_positive, default=None, help="first N corpus images only")
    s.add_argument("--n-test", type=_positive, default=None, help="first N query images only")
    s.add_argument("--threads", type=_positive, default=None, help="default all cores")
    s.set_defaults(func=cmd_demo)
    for command in sub.choices.values():
        _common(command, argparse.SUPPRESS)
    return p


# The optional dependency a missing module stands for: (extra, what needs it).
_EXTRAS = {
    "torch": "train",
    "safetensors": "train",
    "nir": "interop",
    "nirtorch": "interop",
    "h5py": "interop",
    "ray": "scale",
    "lancedb": "scale",
    "pyarrow": "scale",
}


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line, naming missing extras with their install command."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        root = exc.name.split(".")[0]
        if root in _EXTRAS:
            extra = _EXTRAS[root]
            return f"this command needs {root}: pip install 'snnfast[{extra}]'"
        return f"this command needs the Python package {root!r}, which is not installed"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (SnnfastError, OSError)):
        return text
    return f"{type(exc).__name__}: {text} (an internal error; --debug shows where)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``snnfast`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        _check_outputs(args)
        with warnings.catch_warnings():
            # The chip model's warnings are printed in its mapping report: not twice.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"snnfast\.")
            return int(args.func(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("snnfast: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 (every error is one line; --debug shows it whole)
        if args.debug:
            raise
        print(f"snnfast: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
