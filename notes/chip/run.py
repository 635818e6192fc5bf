"""The chip model's figures: snnfast against SANA-FE, both Loihi 1 profiles against the paper's
two measurements, and the Table 1 deployability check.

Regenerate (from the repository root, after `make setup`; a few minutes on 2 cores, about 5 GB
of memory for SANA-FE's chip build):

    .venv/bin/python notes/chip/run.py            # -> notes/chip/report.md (and report.json)
    .venv/bin/python notes/chip/run.py --sanafe-images 2 --paper-images 50   # quicker

The network is the shipped 32-64-10 converted with Algorithm 1 (snnfast.evaluation), on the
first test images of Fashion-MNIST. The engine slowdown with a mapping is a benchmark:
``.venv/bin/python -m pytest benches/bench_chip.py --benchmark-only -s``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from snnfast.chip import PROFILES, estimate_energy, map_network, run_chip_checkpoints, sanafe
from snnfast.data import load_fashion_mnist
from snnfast.evaluation import calibrate_and_convert
from snnfast.paper.published import PAPER_LOIHI
from snnfast.paper.table1 import table1_deployability

OUT = Path(__file__).resolve().parent
STEPS = (16, 128)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _pct(ours: float, ref: float) -> str:
    return f"{100 * (ours / ref - 1):+.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sanafe-images", type=int, default=4)
    ap.add_argument("--paper-images", type=int, default=100)
    args = ap.parse_args()
    train, _ = load_fashion_mnist("train")
    net = calibrate_and_convert(None, train).network
    n = max(args.sanafe_images, args.paper_images)
    test, _ = load_fashion_mnist("test", limit=n)
    lines = [
        "# The chip model against SANA-FE and the paper",
        "",
        f"Generated {datetime.date.today().isoformat()} by `notes/chip/run.py "
        f"--sanafe-images {args.sanafe_images} --paper-images {args.paper_images}` on "
        f"{_cpu()}; the shipped 32-64-10 (Algorithm 1), first Fashion-MNIST test images.",
        "",
    ]
    data: dict = {"cpu": _cpu(), "sanafe": [], "paper": [], "table1": []}

    # 1. SANA-FE, same network, placement, input and constants
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the weight-exponent note
        mapping = map_network(net, PROFILES["loihi1-sanafe"])
    lines += [
        f"## snnfast against SANA-FE {sanafe.SANAFE_VERSION} ({args.sanafe_images} images, "
        f"{mapping.n_cores} cores)",
        "",
        "Per inference, dynamic energy and the time of the steps (no fixed host overhead: "
        "SANA-FE models none). snnfast runs the `loihi1-sanafe` profile on the same placement "
        "with one compartment per neuron and `delay = 1`, as SANA-FE simulates it.",
        "",
        "| T | SANA-FE timing | spikes equal | energy ours | energy SANA-FE | diff | "
        "latency ours | latency SANA-FE | diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in STEPS:
        for c in sanafe.compare(mapping, test[: args.sanafe_images], t):
            eo = sum(c.ours_energy_j) / c.n_images
            es = sum(c.sanafe_energy_j) / c.n_images
            lo = sum(c.ours_latency_s) / c.n_images
            ls = sum(c.sanafe_latency_s) / c.n_images
            lines.append(
                f"| {t} | {c.timing_model} | {c.spikes_equal} | {eo * 1e3:.4f} mJ | "
                f"{es * 1e3:.4f} mJ | {_pct(eo, es)} | {lo * 1e6:.1f} µs | {ls * 1e6:.1f} µs | "
                f"{_pct(lo, ls)} |"
            )
            data["sanafe"].append(
                {
                    "timesteps": t,
                    "timing": c.timing_model,
                    "spikes_equal": c.spikes_equal,
                    "ours_energy_j": eo,
                    "sanafe_energy_j": es,
                    "ours_latency_s": lo,
                    "sanafe_latency_s": ls,
                    "ours_parts_j": c.ours_parts_j,
                    "sanafe_parts_j": c.sanafe_parts_j,
                }
            )
    overhead = PROFILES["loihi1"].costs.fixed_overhead_s or 0.0
    lines += [
        "",
        f"SANA-FE's detailed step time plus the profiles' fixed host overhead "
        f"({overhead * 1e3:.2f} ms) beside the paper's measured latency:",
        "",
    ]
    for row in data["sanafe"]:
        if row["timing"] == "detailed":
            lat, paper = overhead + row["sanafe_latency_s"], PAPER_LOIHI[row["timesteps"]]
            lines.append(
                f"- T = {row['timesteps']}: {lat * 1e3:.3f} ms against "
                f"{paper.latency_s * 1e3:.3f} ms ({_pct(lat, paper.latency_s)})"
            )
    lines.append("")

    # 2. both Loihi 1 profiles against the paper's measurements
    lines += [
        f"## Both Loihi 1 profiles against the paper ({args.paper_images} images, the "
        "converted model's own settings)",
        "",
        "| profile | T | latency ours | paper | diff | dynamic energy ours | paper | diff | "
        "total energy ours | paper | diff | synaptic / update / routing |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    imgs = test[: args.paper_images]
    for name in ("loihi1", "loihi1-sanafe"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            m = map_network(net, PROFILES[name])
        for rep in map(estimate_energy, run_chip_checkpoints(m, imgs, STEPS)):
            p = PAPER_LOIHI[rep.timesteps]
            split = [float(x.mean()) for x in (rep.synaptic_j, rep.update_j, rep.routing_j)]
            parts = " / ".join(f"{x * 1e3:.4f}" for x in split) + " mJ"
            lines.append(
                f"| {name} | {rep.timesteps} | {rep.latency_s * 1e3:.3f} ms | "
                f"{p.latency_s * 1e3:.3f} ms | {_pct(rep.latency_s, p.latency_s)} | "
                f"{rep.dynamic_energy_j * 1e3:.4f} mJ | {p.dynamic_energy_j * 1e3:.4f} mJ | "
                f"{_pct(rep.dynamic_energy_j, p.dynamic_energy_j)} | "
                f"{rep.total_energy_j * 1e3:.3f} mJ | {p.energy_j * 1e3:.3f} mJ | "
                f"{_pct(rep.total_energy_j, p.energy_j)} | {parts} |"
            )
            data["paper"].append(
                {
                    "profile": name,
                    "timesteps": rep.timesteps,
                    "latency_s": rep.latency_s,
                    "dynamic_energy_j": rep.dynamic_energy_j,
                    "total_energy_j": rep.total_energy_j,
                    "step_s": rep.step_s,
                    "n_cores": rep.n_cores,
                    "parts_j": split,
                }
            )
    lines.append("")

    # 3. Table 1 deployability on one Loihi 1 chip
    rows = table1_deployability()
    fits = sum(ok or cores is not None for _, ok, _, cores, _ in rows)
    lines += [
        f"## Table 1 deployability (Loihi 1): {fits} of {len(rows)} map (on one chip or more)",
        "",
        "| network | on one chip | cores | chips | why not |",
        "|---|---|---|---|---|",
    ]
    for spec, ok, reason, cores, chips in rows:
        why = reason.splitlines()[0][:90] if reason else ""
        lines.append(f"| {spec} | {ok} | {cores} | {chips} | {why} |")
        data["table1"].append({"spec": spec, "one_chip": ok, "cores": cores, "chips": chips})
    lines.append("")
    (OUT / "report.md").write_text("\n".join(lines))
    (OUT / "report.json").write_text(json.dumps(data, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
