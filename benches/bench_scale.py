"""Catalogue scale: an augmented Fashion-MNIST catalogue embedded on Ray and indexed in both
vector stores, with recall against exact search.

The catalogue: ``size`` distinct images made on the fly from the 60,000 training images by
seeded shifts (dx, dy in -2..2, zero fill) and horizontal flips, never stored. Item ``i`` is
source image ``i mod 60,000`` under the ``i div 60,000``-th transform of that image's seeded
order of the 50 transforms; where two items would be equal pixel for pixel, the later one takes
the next transform in its order, so every image is distinct (checked by hashing all of them).

Measured in one process, on the converted shipped 32-64-10 (Algorithm 1 defaults), readout
``spike_count`` at T = 16:

1. the plain engine (:func:`snnfast.scale.embed_source`, all cores) on the first ``plain``
   images, then Ray (:func:`snnfast.scale.embed_catalog`, a local Ray on all cores) on the whole
   catalogue: images per second and Ray's overhead; the first ``plain`` rows must be equal bit
   for bit;
2. the 10,000 Fashion-MNIST test images as queries; exact cosine search for recall@10;
3. hnswlib (:class:`snnfast.retrieval.RetrievalIndex`) and LanceDB IVF-PQ
   (:class:`snnfast.retrieval.LanceIndex`): build time, query latency at batch 1 and 100,
   recall@10;
4. peak memory (resident set of this process and every process it started, Ray's included),
   sampled every 0.2 s, per stage; the load average before and after.

Small version (pytest, marked slow): ``SNNFAST_SCALE_SIZE=20000 pytest benches/bench_scale.py``.
The full run: ``python benches/bench_scale.py --size 1000000 --out runs/scale-1m``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

N_SOURCE = 60_000
SHIFT = 2
TRANSFORMS = [
    (dx, dy, f)
    for f in (0, 1)
    for dy in range(-SHIFT, SHIFT + 1)
    for dx in range(-SHIFT, SHIFT + 1)
]
READOUT = "spike_count"
TIMESTEPS = 16
K = 10


class AugmentedFashionMNIST:
    """The augmented catalogue as a :class:`snnfast.scale.CatalogSource` (pickles with the
    60,000 source images, 47 MB, so it works on any Ray worker)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        from snnfast.data import load_fashion_mnist

        if not 1 <= size <= N_SOURCE * len(TRANSFORMS):
            raise ValueError(f"size must be in [1, {N_SOURCE * len(TRANSFORMS)}]")
        self.size, self.seed = int(size), int(seed)
        self.train, self.train_labels = load_fashion_mnist("train")
        rng = np.random.default_rng(seed)
        self.order = np.argsort(rng.random((N_SOURCE, len(TRANSFORMS))), axis=1).astype(np.uint8)
        ids = np.arange(self.size)
        self.choice = (ids // N_SOURCE).astype(np.uint8)  # position in the image's order
        self.duplicates_replaced = self._make_distinct()
        self.description = f"augmented Fashion-MNIST ({self.size:,} images, seed {seed})"

    def __len__(self) -> int:
        return self.size

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"augmented-fmnist {self.size} {self.seed}".encode())
        h.update(self.choice.tobytes())
        h.update(self.train[::997].tobytes())
        return h.hexdigest()

    def _transform(self, ids: np.ndarray) -> np.ndarray:
        src = ids % N_SOURCE
        combo = self.order[src, self.choice[ids]]
        out = np.empty((ids.size, 1, 28, 28), dtype=np.uint8)
        padded = np.pad(self.train[src, 0], ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)))
        for t in np.unique(combo):
            dx, dy, flip = TRANSFORMS[int(t)]
            rows = np.flatnonzero(combo == t)
            img = padded[rows]
            if flip:
                img = img[:, :, ::-1]
            out[rows, 0] = img[:, SHIFT - dy : SHIFT - dy + 28, SHIFT - dx : SHIFT - dx + 28]
        return out

    def _make_distinct(self) -> int:
        """Give every item whose pixels equal an earlier item's the next transform in its
        order; returns how many were changed."""
        changed = 0
        spare: dict[int, int] = {}  # next unused position in each source image's order
        first_spare = -(-self.size // N_SOURCE)
        while True:
            seen: dict[bytes, int] = {}
            dups = []
            for start in range(0, self.size, 50_000):
                ids = np.arange(start, min(start + 50_000, self.size))
                imgs = self._transform(ids).reshape(ids.size, -1)
                for i, row in zip(ids, imgs):
                    key = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
                    if key in seen:
                        dups.append(i)
                    else:
                        seen[key] = int(i)
            if not dups:
                return changed
            changed += len(dups)
            for i in dups:
                src = int(i) % N_SOURCE
                pos = spare.get(src, first_spare)
                if pos >= len(TRANSFORMS):
                    raise RuntimeError(f"no distinct transform left for item {i}")
                self.choice[i], spare[src] = pos, pos + 1

    def read_ids(self, ids: np.ndarray, shape: Any, options: Any = None) -> Any:
        from snnfast.data import ImageBatch, convert_array

        ids = np.asarray(ids, dtype=np.int64)
        images = convert_array(self._transform(ids), shape, options)
        return ImageBatch(images, ids, self.train_labels[ids % N_SOURCE])


class PeakMemory:
    """Largest resident set of this process and its descendants, sampled in a thread, and the
    CPU time they used (user + system, every process seen, exited ones at their last sample)."""

    def __init__(self, every: float = 0.2) -> None:
        self.peak = 0
        self.stage_peak = 0
        self.cpu_ticks: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _rss_tree(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields["PPid"])
                rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
                ticks[int(entry)] = int(stat[11]) + int(stat[12])  # utime + stime
            except (OSError, KeyError, ValueError, IndexError):
                continue
        mine = {os.getpid()}
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    grew = True
        with self._lock:
            for p in mine:
                if p in ticks:
                    self.cpu_ticks[p] = ticks[p]
        return sum(rss.get(p, 0) for p in mine)

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by this process and its descendants."""
        self._rss_tree()
        with self._lock:
            return sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            now = self._rss_tree()
            self.peak = max(self.peak, now)
            self.stage_peak = max(self.stage_peak, now)

    def stage(self) -> float:
        """Peak since the last call, GB."""
        value, self.stage_peak = self.stage_peak, 0
        return value / 1e9

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _median_ms(times: list[float]) -> float:
    return float(np.median(times) * 1e3)


def _latency(search, queries: np.ndarray, batch: int, rounds: int) -> float:
    """Median milliseconds per query of ``search(queries[i:i+batch])`` over ``rounds`` calls."""
    times = []
    for r in range(rounds):
        start = (r * batch) % max(1, len(queries) - batch)
        q = queries[start : start + batch]
        t = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t) / batch)
    return _median_ms(times)


def _recall(search, queries: np.ndarray, exact: np.ndarray, batch: int = 100) -> float:
    from snnfast.metrics import recall_at_k

    found = np.concatenate([search(queries[i : i + batch]) for i in range(0, len(queries), batch)])
    return float(recall_at_k(found, exact, K))


def run_scale(
    size: int,
    out: str | os.PathLike[str] | None = None,
    *,
    plain: int = 100_000,
    n_queries: int = 10_000,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    shard_size: int = 50_000,
    lance_grid: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the whole benchmark; returns (and writes to ``out/scale.json``) the figures."""
    from snnfast import _checks
    from snnfast.ann import SHIPPED_MODEL, load_model
    from snnfast.convert import convert
    from snnfast.data import load_fashion_mnist
    from snnfast.evaluation import calibration_indices
    from snnfast.retrieval import exact_search
    from snnfast.scale import embed_catalog, embed_source, init_ray, load_catalog
    from snnfast.settings import RunSettings

    cores = _checks.all_cores()
    figures: dict[str, Any] = {
        "size": size,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": cores,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "loadavg_before": os.getloadavg(),
        "readout": READOUT,
        "timesteps": TIMESTEPS,
    }
    mem = PeakMemory()
    work = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="snnfast-scale-"))
    work.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        if progress:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    arch, state, _ = load_model(SHIPPED_MODEL)
    train, _ = load_fashion_mnist("train")
    model = convert(state, arch, calibration_images=train[calibration_indices(len(train))])
    settings = RunSettings(timesteps=TIMESTEPS)
    t = time.perf_counter()
    source = AugmentedFashionMNIST(size)
    figures["catalogue"] = {
        "make_s": time.perf_counter() - t,
        "duplicates_replaced": source.duplicates_replaced,
        "distinct": size,  # _make_distinct returned only once no two images were equal
    }
    say(f"catalogue of {size:,} distinct images ({source.duplicates_replaced} replaced)")

    n_plain = min(plain, size)
    cpu = mem.cpu_seconds()
    t = time.perf_counter()
    reference = embed_source(model, source, readout=READOUT, settings=settings, limit=n_plain)
    plain_s = time.perf_counter() - t
    figures["plain"] = {"images": n_plain, "seconds": plain_s, "images_per_s": n_plain / plain_s}
    figures["plain"]["cpu_ms_per_image"] = 1e3 * (mem.cpu_seconds() - cpu) / n_plain
    figures["plain"]["peak_gb"] = mem.stage()
    say(f"plain engine: {n_plain / plain_s:,.0f} images/s")

    t = time.perf_counter()
    ray = init_ray()
    figures["ray_init_s"] = time.perf_counter() - t
    module = sys.modules[AugmentedFashionMNIST.__module__]
    if module.__name__ != "__main__":  # imported by pytest: the workers cannot import it
        ray.cloudpickle.register_pickle_by_value(module)
    run = settings if threads_per_worker is None else settings.replace(threads=threads_per_worker)
    catalog = work / "catalog"
    cpu = mem.cpu_seconds()
    t = time.perf_counter()
    result = embed_catalog(
        source,
        model,
        catalog,
        readout=READOUT,
        settings=run,
        shard_size=shard_size,
        workers=workers,
        progress=progress,
    )
    ray_s = time.perf_counter() - t
    ray_cpu = mem.cpu_seconds() - cpu
    ray.shutdown()
    figures["ray"] = {
        "images": size,
        "seconds": ray_s,
        "images_per_s": size / ray_s,
        "shards": result.shards,
        "workers": workers,
        "threads_per_worker": run.threads or 2,
        "cpu_ms_per_image": 1e3 * ray_cpu / size,
        "peak_gb": mem.stage(),
    }
    figures["ray_overhead"] = figures["plain"]["images_per_s"] / figures["ray"]["images_per_s"] - 1
    figures["ray_cpu_overhead"] = (
        figures["ray"]["cpu_ms_per_image"] / figures["plain"]["cpu_ms_per_image"] - 1
    )
    say(f"Ray: {size / ray_s:,.0f} images/s, overhead {100 * figures['ray_overhead']:.1f} %")

    corpus = load_catalog(catalog)
    head = {f: getattr(corpus, f)[:n_plain] for f in ("vectors", "predictions", "synops", "ids")}
    figures["ray_equals_plain"] = all(np.array_equal(head[f], getattr(reference, f)) for f in head)
    del reference, head
    vectors, labels, meta = corpus.vectors, corpus.labels, corpus.meta
    del corpus
    test_x, _ = load_fashion_mnist("test", limit=n_queries)
    queries = embed_source(model, test_x, readout=READOUT, settings=settings).vectors

    t = time.perf_counter()
    exact, _ = exact_search(vectors, queries, K)
    figures["exact"] = {"queries": len(queries), "seconds": time.perf_counter() - t}
    figures["exact"]["ms_per_query"] = 1e3 * figures["exact"]["seconds"] / len(queries)
    figures["exact"]["peak_gb"] = mem.stage()
    say(f"exact search: {figures['exact']['ms_per_query']:.2f} ms/query")

    figures["hnswlib"] = _bench_hnswlib(vectors, labels, meta, queries, exact, cores)
    figures["hnswlib"]["peak_gb"] = mem.stage()
    say(f"hnswlib: {figures['hnswlib']}")
    figures["lancedb"] = _bench_lancedb(
        vectors, labels, meta, queries, exact, work, lance_grid, say
    )
    figures["lancedb"]["peak_gb"] = mem.stage()
    say(f"lancedb: {figures['lancedb']}")
    mem.stop()
    figures["peak_gb"] = mem.peak / 1e9
    figures["loadavg_after"] = os.getloadavg()
    (work / "scale.json").write_text(json.dumps(figures, indent=2, default=float))
    return figures


