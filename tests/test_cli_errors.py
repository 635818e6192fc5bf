"""Bad command lines: every one exits 2 with one line that names the problem, no traceback.

Most run in-process through :func:`snnfast.cli.main` (stderr captured); the start-up paths
(``--version``, a missing extra) run as subprocesses. The argument-type cases are made by
walking the parser, so an option added later with a count type is tried too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_convert import fashion, random_state

from snnfast import __version__, cli
from snnfast.errors import ModelFormatError

# -- files the cases refer to ------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from snnfast.ann import Architecture, save_model
    from snnfast.convert import convert
    from snnfast.embed import Embeddings, embed

    root = tmp_path_factory.mktemp("cli-errors")
    arch = Architecture.parse("4-8-10")
    x, _ = fashion("train", 60)
    state = random_state(arch, seed=2)
    made = {
        "ann": root / "ann.npz",
        "converted": root / "converted.npz",
        "embeddings": root / "embeddings.npz",
        "empty_embeddings": root / "empty-embeddings.npz",
        "text": root / "notes.txt",
        "png": root / "image.png",
        "empty": root / "empty.npz",
        "folder": root / "folder",
        "missing": root / "missing.npz",
        "npy": root / "array.npy",
    }
    save_model(made["ann"], arch, state)
    model = convert(state, arch, calibration_images=x)
    model.save(made["converted"])
    emb = embed(model, x[:20], timesteps=4)
    emb.save(made["embeddings"])
    Embeddings(emb.vectors[:0], emb.predictions[:0], emb.meta).save(made["empty_embeddings"])
    made["text"].write_text("not a model\n")
    made["png"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    made["empty"].write_bytes(b"")
    made["folder"].mkdir()
    np.save(made["npy"], np.arange(5))
    return made


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, names: tuple[str, ...] = ()) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0], err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"


# -- argument types, walked from the parser ----------------------------------------------------


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _filler(parser: argparse.ArgumentParser, skip: argparse.Action) -> list[str]:
    """Dummy values for the required arguments of ``parser`` other than ``skip``."""
    argv: list[str] = []
    for a in parser._actions:
        if a is skip or isinstance(a, argparse._HelpAction):
            continue
        n = 3 if a.nargs == 3 else 1
        if not a.option_strings and a.nargs not in ("?", "*"):
            argv += ["x"] * n
        elif a.option_strings and a.required:
            argv += [a.option_strings[-1], *["x"] * n]
    return argv


def _typed(kind) -> list[tuple[str, str, str]]:
    out = []
    for name, parser in _subcommands().items():
        for a in parser._actions:
            if a.type is kind and a.option_strings:
                out.append((name, a.option_strings[-1], a.dest))
    return out


COUNT_OPTIONS = _typed(cli._positive)
SEED_OPTIONS = _typed(cli._seed)


@pytest.mark.parametrize("value", ["0", "-3", "x", "1.5"])
@pytest.mark.parametrize(("command", "option", "dest"), COUNT_OPTIONS)
def test_counts_must_be_positive_integers(command, option, dest, value, capsys) -> None:
    parser = _subcommands()[command]
    action = next(a for a in parser._actions if a.dest == dest)
    n = 3 if action.nargs == 3 else 1
    argv = [command, *_filler(parser, action), option, *[value] * n]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert_one_line_error(info.value.code, capsys.readouterr().err, (option, repr(value)[1:-1]))


@pytest.mark.parametrize("value", ["-1", "-100", "seed", str(2**64)])
@pytest.mark.parametrize(("command", "option", "dest"), SEED_OPTIONS)
def test_seeds_must_be_non_negative(command, option, dest, value, capsys) -> None:
    parser = _subcommands()[command]
    action = next(a for a in parser._actions if a.dest == dest)
    with pytest.raises(SystemExit) as info:
        cli.main([command, *_filler(parser, action), option, value])
    assert_one_line_error(info.value.code, capsys.readouterr().err, (option,))


def test_enough_cases() -> None:
    assert len(COUNT_OPTIONS) * 4 + len(SEED_OPTIONS) * 4 + len(BAD_RUNS) >= 100


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["embed"],
        ["embed", "m.npz"],
        ["train"],
        ["index", "e.npz"],
        ["evaluate", "--readout", "voltage"],
        ["evaluate", "--delay", "2"],
        ["chip", "m.npz", "--compartments", "3"],
        ["convert", "m.npz", "--out", "o.npz", "--rounding", "up"],
        ["embed", "m.npz", "--out", "o.npz", "--bogus"],
        ["index", "e.npz", "--out", "o", "--backend", "faiss"],
    ],
)
def test_usage_errors_are_one_line(argv, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert_one_line_error(info.value.code, capsys.readouterr().err)


# -- errors found after parsing ----------------------------------------------------------------

# (argv with {file} placeholders, words the message must hold)
BAD_RUNS = [
    # files of the wrong kind or no kind
    *[
        (["embed", "{" + kind + "}", "--out", "{out}/e.npz"], ("{" + kind + "}",))
        for kind in ("text", "png", "empty", "folder", "missing", "npy", "ann", "embeddings")
    ],
    *[
        (["index", "{" + kind + "}", "--out", "{out}/i.npz"], ())
        for kind in ("text", "png", "empty", "missing", "converted", "npy")
    ],
    (["index", "{empty_embeddings}", "--out", "{out}/i.npz"], ("empty",)),
    *[
        (["search", "{" + kind + "}", "{embeddings}"], ())
        for kind in ("text", "png", "empty", "missing", "converted", "embeddings")
    ],
    *[
        (["convert", "{" + kind + "}", "--out", "{out}/c.npz"], ("{" + kind + "}",))
        for kind in ("text", "png", "empty", "missing", "converted", "embeddings")
    ],
    *[
        (["export-nir", "{" + kind + "}", "{out}/m.nir"], ("{" + kind + "}",))
        for kind in ("text", "png", "missing", "ann", "embeddings")
    ],
    *[
        (["import-nir", "{" + kind + "}", "--out", "{out}/c.npz"], ())
        for kind in ("text", "missing")
    ],
    # outputs that cannot be written, refused before the work
    (["embed", "{converted}", "--out", "{text}/e.npz"], ("--out",)),
    (["embed", "{converted}", "--out", "{folder}"], ("--out", "folder")),
    (["index", "{embeddings}", "--out", "{text}/i.npz"], ("--out",)),
    (["index", "{embeddings}", "--out", "{folder}"], ("--out",)),
    (["convert", "{ann}", "--out", "{folder}"], ("--out",)),
    (["convert", "{ann}", "--out", "{png}/x/c.npz"], ("--out",)),
    (["evaluate", "--json", "{text}/r.json", "--n-train", "10"], ("--json",)),
    (["evaluate", "--json", "{folder}"], ("--json",)),
    (["chip", "{converted}", "--png", "{text}/map.png"], ("--png",)),
    (["chip", "{converted}", "--png", "{folder}"], ("--png",)),
    (["demo", "--out", "{text}"], ("--out",)),
    (["lowlatency", "{text}"], ("OUTDIR",)),
    (["reproduce", "{png}"], ("OUTDIR",)),
    (["export-nir", "{converted}", "{folder}"], ("OUT ",)),
    (["import-nir", "{text}", "--out", "{folder}"], ("--out",)),
    (["train", "32-64-10", "--out", "{folder}"], ("--out",)),
    # no silent clamping or reinterpretation
    (["train", "32-64", "--out", "{out}/m.npz"], ("32-64", "10")),
    (["train", "32-64-100", "--out", "{out}/m.npz"], ("100",)),
    (["train", "abc", "--out", "{out}/m.npz"], ("abc",)),
    (["convert", "{ann}", "--out", "{out}/c.npz", "--calibration-size", "60001"], ("60000",)),
    (["embed", "{converted}", "--out", "{out}/e.npz", "--timesteps", str(2**30)], ("timesteps",)),
    (["search", "{embeddings}", "{embeddings}", "--ids", "-1"], ()),
    (["search", "{embeddings}", "{embeddings}", "--ids", "999999"], ()),
]


def _fill(argv: list[str], files: dict[str, Path], out: Path) -> list[str]:
    names = {k: str(v) for k, v in files.items()}
    return [a.format(out=out, **names) for a in argv]


@pytest.mark.parametrize(("argv", "words"), BAD_RUNS)
def test_bad_runs_exit_2_with_one_line(argv, words, files, tmp_path, capsys) -> None:
    names = {k: str(v) for k, v in files.items()}
    code, err = run_main(["-q", *_fill(argv, files, tmp_path)], capsys)
    assert_one_line_error(code, err, tuple(w.format(out=tmp_path, **names) for w in words))
    assert not any(tmp_path.iterdir()), "an output was written by a failed command"


def test_quiet_and_debug_go_before_or_after_the_subcommand(files, tmp_path, capsys) -> None:
    for argv in (
        ["-q", "embed", str(files["text"]), "--out", str(tmp_path / "e.npz")],
        ["embed", str(files["text"]), "--out", str(tmp_path / "e.npz"), "-q"],
        ["embed", "-q", str(files["text"]), "--out", str(tmp_path / "e.npz")],
    ):
        code, err = run_main(argv, capsys)
        assert_one_line_error(code, err, ("notes.txt",))
    for argv in (
        ["--debug", "embed", str(files["text"]), "--out", str(tmp_path / "e.npz")],
        ["embed", str(files["text"]), "--out", str(tmp_path / "e.npz"), "--debug"],
    ):
        with pytest.raises(ModelFormatError):
            cli.main(argv)


def test_every_option_has_help() -> None:
    parsers = {"snnfast": cli.build_parser(), **_subcommands()}
    missing = [
        f"{name} {a.option_strings or a.dest}"
        for name, p in parsers.items()
        for a in p._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        and not (a.help and a.help.strip())
    ]
    assert not missing, missing


# -- start-up paths, as a user starts them ---------------------------------------------------


def _snnfast(*args: str, pre: str = "") -> subprocess.CompletedProcess:
    code = f"{pre}\nimport sys\nfrom snnfast.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_version() -> None:
    out = _snnfast("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"snnfast {__version__}", out


@pytest.mark.parametrize(
    ("argv", "module", "extra"),
    [
        (["train", "32-64-10", "--out", "m.npz"], "torch", "train"),
        (["convert-torch", "torchvision.models:resnet18", "--out", "m.npz"], "torch", "train"),
    ],
)
def test_a_missing_extra_names_its_install_command(tmp_path, argv, module, extra) -> None:
    pre = f"import sys\nsys.modules[{module!r}] = None"
    out = _snnfast(*[str(tmp_path / a) if a.endswith(".npz") else a for a in argv], pre=pre)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'snnfast[{extra}]'" in lines[0], out.stderr


def test_no_arguments_is_one_line() -> None:
    out = _snnfast()
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
