"""The zoo table: six CNN shapes on Fashion-MNIST, converted with snnfast.from_torch.

Regenerate (from the repository root, after `make setup`; about two hours on 2 cores):

    .venv/bin/python notes/zoo/run.py train      # trains the five zoo entries into runs/zoo/
    .venv/bin/python notes/zoo/run.py evaluate   # converts, simulates, scores -> notes/zoo/

Uses only snnfast's public API. Each entry's figures are cached in runs/zoo/<name>.json, so an
interrupted run resumes. For every entry: the ANN's test accuracy, the SNN's at T = 16, 32, 64
and 128 (one simulation read out at each), retrieval top-1 (the first ZOO_CORPUS training
images as the corpus, default 10,000, the first ZOO_QUERIES test images as queries, default
10,000; spike-count readout, cosine HNSW), and the Loihi 1 mapping (cores) and energy per
inference at T = 64 (counted runs, 200 test images), for three conversions: Algorithm 1 as the
paper states it, the low-latency options (ConversionConfig(v_init=0.5, rounding="round")), and
those with the 99.5th activation percentile as threshold (weights clipped to 9 bits).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from snnfast import zoo
from snnfast.chip import Loihi1, estimate_network
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
    # Deep networks pass activity on more slowly: a lower threshold percentile fires sooner.
    "v_init 0.5, round, 99.5th percentile": ConversionConfig(
        v_init=0.5, rounding="round", activation_percentile=99.5, clip=True
    ),
}
# Corpus and query counts (the first images of the training and test sets); smaller counts
# for a quicker run are recorded with each entry's figures.
CHIP_MODEL = "counted runs, Loihi 1 (Davies et al. 2018)"
N_CORPUS = int(os.environ.get("ZOO_CORPUS", "10000"))
N_QUERIES = int(os.environ.get("ZOO_QUERIES", "10000"))


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


def evaluate_entry(name: str, prior: dict | None = None) -> dict:
    """Every conversion of :data:`CONFIGS` not already in ``prior`` (a cached entry, whose
    corpus and query counts are kept)."""
    entry = zoo.ENTRIES[name]
    model, rec = _model(name)
    n_corpus = N_CORPUS if prior is None else prior.get("corpus", 10_000)
    n_queries = N_QUERIES if prior is None else prior.get("queries", 10_000)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    calib = zoo.prepare(calibration_images(x_train), entry.input_shape)
    corpus = zoo.prepare(x_train[:n_corpus], entry.input_shape)
    queries = zoo.prepare(x_test[:n_queries], entry.input_shape)
    y_test = y_test[:n_queries]
    out: dict = prior or {
        "name": name,
        "input": list(entry.input_shape),
        "parameters": sum(int(p.numel()) for p in model.parameters()),
        "training": None if rec is None else rec.to_json(),
        "conversions": {},
    }
    out["corpus"], out["queries"] = n_corpus, n_queries
    for label, config in CONFIGS.items():
        if label in out["conversions"]:
            continue
        t0 = time.perf_counter()
        snn = from_torch(model, calib, config=config)
        rows = evaluate_model(
            snn,
            corpus,
            y_train[:n_corpus],
            queries,
            y_test,
            STEPS,
            ("spike_count",),
            recall_ids=recall_sample(len(queries), 500),
            progress=False,
        )
        out["layers"] = snn.network.n_layers
        out["conversions"][label] = {
            "thresholds": snn.thresholds,
            "scores": [r.scores.to_json() for r in rows],
            **chip_figures(snn, queries),
            "seconds": time.perf_counter() - t0,
        }
        print(name, label, [(r.scores.name, r.scores.classification) for r in rows], flush=True)
    return out


def chip_figures(snn, queries) -> dict:
    """Loihi 1 (Davies et al. 2018's figures, as many chips as it takes) at T = 64."""
    mapping, energy = estimate_network(
        snn.network, queries[:200], snn.settings.replace(timesteps=64), Loihi1(max_chips=None)
    )
    return {
        "chip_model": CHIP_MODEL,
        "cores": mapping.n_cores,
        "chips": mapping.n_chips,
        "energy_mj_t64": energy.total_energy_j * 1e3,
        "dynamic_mj_t64": energy.dynamic_energy_j * 1e3,
        "latency_ms_t64": energy.latency_s * 1e3,
    }


def recost(r: dict) -> dict:
    """The chip figures of a cached entry again, with this version's chip model."""
    entry = zoo.ENTRIES[r["name"]]
    model, _ = _model(r["name"])
    x_train, _ = load_fashion_mnist("train")
    x_test, _ = load_fashion_mnist("test", limit=200)
    calib = zoo.prepare(calibration_images(x_train), entry.input_shape)
    queries = zoo.prepare(x_test, entry.input_shape)
    for label, config in CONFIGS.items():
        snn = from_torch(model, calib, config=config)
        assert list(snn.thresholds) == list(r["conversions"][label]["thresholds"]), "not the same"
        r["conversions"][label].update(chip_figures(snn, queries))
    return r


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
        "docstring). Test accuracy on the first *queries* test images, percent; retrieval top-1",
        "with the first *corpus* training images as the corpus (spike-count readout at T = 64);",
        "Loihi 1 chip model at T = 64 (200 test images). Entries evaluated on fewer images than",
        "the whole test set say so in the table (`ZOO_QUERIES` / `ZOO_CORPUS`, to fit the time).",
        "",
    ]
    for label in CONFIGS:
        lines += [
            f"## Conversion: {label}",
            "",
            "| model | input | params | SNN layers | queries / corpus | ANN | T=16 | T=32 | T=64 | "
            "T=128 | ANN−SNN(64) | top-1 ANN / SNN(64) | Loihi 1 cores | mJ / inference |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            c = r["conversions"][label]
            by = {(s["name"], s["readout"]): s for s in c["scores"]}
            ann = by[("ANN", "ann")]
            snn = {t: by[(f"SNN({t})", "spike_count")] for t in STEPS}
            gap = ann["classification"] - snn[64]["classification"]
            lines.append(
                f"| {r['name']} | {'x'.join(map(str, r['input']))} | {r['parameters']:,} | "
                f"{r['layers']} | {r.get('queries', 10000):,} / {r.get('corpus', 10000):,} | "
                f"{_pct(ann['classification'])} | "
                + " | ".join(_pct(snn[t]["classification"]) for t in STEPS)
                + f" | {100 * gap:+.2f} | {_pct(ann['top1'])} / {_pct(snn[64]['top1'])} | "
                f"{c['cores']} ({c['chips']} chip{'s' if c['chips'] > 1 else ''}) | "
                f"{c['energy_mj_t64']:.2f} |"
            )
        lines.append("")
    lines += ["## Best conversion per model at T = 64", ""]
    within = 0
    for r in results:
        gaps = {}
        for label in CONFIGS:
            by = {(x["name"], x["readout"]): x for x in r["conversions"][label]["scores"]}
            ann = by[("ANN", "ann")]["classification"]
            gaps[label] = ann - by[("SNN(64)", "spike_count")]["classification"]
        best = min(gaps, key=lambda k: gaps[k])
        within += gaps[best] <= 0.015
        lines.append(f"- {r['name']}: ANN−SNN(64) {100 * gaps[best]:+.2f} points ({best})")
    lines += [
        "",
        f"Within 1.5 points of the ANN at T = 64: {within} of {len(results)} (the target).",
        "",
    ]
    return "\n".join(lines)


def evaluate(names: list[str]) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    results = []
    missing = []
    for name in names or list(zoo.ENTRIES):
        cache = RUNS / f"{name}.json"
        if zoo.ENTRIES[name].trained and not (RUNS / f"{name}.npz").exists():
            missing.append(name)
            continue
        if cache.exists():
            r = json.loads(cache.read_text())
            if set(r["conversions"]) != set(CONFIGS):
                r = evaluate_entry(name, r)
                _write(cache, json.dumps(r, indent=1))
            if any(c.get("chip_model") != CHIP_MODEL for c in r["conversions"].values()):
                r = recost(r)
                _write(cache, json.dumps(r, indent=1))
            results.append(r)
            continue
        r = evaluate_entry(name)
        _write(cache, json.dumps(r, indent=1))
        results.append(r)
    _write(OUT / "results.json", json.dumps(results, indent=1))
    text = render(results)
    if missing:
        text += f"\nNot trained in this run, so not in the table: {', '.join(missing)}.\n"
    _write(OUT / "README.md", text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"]:
        train()
    elif sys.argv[1:2] == ["evaluate"]:
        evaluate(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