def _bench_hnswlib(vectors, labels, meta, queries, exact, cores) -> dict[str, Any]:
    from snnfast.retrieval import RetrievalIndex

    t = time.perf_counter()
    hnsw = RetrievalIndex.build(vectors, labels, meta, threads=cores)
    build_s = time.perf_counter() - t

    def one_thread(q):
        return hnsw.search(q, K, meta, threads=1).ids

    def all_threads(q):
        return hnsw.search(q, K, meta, threads=cores).ids

    grid = []
    for ef in (64, 128, 256):
        hnsw.params["ef"] = ef
        grid.append(
            {
                "ef": ef,
                "recall_at_10_1000q": _recall(all_threads, queries[:1000], exact[:1000]),
                "ms_per_query_batch1": _latency(one_thread, queries, 1, 300),
            }
        )
    hnsw.params["ef"] = 128
    return {
        "grid": grid,
        "params": hnsw.params,
        "build_s": build_s,
        "items_per_s": len(vectors) / build_s,
        "ms_per_query_batch1": _latency(one_thread, queries, 1, 1000),
        "ms_per_query_batch100": _latency(all_threads, queries, 100, 30),
        "recall_at_10": _recall(all_threads, queries, exact),
    }


def _bench_lancedb(vectors, labels, meta, queries, exact, work, lance_grid, say) -> dict[str, Any]:
    from snnfast.retrieval import LanceIndex

    lance_dir = work / "lance"
    t = time.perf_counter()
    LanceIndex.build(vectors, labels, meta, path=lance_dir)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    lance = LanceIndex.open(lance_dir)  # checksums of every table file verified
    open_s = time.perf_counter() - t
    lance.search(queries[:100], K, meta)  # warm the index cache
    grid = []
    if lance_grid:
        sample, sample_exact = queries[:1000], exact[:1000]
        for probes, refine in ((8, 5), (16, 10), (32, 10), (32, 20), (64, 20)):

            def some(q, p=probes, r=refine):
                return lance.search(q, K, meta, nprobes=p, refine_factor=r).ids

            grid.append(
                {
                    "nprobes": probes,
                    "refine_factor": refine,
                    "recall_at_10_1000q": _recall(some, sample, sample_exact),
                    "ms_per_query_batch1": _latency(some, queries, 1, 100),
                }
            )
            say(f"lancedb grid: {grid[-1]}")

    def default(q):
        return lance.search(q, K, meta).ids

    return {
        "params": lance.params,
        "build_s": build_s,
        "open_verified_s": open_s,
        "items_per_s": len(vectors) / build_s,
        "disk_gb": sum(f.stat().st_size for f in lance_dir.rglob("*") if f.is_file()) / 1e9,
        "ms_per_query_batch1": _latency(default, queries, 1, 300),
        "ms_per_query_batch100": _latency(default, queries, 100, 20),
        "recall_at_10": _recall(default, queries, exact),
        "grid": grid,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    flags = ""
                    break
            fh.seek(0)
            for line in fh:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = ", ".join(f for f in ("avx512f", "amx_tile") if f in have)
                    break
        return f"{name} ({flags})" if flags else name
    except (OSError, UnboundLocalError):
        return platform.processor() or "unknown"


def table(f: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    h, lance, cat, plain, ray = f["hnswlib"], f["lancedb"], f["catalogue"], f["plain"], f["ray"]
    rows = [
        (
            "catalogue",
            f"{f['size']:,} distinct images ({cat['duplicates_replaced']} duplicates replaced), "
            f"made in {cat['make_s']:.0f} s",
        ),
        ("plain engine", f"{plain['images_per_s']:,.0f} images/s ({plain['images']:,} images)"),
        (
            "Ray",
            f"{ray['images_per_s']:,.0f} images/s ({ray['seconds']:.0f} s, {ray['shards']} "
            f"shards; starting Ray, {f['ray_init_s']:.0f} s, not counted)",
        ),
        (
            "Ray overhead",
            f"{100 * f['ray_overhead']:+.1f} % in wall time, {100 * f['ray_cpu_overhead']:+.1f} % "
            f"in CPU time per image ({ray['cpu_ms_per_image']:.3f} against "
            f"{plain['cpu_ms_per_image']:.3f} ms; goal <= 15 %); equal to the plain engine bit "
            f"for bit: {f['ray_equals_plain']}",
        ),
        (
            "exact search",
            f"{f['exact']['ms_per_query']:.1f} ms/query ({f['exact']['queries']:,} queries)",
        ),
        ("hnswlib build", f"{h['build_s']:.0f} s ({h['items_per_s']:,.0f} items/s), {h['params']}"),
        (
            "hnswlib query, batch 1 / 100",
            f"{h['ms_per_query_batch1']:.3f} / {h['ms_per_query_batch100']:.3f} ms per query",
        ),
        ("hnswlib recall@10", f"{h['recall_at_10']:.4f} (goal >= 0.99)"),
        (
            "LanceDB build",
            f"{lance['build_s']:.0f} s ({lance['items_per_s']:,.0f} items/s), "
            f"{lance['disk_gb']:.2f} GB on disk; opening with checksums "
            f"{lance['open_verified_s']:.1f} s",
        ),
        (
            "LanceDB query, batch 1 / 100",
            f"{lance['ms_per_query_batch1']:.2f} / {lance['ms_per_query_batch100']:.2f} "
            "ms per query",
        ),
        (
            "LanceDB recall@10",
            f"{lance['recall_at_10']:.4f} (goal >= 0.95 at <= 5 ms/query), {lance['params']}",
        ),
        ("peak memory", f"{f['peak_gb']:.1f} GB (all processes of the run)"),
        ("load average before / after", f"{f['loadavg_before']} / {f['loadavg_after']}"),
    ]
    lines = ["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    lines += ["", "| hnswlib ef | recall@10 (1,000 queries) | ms/query, batch 1 |", "|---|---|---|"]
    lines += [
        f"| {g['ef']} | {g['recall_at_10_1000q']:.4f} | {g['ms_per_query_batch1']:.3f} |"
        for g in h["grid"]
    ]
    if lance["grid"]:
        lines += [
            "",
            "| LanceDB nprobes | refine_factor | recall@10 (1,000 queries) | ms/query, batch 1 |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {g['nprobes']} | {g['refine_factor']} | {g['recall_at_10_1000q']:.4f} | "
            f"{g['ms_per_query_batch1']:.2f} |"
            for g in lance["grid"]
        ]
    return "\n".join(lines)


def tune_lance(work: str | os.PathLike[str], n_queries: int = 1000) -> dict[str, Any]:
    """After :func:`run_scale`: recall and latency of LanceDB IVF-PQ with larger re-ranking
    pools, on the saved index, and of a second index with twice the PQ sub-vectors (``D / 8``),
    against exact search on the first ``n_queries`` test images. Writes ``tune.json``."""
    from snnfast.retrieval import LanceIndex, exact_search
    from snnfast.scale import load_catalog

    work = Path(work)
    corpus = load_catalog(work / "catalog")
    vectors, labels, meta = corpus.vectors, corpus.labels, corpus.meta
    del corpus
    queries = _queries(n_queries)
    exact, _ = exact_search(vectors, queries, K)
    out: dict[str, Any] = {"queries": n_queries, "loadavg_before": os.getloadavg(), "runs": []}

    def measure(store: LanceIndex, name: str, probes: int, refine: int) -> None:
        def some(q):
            return store.search(q, K, meta, nprobes=probes, refine_factor=refine).ids

        some(queries[:100])
        row = {
            "index": name,
            "nprobes": probes,
            "refine_factor": refine,
            "recall_at_10": _recall(some, queries, exact),
            "ms_per_query_batch1": _latency(some, queries, 1, 200),
            "ms_per_query_batch100": _latency(some, queries, 100, 10),
        }
        out["runs"].append(row)
        print(row, flush=True)

    default = LanceIndex.open(work / "lance")
    for probes, refine in ((16, 50), (32, 50), (32, 100)):
        measure(default, f"sub_vectors {default.params['num_sub_vectors']}", probes, refine)
    t = time.perf_counter()
    fine = LanceIndex.build(
        vectors, labels, meta, path=work / "lance-d8", num_sub_vectors=meta.dim // 8
    )
    out["d8_build_s"] = time.perf_counter() - t
    del vectors
    for probes, refine in ((16, 10), (16, 20), (32, 20), (16, 50), (32, 50)):
        measure(fine, f"sub_vectors {fine.params['num_sub_vectors']}", probes, refine)
    out["loadavg_after"] = os.getloadavg()
    (work / "tune.json").write_text(json.dumps(out, indent=2, default=float))
    return out


def _queries(n: int) -> np.ndarray:
    from snnfast.ann import SHIPPED_MODEL, load_model
    from snnfast.convert import convert
    from snnfast.data import load_fashion_mnist
    from snnfast.evaluation import calibration_indices
    from snnfast.scale import embed_source
    from snnfast.settings import RunSettings

    arch, state, _ = load_model(SHIPPED_MODEL)
    train, _ = load_fashion_mnist("train")
    model = convert(state, arch, calibration_images=train[calibration_indices(len(train))])
    test_x, _ = load_fashion_mnist("test", limit=n)
    settings = RunSettings(timesteps=TIMESTEPS)
    return embed_source(model, test_x, readout=READOUT, settings=settings).vectors


@pytest.mark.slow
def test_scale_small(tmp_path) -> None:
    """The whole benchmark at ``$SNNFAST_SCALE_SIZE`` images (default 20,000)."""
    size = int(os.environ.get("SNNFAST_SCALE_SIZE", "20000"))
    f = run_scale(size, tmp_path, plain=min(size, 5000), n_queries=500, lance_grid=False)
    print("\n" + table(f))
    assert f["ray_equals_plain"]
    assert f["hnswlib"]["recall_at_10"] >= 0.99
    assert f["lancedb"]["recall_at_10"] >= 0.9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=1_000_000, help="catalogue images")
    p.add_argument("--out", default="runs/scale", help="work folder (catalogue, LanceDB, JSON)")
    p.add_argument("--plain", type=int, default=100_000, help="images for the plain engine")
    p.add_argument("--queries", type=int, default=10_000, help="test images as queries")
    p.add_argument("--workers", type=int, default=None, help="Ray workers")
    p.add_argument("--threads-per-worker", type=int, default=None, help="engine threads each")
    p.add_argument(
        "--tune-lance",
        action="store_true",
        help="after a run into --out: LanceDB with larger re-ranking and D / 8 sub-vectors",
    )
    args = p.parse_args(argv)
    if args.tune_lance:
        tune_lance(args.out)
        return 0
    f = run_scale(
        args.size,
        args.out,
        plain=args.plain,
        n_queries=args.queries,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        progress=True,
    )
    print(table(f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
