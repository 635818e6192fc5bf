"""The zoo table: six CNN shapes on Fashion-MNIST, converted with snnfast.from_torch.

Regenerate (from the repository root, after `make setup`; about two hours on 2 cores):

    .venv/bin/python notes/zoo/run.py train      # trains the five zoo entries into runs/zoo/
    .venv/bin/python notes/zoo/run.py evaluate   # converts, simulates, scores -> notes/zoo/

Uses only snnfast's public API. Each entry's figures are cached in runs/zoo/<name>.json, so an
interrupted run resumes. For every entry: the ANN's test accuracy, the SNN's at T = 16, 32, 64
and 128 (one simulation read out at each), retrieval top-1 (10,000 training images as the
corpus, the 10,000 test images as queries, spike-count readout, cosine HNSW), and the Loihi 1
mapping (cores) and energy per inference at T = 64 (chip model, 200 test images), for two
conversions: Algorithm 1 as the paper states it, and the low-latency options
(ConversionConfig(v_init=0.5, rounding="round")).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from snnfast import zoo
from snnfast.chip import estimate_network
from snnfast.convert import ConversionConfig
from snnfast.data import load_fashion_mnist
from snnfast.evaluation import calibration_images, evaluate_model, recall_sample
from snnfast.torch_graph import from_torch

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs" / "zoo"
OUT = Path(__file__).resolve().parent
STEPS = (16, 32, 64, 128)
CONFIGS = {
    "faithful": ConversionConfig(),
    "v_init 0.5, round": ConversionConfig(v_init=0.5, rounding="round"),
}
N_CORPUS = 10_000


def train() -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    for name, entry in zoo.ENTRIES.items():
        path = RUNS / f"{name}.npz"
        if entry.trained and not path.exists():
            rec = zoo.train_entry(name, path, epochs=12)
            print(json.dumps(rec.to_json()), flush=True)


def _model(name: str):
    entry = zoo.ENTRIES[name]
    if not entry.trained:
        return entry.factory(), None
    model, rec = zoo.load(RUNS / f"{name}.npz")
    return model, rec


def evaluate_entry(name: str) -> dict:
    entry = zoo.ENTRIES[name]
    model, rec = _model(name)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    calib = zoo.prepare(calibration_images(x_train), entry.input_shape)
    corpus = zoo.prepare(x_train[:N_CORPUS], entry.input_shape)
    queries = zoo.prepare(x_test, entry.input_shape)
    out: dict = {
        "name": name,
        "input": list(entry.input_shape),
        "parameters": sum(int(p.numel()) for p in model.parameters()),
        "training": None if rec is None else rec.to_json(),
        "conversions": {},
    }
    for label, config in CONFIGS.items():
        t0 = time.perf_counter()
        snn = from_torch(model, calib, config=config)
        rows = evaluate_model(
            snn,
            corpus,
            y_train[:N_CORPUS],
            queries,
            y_test,
            STEPS,
            ("spike_count",),
            recall_ids=recall_sample(len(queries), 500),
            progress=False,
        )
        mapping, energy = estimate_network(
            snn.network, queries[:200], snn.settings.replace(timesteps=64)
        )
        out["layers"] = snn.network.n_layers
        out["conversions"][label] = {
            "thresholds": snn.thresholds,
            "scores": [r.scores.to_json() for r in rows],
            "cores": mapping.n_cores,
            "chips": mapping.n_chips,
            "energy_mj_t64": energy.total_energy_j * 1e3,
            "dynamic_mj_t64": energy.dynamic_energy_j * 1e3,
            "latency_ms_t64": energy.latency_s * 1e3,
            "seconds": time.perf_counter() - t0,
        }
        print(name, label, [(r.scores.name, r.scores.classification) for r in rows], flush=True)
    return out


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def render(results: list[dict]) -> str:
    lines = [
        "# The zoo: any CNN through `snnfast.from_torch`",
        "",
        "Six CNN shapes trained on Fashion-MNIST (`snnfast.zoo`; inputs zero-padded to 32 x 32 and",
        "repeated to three channels where the architecture wants it), converted with",
        "`snnfast.from_torch` and simulated by the engine. Regenerate with",
        "`.venv/bin/python notes/zoo/run.py train` then `... evaluate` (see the script's",
        "docstring). Test accuracy on the 10,000 test images, percent; retrieval top-1 with",
        "10,000 training images as the corpus (spike-count readout at T = 64); Loihi 1 chip model",
        "at T = 64 (200 test images).",
        "",
    ]
    for label in CONFIGS:
        lines += [
            f"## Conversion: {label}",
            "",
            "| model | input | params | SNN layers | ANN | T=16 | T=32 | T=64 | T=128 | "
            "ANN−SNN(64) | top-1 ANN / SNN(64) | Loihi 1 cores | mJ / inference |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            c = r["conversions"][label]
            by = {(s["name"], s["readout"]): s for s in c["scores"]}
            ann = by[("ANN", "ann")]
            snn = {t: by[(f"SNN({t})", "spike_count")] for t in STEPS}
            gap = ann["classification"] - snn[64]["classification"]
            lines.append(
                f"| {r['name']} | {'x'.join(map(str, r['input']))} | {r['parameters']:,} | "
                f"{r['layers']} | {_pct(ann['classification'])} | "
                + " | ".join(_pct(snn[t]["classification"]) for t in STEPS)
                + f" | {100 * gap:+.2f} | {_pct(ann['top1'])} / {_pct(snn[64]['top1'])} | "
                f"{c['cores']} ({c['chips']} chip{'s' if c['chips'] > 1 else ''}) | "
                f"{c['energy_mj_t64']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def evaluate(names: list[str]) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names or list(zoo.ENTRIES):
        cache = RUNS / f"{name}.json"
        if cache.exists():
            results.append(json.loads(cache.read_text()))
            continue
        r = evaluate_entry(name)
        _write(cache, json.dumps(r, indent=1))
        results.append(r)
    _write(OUT / "results.json", json.dumps(results, indent=1))
    _write(OUT / "README.md", render(results))


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"]:
        train()
    elif sys.argv[1:2] == ["evaluate"]:
        evaluate(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
