"""Load on ``snnfast serve``: queries per second and latency at 1, 8 and 32 concurrent clients.

The set-up is the README's: the shipped 32-64-10 converted with Algorithm 1's defaults
(``snnfast convert python/snnfast/weights/fmnist-32-64-10.npz --out m.npz``), the 60,000
Fashion-MNIST training images embedded with the ``spike_count`` readout at T = 16 and indexed
with hnswlib (``snnfast embed`` / ``snnfast index``), served with ``--images train``. The files
are made once in ``--out`` and reused.

Measured in one run:

1. the baseline: :meth:`snnfast.serve.SearchService.search_upload` called in this process on
   one thread, no HTTP (median latency), with and without the chip estimate;
2. the server (``snnfast serve``, a subprocess, its default workers, with ``--processes`` 1
   and 2) under 1, 8 and 32 clients (threads of this process, one keep-alive connection each),
   each uploading PNG files of Fashion-MNIST test images in turn for ``--seconds`` after a
   warm-up: completed queries per second, p50 / p99 latency seen by the client, the server's
   own time per search (``timing.total_ms`` of the answers) and the ratio of the p50 to the
   baseline (at one client: the cost of HTTP, the form and JSON). Every answer is checked:
   status 200 and the same neighbours as the baseline found for that image.

The clients share the machine with the server (and, here, with other jobs: the load average
before and after is recorded). Small version (pytest, marked slow):
``SNNFAST_SERVE_ITEMS=2000 pytest benches/bench_serve.py``. The full run:
``python benches/bench_serve.py --out runs/serve`` (writes ``runs/serve/serve.json``).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

READOUT = "spike_count"
TIMESTEPS = 16
K = 10
CLIENTS = (1, 8, 32)
N_QUERIES = 1000


def prepare(out: Path, items: int | None) -> tuple[Path, Path]:
    """The converted model and the index in ``out`` (made with the command line if missing)."""
    from snnfast import ann, cli

    out.mkdir(parents=True, exist_ok=True)
    model, emb = out / "m.npz", out / "train.npz"
    index = out / ("index.bin" if items is None else f"index-{items}.bin")
    if not model.exists():
        assert cli.main(["-q", "convert", str(ann.SHIPPED_MODEL), "--out", str(model)]) == 0
    if not index.exists():
        limit = [] if items is None else ["--limit", str(items)]
        run = ["--readout", READOUT, "--timesteps", str(TIMESTEPS), *limit]
        assert cli.main(["-q", "embed", str(model), "train", *run, "--out", str(emb)]) == 0
        assert cli.main(["-q", "index", str(emb), "--out", str(index)]) == 0
        emb.unlink()
    return model, index


def queries(n: int) -> list[bytes]:
    """PNG files of the first ``n`` Fashion-MNIST test images."""
    from PIL import Image

    from snnfast.data import load_fashion_mnist

    x, _ = load_fashion_mnist("test", limit=n)
    files = []
    for image in x[:, 0]:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        files.append(buf.getvalue())
    return files


def form(png: bytes, chip: bool) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (("k", K), ("chip", "true" if chip else "false"))
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    body = b"".join(parts) + head + png + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def baseline(model: Path, index: Path, files: list[bytes], n: int) -> dict[str, Any]:
    """In-process searches, one thread: latency and every image's neighbours."""
    from threadpoolctl import threadpool_limits

    from snnfast.serve import SearchOptions, SearchService

    threadpool_limits(1, "blas")
    service = SearchService.open(model, [index], images="train")
    expected = []
    for png in files:
        r = service.search_upload(png, "q.png", SearchOptions(k=K, chip=False))
        expected.append([n.id for n in r.snn.items])
    out: dict[str, Any] = {"expected": expected}
    for chip in (True, False):
        times = []
        for png in files[:n]:
            t = time.perf_counter()
            service.search_upload(png, "q.png", SearchOptions(k=K, chip=chip))
            times.append(time.perf_counter() - t)
        out["chip" if chip else "no_chip"] = {
            "p50_ms": float(np.median(times)) * 1e3,
            "mean_ms": float(np.mean(times)) * 1e3,
        }
    return out


