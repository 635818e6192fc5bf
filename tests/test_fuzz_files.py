"""Fuzz of every file loader: tampered files give a named error or the intact answer, never a
signal, a hang, another exception or a silent wrong answer.

The kinds: the shipped-weights ANN model, a converted model, a saved ``Network``, embeddings, a
retrieval index, a NIR file (with the ``interop`` extra) and zoo weights (with torch). From one
small valid file of each kind, hypothesis draws tampered copies:

* ``flip``: one to eight bytes XOR-ed with a non-zero byte at drawn offsets;
* ``truncate``: the file cut at a drawn length (0 included);
* ``header``: the kind's JSON body edited (a value replaced by a huge, negative, wrong-typed or
  missing one, an array dropped or reshaped) and written back *with fresh checksums*, as a
  hostile writer would; the loaders' own structural checks must catch what matters;
* ``cross``: a file of another kind, or a foreign one (PNG, text, empty, random bytes, a NumPy
  ``.npy``, a pickle).

Every case runs in :class:`helpers_fuzz.Sandbox`'s worker, which loads the file and then uses
it (runs the network on two images, searches the index, reads the arrays) and returns a digest
of what it answered. A case passes when the load raised ``ModelFormatError`` or
``MemoryLimitError`` (a use of a loaded, re-checksummed file may raise any named snnfast error),
or when the answer's digest equals the intact file's (a byte no reader depends on, such as a
ZIP timestamp). Re-checksummed header edits may load and answer differently (they are other
valid files); they must still not crash, hang or raise an unnamed error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_convert import fashion, random_state
from helpers_fuzz import COUNTS, NAMED, Sandbox, count, in_ci
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

BATCH = 25  # cases per hypothesis example
GOAL_FILES = 500  # tampered files over the CI run
HAS_NIR = importlib.util.find_spec("nir") is not None and importlib.util.find_spec("h5py")
HAS_TORCH = importlib.util.find_spec("torch") is not None


# -- the valid files (made once, in the parent) -----------------------------------------------


def make_files(root: Path) -> dict[str, Path]:
    """One small valid file of each kind, by kind."""
    from snnfast import _container, ann
    from snnfast.ann import Architecture
    from snnfast.convert import convert
    from snnfast.embed import embed
    from snnfast.retrieval import RetrievalIndex

    files: dict[str, Path] = {}
    arch = Architecture.parse("4-8-10")
    x, y = fashion("train", 120)
    state = random_state(arch, seed=4)
    files["ann"] = root / "ann.npz"
    ann.save_model(files["ann"], arch, state)
    model = convert(state, arch, calibration_images=x)
    files["converted"] = root / "converted.npz"
    model.save(files["converted"])
    files["network"] = root / "network.npz"
    model.network.save(files["network"], {"note": "fuzz"})
    emb = embed(model, x[:60], timesteps=8)
    files["embeddings"] = root / "embeddings.npz"
    emb.save(files["embeddings"])
    files["index"] = root / "index.npz"
    RetrievalIndex.build(emb.vectors, y[:60], emb.meta, seed=1).save(files["index"])
    if HAS_NIR:
        from helpers_nir import zero_reset

        from snnfast.interop import to_nir, write_nir

        files["nir"] = root / "model.nir"
        write_nir(to_nir(zero_reset(model)), files["nir"])
    if HAS_TORCH:
        from snnfast import zoo

        torch_model = zoo.ENTRIES["gap"].factory()
        record = zoo.ZooModel("gap", 1, 0, 1e-3, 0.0, 1, 0.5, 0.5, 1.0)
        weights = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}
        files["zoo"] = root / "zoo.npz"
        _container.write(
            files["zoo"], zoo.FORMAT, zoo.FORMAT_VERSION, {"zoo": record.to_json()}, weights
        )
    return files


def foreign_files(root: Path) -> list[Path]:
    """Files of no snnfast kind that a user might pass by mistake."""
    rng = np.random.default_rng(3)
    made = {
        "image.png": b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 200, np.uint8).tobytes(),
        "notes.txt": b"not a model\n" * 20,
        "empty.npz": b"",
        "random.bin": rng.integers(0, 256, 4096, np.uint8).tobytes(),
        "pickle.pkl": pickle.dumps({"a": np.arange(3)}),
    }
    paths = []
    for name, data in made.items():
        (root / name).write_bytes(data)
        paths.append(root / name)
    np.save(root / "array.npy", np.arange(10))
    np.savez(root / "plain.npz", a=np.arange(10))
    return [*paths, root / "array.npy", root / "plain.npz"]


# -- tampering (in the parent) ----------------------------------------------------------------


def _edited_values() -> st.SearchStrategy:
    return st.sampled_from(
        [None, -1, 0, 2**40, -(2**63), 1.5, 1e308, "x", "", [], {}, [1, 2], True]
    )


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    """The paths of every value in a JSON tree (dict keys and list indices)."""
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            out += _leaves(v, (*path, i))
    return out


def header_edit(path: Path, out: Path, data: st.DataObject) -> str:
    """Rewrite ``path`` at ``out`` with one edit to its body or arrays, with fresh checksums."""
    from snnfast import _container

    contents = _container.read(path, _container.sniff(path)[0], [contents_version(path)])
    body = json.loads(json.dumps(contents.body))
    arrays = dict(contents.arrays)
    how = data.draw(st.sampled_from(["value", "value", "value", "drop key", "array", "kind"]))
    leaves = _leaves(body)
    if how == "array" and arrays:
        name = data.draw(st.sampled_from(sorted(arrays)))
        change = data.draw(st.sampled_from(["drop", "flat", "grow", "dtype", "empty"]))
        a = arrays[name]
        if change == "drop":
            del arrays[name]
        elif change == "flat":
            arrays[name] = a.reshape(-1)
        elif change == "grow":
            arrays[name] = np.concatenate([a.reshape(-1), a.reshape(-1)[:1]])
        elif change == "dtype":
            arrays[name] = a.astype(np.float64 if a.dtype.kind in "iub" else np.int64)
        else:
            arrays[name] = a.reshape(-1)[:0]
        what = f"array {name}: {change}"
    elif how == "kind":
        kind = data.draw(st.sampled_from(["converted", "embeddings", "index", "network", "ann"]))
        what = f"kind -> {kind}"
        _container.write(out, kind, contents.version, body, arrays)
        return what
    elif leaves:
        where = data.draw(st.sampled_from(leaves))
        parent = body
        for k in where[:-1]:
            parent = parent[k]
        if how == "drop key" and isinstance(parent, dict):
            del parent[where[-1]]
            what = f"drop {'/'.join(map(str, where))}"
        else:
            value = data.draw(_edited_values())
            parent[where[-1]] = value
            what = f"{'/'.join(map(str, where))} = {value!r}"
    else:
        what = "unchanged"
    _container.write(out, contents.kind, contents.version, body, arrays)
    return what


def contents_version(path: Path) -> int:
    from snnfast import _container

    sniffed = _container.sniff(path)
    assert sniffed is not None
    return sniffed[1]


@st.composite
def tamperings(draw: st.DrawFn, kinds: list[str]) -> dict[str, Any]:
    """What to do to which file: ``{"kind", "how", ...}`` (the bytes are made later)."""
    kind = draw(st.sampled_from(kinds))
    how = draw(st.sampled_from(["flip", "flip", "flip", "truncate", "header", "header", "cross"]))
    if how == "header" and kind == "nir":
        how = "flip"
    case: dict[str, Any] = {"kind": kind, "how": how}
    if how == "flip":
        n = draw(st.integers(1, 8))
        case["flips"] = [
            (draw(st.floats(0, 1, exclude_max=True)), draw(st.integers(1, 255))) for _ in range(n)
        ]
    elif how == "truncate":
        case["keep"] = draw(st.floats(0, 1, exclude_max=True))
    elif how == "cross":
        case["other"] = draw(st.integers(0, 1000))
    return case


def tamper(
    case: dict[str, Any], files: dict[str, Path], foreign: list[Path], out: Path, data: Any
) -> tuple[Path, str]:
    """Make the tampered file of ``case`` at ``out``; returns the file to load and a label."""
    src = files[case["kind"]]
    raw = src.read_bytes()
    if case["how"] == "flip":
        b = bytearray(raw)
        for where, mask in case["flips"]:
            b[int(where * len(b))] ^= mask
        out.write_bytes(bytes(b))
        offsets = [int(w * len(b)) for w, _ in case["flips"]]
        return out, f"flip bytes {offsets}"
    if case["how"] == "truncate":
        keep = int(case["keep"] * len(raw))
        out.write_bytes(raw[:keep])
        return out, f"truncated to {keep} of {len(raw)} bytes"
    if case["how"] == "header":
        return out, "header: " + header_edit(src, out, data)
    others = [p for k, p in files.items() if k != case["kind"]] + foreign
    other = others[case["other"] % len(others)]
    return other, f"a {other.name} file"


# -- in the worker ----------------------------------------------------------------------------


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


def _run_digest(net: Any) -> str:
    images = np.random.default_rng(0).integers(0, 256, (2, *net.input_shape), dtype=np.uint8)
    res = net.run(images, 4)
    return _digest(*[c for c in res.spike_counts if c is not None], res.synops)


def load_case(payload: tuple[str, str]) -> dict[str, Any]:
    """Load ``path`` as ``kind`` and use it; ``{"stage", ...}`` says where it stopped."""
    kind, path = payload
    try:
        loaded = _load(kind, path)
    except Exception as exc:  # noqa: BLE001 (reported to the parent)
        return {"stage": "load", "error": type(exc).__name__, "bases": _bases(exc), "msg": str(exc)}
    try:
        return {"stage": "done", "digest": _use(kind, loaded)}
    except Exception as exc:  # noqa: BLE001
        return {"stage": "use", "error": type(exc).__name__, "bases": _bases(exc), "msg": str(exc)}


def _bases(exc: BaseException) -> list[str]:
    return [c.__name__ for c in type(exc).__mro__]


def _load(kind: str, path: str) -> Any:
    if kind == "ann":
        from snnfast import ann

        return ann.load_model(path)
    if kind == "converted":
        from snnfast.converted import ConvertedModel

        return ConvertedModel.load(path)
    if kind == "network":
        from snnfast.network import Network

        return Network.load(path)
    if kind == "embeddings":
        from snnfast.embed import Embeddings

        return Embeddings.load(path)
    if kind == "index":
        from snnfast.retrieval import RetrievalIndex

        return RetrievalIndex.load(path)
    if kind == "nir":
        from snnfast.interop import from_nir, read_nir

        return from_nir(read_nir(path))
    if kind == "zoo":
        from snnfast import zoo

        return zoo.load(path)
    raise AssertionError(kind)


def _use(kind: str, x: Any) -> str:
    if kind == "ann":
        arch, state, meta = x
        return _digest(str(arch), *[state[k] for k in sorted(state)], sorted(meta))
    if kind in ("converted", "nir"):
        return _digest(x.model_id, _run_digest(x.network))
    if kind == "network":
        net, meta = x
        return _digest(_run_digest(net), json.dumps(meta, sort_keys=True, default=str))
    if kind == "embeddings":
        return _digest(x.vectors, x.labels, repr(x.meta))
    if kind == "index":
        q = np.random.default_rng(9).standard_normal((5, x.meta.dim)).astype(np.float32)
        r = x.search(q, 3, x.meta)
        return _digest(r.ids, r.labels, r.distances)
    if kind == "zoo":
        import torch

        model, record = x
        with torch.no_grad():
            out = model(torch.zeros((1, 1, 28, 28)))
        return _digest(out.numpy(), record.to_json())
    raise AssertionError(kind)


# -- the test ---------------------------------------------------------------------------------


def verdict(case: dict[str, Any], outcome: Any, intact: dict[str, str]) -> str | None:
    """What is wrong with one case's outcome, or ``None``."""
    if outcome.status != "ok":
        return outcome.describe()
    got = outcome.value
    if got["stage"] == "load":
        if any(n in got["bases"] for n in NAMED):
            return None
        return f"load raised {got['error']}: {got['msg'][:300]}"
    if got["stage"] == "use":
        named = "SnnfastError" in got["bases"] and got["error"] != "SnnfastError"
        if case["how"] == "header" and named:
            return None
        return f"using the loaded file raised {got['error']}: {got['msg'][:300]}"
    if case["how"] == "header":
        return None  # another valid file (fresh checksums): any answer is its own
    if got["digest"] != intact[case["kind"]]:
        return "loaded and answered differently from the intact file (silent wrong result)"
    return None


