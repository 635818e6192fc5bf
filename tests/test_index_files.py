"""Damaged and foreign index files give ModelFormatError, never a crash or other neighbours.

Each case runs in its own subprocess, so a segfault in a native parser fails its test instead
of killing pytest. A case passes when the subprocess either raises ModelFormatError or (for a
byte no reader depends on, such as a ZIP timestamp) answers exactly as the intact index does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from snnfast import _container
from snnfast.embed import Embeddings, IndexMeta
from snnfast.retrieval import LanceIndex, RetrievalIndex

META = IndexMeta("00000000000abc12", "spike_count", 16, 16)
PROBE = r"""
import sys, hashlib
import numpy as np
from snnfast.errors import ModelFormatError
from snnfast.retrieval import open_index
from snnfast.embed import IndexMeta
meta = IndexMeta("00000000000abc12", "spike_count", 16, 16)
q = np.random.default_rng(9).standard_normal((20, 16)).astype(np.float32)
try:
    r = open_index(sys.argv[1]).search(q, 5, meta)
except ModelFormatError as exc:
    print("ModelFormatError", exc)
    sys.exit(0)
print("ANSWER", hashlib.sha256(r.ids.tobytes() + r.labels.tobytes()).hexdigest())
"""


def corpus(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 16)).astype(np.float32), rng.integers(0, 10, n)


def probe(path: Path) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, f"{path.name}: exit {r.returncode}\n{r.stderr[-2000:]}"
    return r.stdout.strip().splitlines()[-1]


def check_all(cases: dict[str, Path], intact: str) -> dict[str, str]:
    with ThreadPoolExecutor(2) as pool:
        outcomes = dict(zip(cases, pool.map(probe, cases.values())))
    bad = {
        name: out
        for name, out in outcomes.items()
        if not out.startswith("ModelFormatError") and out != intact
    }
    assert not bad, f"answers from damaged files: {bad}"
    refused = sum(out.startswith("ModelFormatError") for out in outcomes.values())
    assert refused >= len(cases) * 0.8, outcomes  # most damage is detected, not just survived
    return outcomes


def flipped(src: Path, dst: Path, positions: list[int]) -> Path:
    data = bytearray(src.read_bytes())
    for pos in positions:
        data[pos % len(data)] ^= 0x5A
    dst.write_bytes(bytes(data))
    return dst


def rewritten(src: Path, dst: Path, edit) -> Path:
    """The container re-signed after ``edit(body, arrays)``: checksums valid, content not."""
    c = _container.read(src, "index", [3])
    body, arrays = json.loads(json.dumps(c.body)), {k: v.copy() for k, v in c.arrays.items()}
    edit(body, arrays)
    _container.write(dst, "index", 3, body, arrays, compress=False)
    return dst


def graph_edit(offset: int, value: bytes):
    def edit(body, arrays):
        g = arrays["graph_00000"]
        g[offset : offset + len(value)] = np.frombuffer(value, np.uint8)

    return edit


def test_damaged_hnswlib_index_files(tmp_path) -> None:
    x, y = corpus()
    index = RetrievalIndex.build(x, y, META, M=8, threads=1)
    good = tmp_path / "good.idx"
    index.save(good)
    intact = probe(good)
    assert intact.startswith("ANSWER")
    size = good.stat().st_size
    rng = np.random.default_rng(0)
    cases: dict[str, Path] = {}
    for i, pos in enumerate(rng.integers(0, size, 24).tolist()):
        cases[f"flip{i}@{pos}"] = flipped(good, tmp_path / f"flip{i}.idx", [pos])
    for i, cut in enumerate([0, 1, 100, size // 3, size // 2, size - 1]):
        (tmp_path / f"cut{i}.idx").write_bytes(good.read_bytes()[:cut])
        cases[f"truncated to {cut}"] = tmp_path / f"cut{i}.idx"
    raw = good.read_bytes()
    at = raw.index(b'"ef": 128')
    cases["header text edited"] = tmp_path / "hdr.idx"
    cases["header text edited"].write_bytes(raw[:at] + b'"ef": 129' + raw[at + 9 :])
    links0 = 16 * 4 + 4
    per = links0 + 16 * 4 + 8
    resigned = {
        "more rows": lambda b, a: b.update(rows=b["rows"] + 1),
        "other dim": lambda b, a: b["meta"].update(dim=17),
        "other M": lambda b, a: b["params"].update(M=16),
        "labels cut": lambda b, a: a.update(labels=a["labels"][:-1]),
        "all deleted": lambda b, a: a.update(alive=np.zeros_like(a["alive"])),
        "graph cut": lambda b, a: a.update(graph_00000=a["graph_00000"][:-7]),
        "neighbour out of range": graph_edit(96 + 4, b"\xff\xff\xff\x7f"),
        "degree too large": graph_edit(96, b"\xc8\x00"),
        "label out of range": graph_edit(96 + links0 + 16 * 4, b"\xff" * 8),
        "count in header": graph_edit(16, np.uint64(10**9).tobytes()),
        "entry point": graph_edit(52, b"\xff\xff\xff\x00"),
        "level link size": graph_edit(96 + 400 * per, b"\x03\x00\x00\x00"),
    }
    for name, edit in resigned.items():
        cases[f"re-signed: {name}"] = rewritten(good, tmp_path / f"rs-{len(cases)}.idx", edit)
    Embeddings(x, y.astype(np.int64), META).save(tmp_path / "emb.npz")
    cases["an embeddings file"] = tmp_path / "emb.npz"
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    cases["a PNG"] = tmp_path / "pic.png"
    index._index.save_index(str(tmp_path / "raw.bin"))
    cases["a raw hnswlib graph"] = tmp_path / "raw.bin"
    outcomes = check_all(cases, intact)
    # the re-signed and foreign cases must all be refused (their content is wrong)
    for name in [n for n in cases if n.startswith("re-signed") or n.startswith("a")]:
        assert outcomes[name].startswith("ModelFormatError"), name


def test_damaged_lancedb_index_folders(tmp_path) -> None:
    x, y = corpus(2000)
    good = tmp_path / "good"
    LanceIndex.build(x, y, META, path=good, min_index_rows=1000, num_partitions=4)
    intact = probe(good)
    assert intact.startswith("ANSWER")
    files = sorted(
        p for p in good.rglob("*") if p.is_file() and p.name != "latest_version_hint.json"
    )
    assert any("_indices" in p.parts for p in files) and any(p.suffix == ".lance" for p in files)
    cases: dict[str, Path] = {}
    rng = np.random.default_rng(1)
    for i, f in enumerate(files):
        rel = f.relative_to(good)
        for how in ("flip", "cut", "gone"):
            case = tmp_path / f"{how}{i}"
            shutil.copytree(good, case)
            target = case / rel
            if how == "flip":
                flipped(target, target, rng.integers(0, target.stat().st_size, 2).tolist())
            elif how == "cut":
                target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
            else:
                target.unlink()
            cases[f"{how} {rel}"] = case
    outcomes = check_all(cases, intact)
    for name, out in outcomes.items():  # every table file is covered by the manifest
        assert out.startswith("ModelFormatError"), name


@pytest.mark.parametrize("n", [1, 3])
def test_small_indexes_round_trip(tmp_path, n) -> None:
    x, y = corpus(n)
    RetrievalIndex.build(x, y, META).save(tmp_path / "s.idx")
    assert RetrievalIndex.load(tmp_path / "s.idx").search(x, 1, META).ids[:, 0].tolist() == list(
        range(n)
    )