class Serve:
    """``snnfast serve`` in a subprocess on a free port of 127.0.0.1."""

    def __init__(self, model: Path, index: Path, processes: int = 1) -> None:
        cmd = [sys.executable, "-m", "snnfast.cli", "serve", "--model", str(model)]
        cmd += ["--index", str(index), "--images", "train", "--port", "0"]
        cmd += ["--processes", str(processes)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"snnfast serve did not start: {line!r}")
        host_port = line.split()[2][len("http://") :].rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def load(
    server: Serve,
    files: list[bytes],
    expected: list[list[int]],
    clients: int,
    seconds: float,
    warmup: float,
    chip: bool,
    processes: int,
) -> dict[str, Any]:
    """``clients`` threads sending searches for ``warmup + seconds``; the figures of the last
    ``seconds``."""
    bodies = [form(png, chip) for png in files]
    start = time.perf_counter()
    t_begin, t_end = start + warmup, start + warmup + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    work: list[list[float]] = [[] for _ in range(clients)]  # the server's own total_ms
    failures: list[str] = []

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        i = c
        while (now := time.perf_counter()) < t_end:
            body, kind = bodies[i % len(bodies)]
            conn.request("POST", "/search", body=body, headers={"Content-Type": kind})
            reply = conn.getresponse()
            data = reply.read()
            done = time.perf_counter()
            if reply.status != 200:
                failures.append(f"{reply.status}: {data[:200]!r}")
            else:
                answer = json.loads(data)
                ids = [n["id"] for n in answer["snn"]["items"]]
                want = expected[i % len(bodies)]
                if ids != want:
                    failures.append(f"query {i % len(bodies)}: {ids} != {want}")
            if now >= t_begin and done <= t_end:
                latencies[c].append(done - now)
                if reply.status == 200:
                    work[c].append(answer["timing"]["total_ms"])
            i += clients
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = np.concatenate([np.asarray(x) for x in latencies]) * 1e3
    return {
        "processes": processes,
        "clients": clients,
        "chip": chip,
        "queries": int(lat.size),
        "qps": float(lat.size / seconds),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "server_p50_ms": float(np.median(np.concatenate([np.asarray(x) for x in work]))),
        "failures": len(failures),
        "first_failures": failures[:3],
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
        flags = next(line.split(":", 1)[1].split() for line in info if line.startswith("flags"))
        extras = [
            name for flag, name in (("avx512f", "AVX-512"), ("amx_tile", "AMX")) if flag in flags
        ]
        if extras:
            cpu += f" ({', '.join(extras)})"
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "fastapi": version("fastapi"),
        "uvicorn": version("uvicorn"),
    }


def run_serve(
    out: str | os.PathLike[str],
    *,
    items: int | None = None,
    seconds: float = 20.0,
    warmup: float = 3.0,
    baseline_queries: int = 300,
    processes: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    """The whole benchmark (``items`` first training images in the index, default all)."""
    work = Path(out)
    model, index = prepare(work, items)
    files = queries(N_QUERIES)
    f: dict[str, Any] = {"machine": machine(), "loadavg_before": os.getloadavg()}
    f["index_items"] = 60_000 if items is None else items
    base = baseline(model, index, files, baseline_queries)
    expected = base.pop("expected")
    f["baseline"] = base
    f["load"] = []
    for n in processes:
        server = Serve(model, index, n)
        try:
            f["load"] += [
                load(server, files, expected, c, seconds, warmup, chip, n)
                for chip in (True, False)
                for c in CLIENTS
            ]
        finally:
            server.close()
    f["loadavg_after"] = os.getloadavg()
    for row in f["load"]:
        one = base["chip" if row["chip"] else "no_chip"]["p50_ms"]
        row["p50_over_baseline"] = row["p50_ms"] / one
    (work / "serve.json").write_text(json.dumps(f, indent=2))
    return f


def table(f: dict[str, Any]) -> str:
    m = f["machine"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, {m['date']}; index of {f['index_items']:,} images "
        f"({READOUT}, T = {TIMESTEPS}), k = {K}; load average "
        f"{f['loadavg_before'][0]:.2f} before, {f['loadavg_after'][0]:.2f} after",
        f"baseline (in process, one thread): {f['baseline']['chip']['p50_ms']:.2f} ms with the "
        f"chip estimate, {f['baseline']['no_chip']['p50_ms']:.2f} ms without (p50)",
        "",
        "| processes | chip estimate | clients | queries/s | p50 ms | p99 ms | p50 / baseline | "
        "server's own p50 ms | failures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in f["load"]:
        lines.append(
            f"| {r['processes']} | {'yes' if r['chip'] else 'no'} | {r['clients']} | "
            f"{r['qps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['p50_over_baseline']:.2f} | {r['server_p50_ms']:.1f} | {r['failures']} |"
        )
    return "\n".join(lines)


@pytest.mark.slow
def test_serve_load_small(tmp_path) -> None:
    """The benchmark on an index of ``$SNNFAST_SERVE_ITEMS`` images (default 2,000), briefly."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    items = int(os.environ.get("SNNFAST_SERVE_ITEMS", "2000"))
    f = run_serve(
        tmp_path, items=items, seconds=3.0, warmup=1.0, baseline_queries=50, processes=(1, 2)
    )
    print("\n" + table(f))
    assert all(r["failures"] == 0 and r["queries"] > 0 for r in f["load"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/serve", help="work folder (model, index, JSON)")
    p.add_argument("--items", type=int, default=None, help="first N training images only")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    p.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="server processes to measure"
    )
    args = p.parse_args(argv)
    f = run_serve(
        args.out,
        items=args.items,
        seconds=args.seconds,
        warmup=args.warmup,
        processes=tuple(args.processes),
    )
    print(table(f))
    return 0 if all(r["failures"] == 0 for r in f["load"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