def test_file_loaders_fuzz(tmp_path) -> None:
    """At least 500 tampered files (in CI) of every kind, each loaded in the sandbox."""
    files = make_files(tmp_path)
    foreign = foreign_files(tmp_path)
    kinds = sorted(files)
    examples = GOAL_FILES // BATCH + 4 if in_ci() else 4
    failures: list[str] = []
    env = {"SNNFAST_MEMORY_LIMIT": str(2 * 10**9)}
    work = tmp_path / "tampered"
    work.mkdir()
    with Sandbox(env=env, timeout=60, address_space=16 << 30) as box:
        intact = {}
        for kind, path in files.items():
            out = box.run("test_fuzz_files:load_case", (kind, str(path)))
            assert out.status == "ok" and out.value["stage"] == "done", (kind, out.describe())
            intact[kind] = out.value["digest"]

        @settings(max_examples=examples, phases=[Phase.generate])
        @given(st.lists(tamperings(kinds), min_size=BATCH, max_size=BATCH), st.data())
        def batch(cases: list[dict[str, Any]], data: st.DataObject) -> None:
            for case in cases:
                n = sum(COUNTS.get("files", {}).values())
                target = work / f"{n}-{case['kind']}{files[case['kind']].suffix}"
                path, label = tamper(case, files, foreign, target, data)
                outcome = box.run("test_fuzz_files:load_case", (case["kind"], str(path)))
                count("files", **{case["kind"]: 1})
                count("tamperings", **{case["how"]: 1})
                if outcome.status == "ok":
                    count("outcomes", **{outcome.value["stage"]: 1})
                problem = verdict(case, outcome, intact)
                if problem:
                    kept = tmp_path / f"failed-{len(failures)}{path.suffix}"
                    kept.write_bytes(path.read_bytes())
                    failures.append(f"{case['kind']}, {label}: {problem} [file {kept}]")
                if path.parent == work:
                    os.unlink(path)

        batch()
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:60])
    if in_ci():
        assert sum(COUNTS["files"].values()) >= GOAL_FILES, COUNTS["files"]
        assert set(COUNTS["files"]) == set(kinds)


@pytest.mark.parametrize("name", ["image.png", "notes.txt", "empty.npz", "array.npy"])
def test_foreign_files_are_named_as_such(tmp_path, name) -> None:
    """A file of no snnfast kind is refused with a message that names the file, not numpy's
    ``allow_pickle`` hint (finding 10)."""
    from snnfast.converted import ConvertedModel
    from snnfast.errors import ModelFormatError

    path = next(p for p in foreign_files(tmp_path) if p.name == name)
    with pytest.raises(ModelFormatError) as info:
        ConvertedModel.load(path)
    assert str(path) in str(info.value) and "allow_pickle" not in str(info.value)
