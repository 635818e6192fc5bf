"""Catalogues on Ray (a local Ray of 2 CPUs): the same embeddings as ``snnfast embed``, bit for
bit, and a run killed midway resumes without re-embedding its finished shards."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers_convert import fashion

from snnfast import ann, cli
from snnfast.convert import convert
from snnfast.data import ImageSource
from snnfast.embed import Embeddings
from snnfast.errors import ConfigError
from snnfast.evaluation import calibration_indices
from snnfast.scale import (
    PLAN,
    embed_catalog,
    embed_dataset,
    embed_source,
    init_ray,
    load_catalog,
    shard_path,
)

FIELDS = ("vectors", "predictions", "synops", "steps", "labels", "ids", "paths")


@pytest.fixture(scope="module")
def ray_local():
    ray = init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    arch, state, _ = ann.load_model(None)
    x, _ = fashion("train", 2000)
    model = convert(state, arch, calibration_images=x[calibration_indices(len(x), 500)])
    path = tmp_path_factory.mktemp("model") / "m.npz"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """300 Fashion-MNIST test images as PNG files in one subfolder per class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images") / "shop"
    x, y = fashion("test", 300)
    for i in range(300):
        (root / f"class{y[i]}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, 0]).save(root / f"class{y[i]}" / f"{i:04d}.png")
    return root


def assert_same(a: Embeddings, b: Embeddings) -> None:
    assert a.meta == b.meta
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name  # bit for bit


def test_embed_catalog_equals_embed_bit_for_bit(ray_local, model_file, folder, tmp_path) -> None:
    single = tmp_path / "single.npz"
    args = ["--readout", "spike_count", "--timesteps", "16"]
    assert cli.main(["-q", "embed", str(model_file), str(folder), *args, "--out", str(single)]) == 0
    out = tmp_path / "catalog"
    cmd = ["-q", "embed-catalog", str(folder), "--model", str(model_file), *args]
    assert cli.main([*cmd, "--out", str(out), "--shard-size", "70", "--batch-size", "32"]) == 0
    shards = sorted(p.name for p in out.glob("shard-*.npz"))
    assert shards == [f"shard-{k:06d}.npz" for k in range(5)] and (out / PLAN).is_file()
    reference = Embeddings.load(single)
    assert len(reference) == 300 and reference.paths is not None and reference.labels is not None
    assert_same(reference, load_catalog(out))
    # a second run finds every shard done and rewrites none
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    model = ConvertedModelLoad(model_file)
    result = embed_catalog(folder, model, out, readout="spike_count", shard_size=70)
    assert result.shards_reused == 5 and result.shards_embedded == 0 and result.embedded == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    # the catalogue folder indexes like an embeddings file
    assert cli.main(["-q", "index", str(out), "--out", str(tmp_path / "i.idx")]) == 0


def ConvertedModelLoad(path: Path):  # noqa: N802 - reads like the class it returns
    from snnfast.convert import ConvertedModel

    return ConvertedModel.load(path)


def test_another_plan_is_refused(ray_local, model_file, folder, tmp_path) -> None:
    model = ConvertedModelLoad(model_file)
    out = tmp_path / "c"
    embed_catalog(folder, model, out, readout="spike_count", shard_size=200)
    with pytest.raises(ConfigError, match="another meta"):
        embed_catalog(folder, model, out, readout="membrane", shard_size=200)
    with pytest.raises(ConfigError, match="another shard_size"):
        embed_catalog(folder, model, out, readout="spike_count", shard_size=100)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a catalogue folder"):
        embed_catalog(folder, model, tmp_path / "other")


def test_damaged_shard_is_embedded_again(ray_local, model_file, folder, tmp_path) -> None:
    model = ConvertedModelLoad(model_file)
    out = tmp_path / "c"
    embed_catalog(folder, model, out, readout="spike_count", shard_size=150)
    whole = load_catalog(out)
    path = shard_path(out, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = embed_catalog(folder, model, out, readout="spike_count", shard_size=150)
    assert result.shards_embedded == 1 and result.shards_reused == 1
    assert any("re-embedding shard 1" in str(w.message) for w in caught)
    assert_same(whole, load_catalog(out))


def test_embed_dataset_from_arrays_and_parquet(ray_local, model_file, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    model = ConvertedModelLoad(model_file)
    x, y = fashion("test", 120)
    reference = embed_source(model, x, readout="spike_count", labels=y)
    ids = np.arange(120, dtype=np.int64)
    items = ray_local.data.from_items(
        [{"id": int(i), "image": x[i, 0], "label": int(y[i])} for i in range(120)]
    )
    got = embed_dataset(items, model_file, readout="spike_count", batch_size=16).take_all()
    got.sort(key=lambda r: r["id"])
    vectors = np.stack([r["embedding"] for r in got])
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, reference.vectors)
    np.testing.assert_array_equal([r["prediction"] for r in got], reference.predictions)
    np.testing.assert_array_equal([r["label"] for r in got], y)
    np.testing.assert_array_equal(np.stack([r["synops"] for r in got]), reference.synops)
    # Parquet of encoded PNG files (a common catalogue layout)
    pngs = []
    for i in range(120):
        buf = io.BytesIO()
        Image.fromarray(x[i, 0]).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    table = pa.table(
        {"id": ids, "image": pa.array(pngs, pa.binary()), "path": [f"p{i}" for i in ids]}
    )
    pq.write_table(table, tmp_path / "catalog.parquet", row_group_size=40)
    ds = ray_local.data.read_parquet(str(tmp_path / "catalog.parquet"))
    rows = embed_dataset(ds, model, readout="spike_count", batch_size=32, workers=1).take_all()
    rows.sort(key=lambda r: r["id"])
    np.testing.assert_array_equal(np.stack([r["embedding"] for r in rows]), reference.vectors)
    assert [r["path"] for r in rows] == [f"p{i}" for i in range(120)]
    assert all(r["label"] == -1 for r in rows)


KILLED_RUN = r"""
import sys, time
from snnfast.data import ImageSource
from snnfast.scale import embed_catalog

class Slow(ImageSource):  # defined here, so Ray ships it to the workers by value
    def read_ids(self, ids, shape, options=None):
        time.sleep(0.4)
        return super().read_ids(ids, shape, options)

src = ImageSource.open(sys.argv[1])
slow = Slow.__new__(Slow)
slow.__dict__.update(src.__dict__)
embed_catalog(slow, sys.argv[2], sys.argv[3], readout="spike_count", shard_size=50,
              batch_size=10, workers=1)
print("finished")
"""


def test_resume_after_a_killed_run(ray_local, model_file, folder, tmp_path) -> None:
    out = tmp_path / "catalog"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(folder), str(model_file), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the driver and its local Ray
    )
    try:
        deadline = time.monotonic() + 240
        while not shard_path(out, 0).exists():
            assert proc.poll() is None, "the run ended before writing a shard"
            assert time.monotonic() < deadline, "no shard written in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run dies at once, as in a crash
    finally:
        proc.wait(timeout=60)
    assert b"finished" not in proc.stdout.read()
    done = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.npz")}
    assert 1 <= len(done) < 6, sorted(p.name for p in done)
    model = ConvertedModelLoad(model_file)
    result = embed_catalog(folder, model, out, readout="spike_count", shard_size=50, batch_size=10)
    assert result.shards_reused == len(done) and result.shards_embedded == 6 - len(done)
    for p, stamp in done.items():  # finished shards were not embedded or written again
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # temporaries cleaned
    assert_same(embed_source(model, folder, readout="spike_count"), load_catalog(out))


def test_ray_and_lancedb_stay_out_of_import_snnfast() -> None:
    code = (
        "import sys, snnfast, snnfast.scale, snnfast.retrieval, snnfast.data, snnfast.cli; "
        "bad = [m for m in ('ray', 'lancedb', 'pyarrow', 'PIL', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_image_source_pickles_small_for_npy(tmp_path) -> None:
    import pickle

    x, y = fashion("test", 500)
    np.save(tmp_path / "x.npy", x)
    src = ImageSource.open(tmp_path / "x.npy", labels=y)
    back = pickle.loads(pickle.dumps(src))
    assert len(pickle.dumps(src)) < 20_000  # the pixels are reopened, not copied
    np.testing.assert_array_equal(back.read(10, 20, (1, 28, 28)).images, x[10:20])


def test_cli_image_queries_and_refusals(model_file, folder, tmp_path, capsys) -> None:
    emb = tmp_path / "e.npz"
    assert cli.main(["-q", "embed", str(model_file), str(folder), "--out", str(emb)]) == 0
    for backend in ("hnswlib", "lancedb"):
        index = tmp_path / f"index-{backend}"
        assert cli.main(["-q", "index", str(emb), "--out", str(index), "--backend", backend]) == 0
        query = sorted((folder / "class3").iterdir())[0]
        capsys.readouterr()
        assert cli.main(["-q", "search", str(index), str(query), "--model", str(model_file)]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 1 and out[0].startswith(f"query {query}: ")
        assert f"d=0.000, {query})" in out[0]  # the image itself, found by its path
        assert cli.main(["-q", "search", str(index), str(query)]) == 2
        assert "give --model" in capsys.readouterr().err
    other = tmp_path / "other.npz"
    assert cli.main(["-q", "convert", str(ann.SHIPPED_MODEL), "--out", str(other),
                     "--rounding", "round"]) == 0  # fmt: skip
    index = tmp_path / "index-hnswlib"
    assert cli.main(["-q", "search", str(index), str(query), "--model", str(other)]) == 2
    assert "model_id" in capsys.readouterr().err
    assert cli.main(["-q", "embed", str(model_file), "train", "--split", "test",
                     "--out", str(tmp_path / "x.npz")]) == 2  # fmt: skip
    assert "not both" in capsys.readouterr().err
    old = tmp_path / "old.bin"
    old.write_bytes(b"\x00" * 64)
    (tmp_path / "old.bin.meta.npz").write_bytes(b"PK")
    assert cli.main(["-q", "search", str(old), str(emb)]) == 2
    assert "rebuild it with `snnfast index" in capsys.readouterr().err
