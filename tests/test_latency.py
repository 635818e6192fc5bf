"""Timing helpers, the RAPL reader and the machine record."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from helpers_convert import random_state

from snnfast import latency
from snnfast._checks import all_cores
from snnfast.ann import Architecture
from snnfast.convert import convert
from snnfast.errors import ConfigError, ShapeError
from snnfast.settings import RunSettings


def test_measure_counts_calls_and_times_them() -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        time.sleep(0.002)

    m = latency.measure(fn, items=4, repeats=5, warmup=3, rapl_root=None)
    assert len(calls) == 8  # warm-up calls happen but are not timed
    assert len(m.samples_s) == 5 and m.warmup == 3 and m.items == 4
    assert all(s >= 0.0015 for s in m.samples_s)
    assert m.min_s <= m.median_s <= max(m.samples_s)
    assert m.per_item_s == pytest.approx(m.median_s / 4)
    assert m.total_s == pytest.approx(sum(m.samples_s))
    assert m.energy_j is None and m.energy_per_item_j is None and m.power_w is None
    d = m.summary().to_json()
    json.dumps(d)
    assert d["repeats"] == 5 and d["per_item_s"] == m.per_item_s
    assert latency.MeasurementSummary.from_json(d) == m.summary()
    assert latency.Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m


def test_median_resists_one_slow_call() -> None:
    m = latency.Measurement((0.001, 0.001, 0.5, 0.001, 0.001), items=1, warmup=0)
    assert m.median_s == 0.001 and m.mean_s > 0.1 and m.std_s > 0.1
    one = latency.Measurement((0.25,), items=2, warmup=0)
    assert one.std_s == 0.0 and one.per_item_s == 0.125


@pytest.mark.parametrize("kwargs", [{"items": 0}, {"repeats": 0}, {"warmup": -1}, {"repeats": 1.5}])
def test_measure_refuses_bad_counts(kwargs) -> None:
    with pytest.raises(ConfigError):
        latency.measure(lambda: None, rapl_root=None, **kwargs)


def test_rapl_reader_does_not_crash_here() -> None:
    value = latency.read_rapl_uj()
    assert value is None or (isinstance(value, int) and value >= 0)
    m = latency.measure(lambda: None, repeats=2, warmup=0)
    assert m.energy_j is None or m.energy_j >= 0


def _fake_rapl(root, values: dict[str, tuple[int, int]]) -> None:
    for name, (energy, top) in values.items():
        d = root / name
        d.mkdir()
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{top}\n")


def test_rapl_reads_package_domains_only(tmp_path) -> None:
    _fake_rapl(
        tmp_path,
        {
            "intel-rapl:0": (1000, 10**9),
            "intel-rapl:1": (500, 10**9),
            "intel-rapl:0:0": (700, 10**9),
        },
    )
    (tmp_path / "other").mkdir()
    assert [p.name for p in latency.rapl_domains(tmp_path)] == ["intel-rapl:0", "intel-rapl:1"]
    assert latency.read_rapl_uj(tmp_path) == 1500
    assert latency.read_rapl_uj(tmp_path / "missing") is None
    assert latency.rapl_domains(tmp_path / "missing") == []


def test_rapl_energy_over_a_measurement_with_wraparound(tmp_path) -> None:
    _fake_rapl(tmp_path, {"intel-rapl:0": (999_000, 1_000_000)})
    counter = tmp_path / "intel-rapl:0" / "energy_uj"
    readings = iter([999_000 + 400 * k for k in range(1, 10)])

    def fn() -> None:  # the counter advances 400 uJ per call and wraps at 1e6
        counter.write_text(str(next(readings) % 1_000_000))

    m = latency.measure(fn, items=2, repeats=4, warmup=0, rapl_root=tmp_path)
    assert m.energy_j == pytest.approx(4 * 400e-6)
    assert m.energy_per_item_j == pytest.approx(200e-6)
    assert m.power_w == pytest.approx(m.energy_j / m.total_s)


def test_unreadable_rapl_counter_gives_none(tmp_path) -> None:
    _fake_rapl(tmp_path, {"intel-rapl:0": (10, 100)})
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("garbage")
    assert latency.rapl_domains(tmp_path) == []
    assert latency.read_rapl_uj(tmp_path) is None
    assert latency.measure(lambda: None, repeats=1, rapl_root=tmp_path).energy_j is None


def test_machine_info_is_complete_and_serialisable() -> None:
    info = latency.machine_info()
    json.dumps(info.to_json())
    assert info.logical_cpus >= 1 and 1 <= info.usable_cpus <= info.logical_cpus
    assert isinstance(info.cpu_model, str) and info.cpu_model
    assert info.rapl_readable in (True, False)
    assert info.usable_cpus == all_cores()
    assert latency.MachineInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


def test_ensure_passive_omp(monkeypatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    latency.ensure_passive_omp()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    latency.ensure_passive_omp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # an explicit choice is kept


@pytest.fixture(scope="module")
def tiny():
    arch = Architecture.parse("4-8-10")
    state = random_state(arch, seed=3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 1, 28, 28), dtype=np.uint8)
    return arch, state, images


def test_ann_and_engine_timers(tiny) -> None:
    arch, state, images = tiny
    m1 = latency.time_numpy_ann(arch, state, images, 1, repeats=3, warmup=1)
    mb = latency.time_numpy_ann(arch.spec, state, images, 50, repeats=2, warmup=0)
    assert m1.items == 1 and mb.items == 50 and len(mb.samples_s) == 2
    assert m1.per_item_s > 0 and mb.per_item_s > 0
    model = convert(state, arch, calibration_images=images)
    settings = RunSettings(timesteps=8, threads=1)
    e = latency.time_engine(model.network, images, settings, batch_size=5, repeats=3, warmup=1)
    assert e.items == 5 and len(e.samples_s) == 3 and e.per_item_s > 0
    with pytest.raises(ConfigError, match="RunSettings"):
        latency.time_engine(model.network, images, 8)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="empty"):
        latency.time_engine(model.network, images[:0], settings)


def test_torch_timer_restores_threads(tiny) -> None:
    torch = pytest.importorskip("torch")
    arch, state, images = tiny
    before = torch.get_num_threads()
    m = latency.time_torch_ann(arch, state, images, 1, threads=1, repeats=3, warmup=1)
    assert m.items == 1 and len(m.samples_s) == 3 and m.median_s > 0
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError):
        latency.time_torch_ann(arch, state, images, 0)
