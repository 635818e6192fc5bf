"""Measuring inference latency and CPU energy on this machine.

Timing (:func:`measure`): a few untimed warm-up calls, then ``repeats`` timed calls with
:func:`time.perf_counter`; the figure to quote is the **median** per call (robust to the odd
slow call on a shared machine), divided by the items each call processes. Batch-1 latency is
measured as one call per image, cycling through real images, so caches do not see the same
input twice in a row.

CPU energy comes from Linux RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``, the package
domains; AMD processors expose theirs under the same name): the counters are read before the
first and after the last timed call, and wrap-around is undone with ``max_energy_range_uj``.
Where the counters do not exist or are not readable (no RAPL driver, a container, no root),
every energy figure is ``None`` and reports say "not readable here": nothing is estimated in
their place. RAPL measures the whole package, so other work running at the same time is counted
too.

PyTorch matters only to :func:`time_torch_ann` and :func:`torch_threads`, which import it
inside. OpenMP reads ``OMP_WAIT_POLICY`` once, when the runtime starts: call
:func:`ensure_passive_omp` before anything imports torch so idle OpenMP threads sleep instead
of spinning (on a shared 2-core machine spinning threads distort every other timing).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _checks
from ._records import Record
from .errors import ConfigError, ShapeError
from .settings import RunSettings

__all__ = [
    "RAPL_ROOT",
    "MachineInfo",
    "Measurement",
    "MeasurementSummary",
    "ensure_passive_omp",
    "machine_info",
    "measure",
    "rapl_domains",
    "read_rapl_uj",
    "time_engine",
    "time_numpy_ann",
    "time_torch_ann",
    "torch_threads",
]

RAPL_ROOT = Path("/sys/class/powercap")
"""Where Linux exposes the RAPL energy counters."""
_PACKAGE = re.compile(r"^intel-rapl:\d+$")  # package domains; "intel-rapl:0:0" are sub-domains


def ensure_passive_omp() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it.

    Returns ``True`` when torch was already imported, i.e. when the setting may come too late
    for this process's OpenMP runtime.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" in sys.modules


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(threads)`` (default: all usable cores), then
    restore the previous setting. Yields the thread count used."""
    import torch

    n = _checks.threads(threads, where="torch_threads")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


# -- RAPL -------------------------------------------------------------------------------------


def rapl_domains(root: str | os.PathLike[str] = RAPL_ROOT) -> list[Path]:
    """The RAPL package domains under ``root`` whose ``energy_uj`` can be read (maybe none)."""
    base = Path(root)
    try:
        candidates = sorted(p for p in base.iterdir() if _PACKAGE.match(p.name))
    except OSError:
        return []
    out = []
    for p in candidates:
        try:
            int((p / "energy_uj").read_text().strip())
        except (OSError, ValueError):
            continue
        out.append(p)
    return out


def _read_domains(domains: Sequence[Path]) -> list[int] | None:
    try:
        return [int((p / "energy_uj").read_text().strip()) for p in domains]
    except (OSError, ValueError):
        return None


def _max_range(domain: Path) -> int | None:
    try:
        return int((domain / "max_energy_range_uj").read_text().strip())
    except (OSError, ValueError):
        return None


def read_rapl_uj(root: str | os.PathLike[str] = RAPL_ROOT) -> int | None:
    """Sum of the package domains' energy counters in microjoules, or ``None`` if unreadable."""
    domains = rapl_domains(root)
    if not domains:
        return None
    values = _read_domains(domains)
    return None if values is None else int(sum(values))


class _RaplMeter:
    """Energy between :meth:`start` and :meth:`stop`, with counter wrap-around undone."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.domains = rapl_domains(root)
        self._start: list[int] | None = None

    def start(self) -> None:
        self._start = _read_domains(self.domains) if self.domains else None

    def stop(self) -> float | None:
        if self._start is None:
            return None
        end = _read_domains(self.domains)
        if end is None:
            return None
        total = 0
        for domain, a, b in zip(self.domains, self._start, end):
            if b < a:  # the counter wrapped around
                top = _max_range(domain)
                if top is None:
                    return None
                b += top
            total += b - a
        return total * 1e-6


# -- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasurementSummary(Record):
    """The figures of a :class:`Measurement` (what reports and result files keep).

    Attributes:
        items: items (images) each call processes.
        warmup: untimed calls made first.
        repeats: timed calls.
        median_s, min_s, mean_s, std_s: time per call (median, fastest, mean, sample standard
            deviation).
        per_item_s: median time per call / items: the latency to quote.
        energy_j, energy_per_item_j, power_w: RAPL package energy over the timed calls, per
            item, and mean power; ``None`` where RAPL is not readable.
    """

    items: int
    warmup: int
    repeats: int
    median_s: float
    min_s: float
    mean_s: float
    std_s: float
    per_item_s: float
    energy_j: float | None
    energy_per_item_j: float | None
    power_w: float | None


@dataclass(frozen=True)
class Measurement(Record):
    """Timed calls of one operation.

    Attributes:
        samples_s: wall time of each timed call, in seconds.
        items: items (images) each call processes.
        warmup: untimed calls made first.
        energy_j: RAPL package energy over all timed calls, or ``None`` where not readable.
    """

    samples_s: tuple[float, ...]
    items: int
    warmup: int
    energy_j: float | None = None

    @property
    def median_s(self) -> float:
        """Median time per call."""
        return float(statistics.median(self.samples_s))

    @property
    def min_s(self) -> float:
        """Fastest call."""
        return float(min(self.samples_s))

    @property
    def mean_s(self) -> float:
        """Mean time per call."""
        return float(statistics.fmean(self.samples_s))

    @property
    def std_s(self) -> float:
        """Sample standard deviation of the call times (0 for one call)."""
        return float(statistics.stdev(self.samples_s)) if len(self.samples_s) > 1 else 0.0

    @property
    def total_s(self) -> float:
        """Time of all timed calls together."""
        return float(sum(self.samples_s))

    @property
    def per_item_s(self) -> float:
        """Median time per call divided by the items per call: the latency to quote."""
        return self.median_s / self.items

    @property
    def energy_per_item_j(self) -> float | None:
        """RAPL energy per item over the timed calls, or ``None``."""
        if self.energy_j is None:
            return None
        return self.energy_j / (self.items * len(self.samples_s))

    @property
    def power_w(self) -> float | None:
        """Mean package power during the timed calls, or ``None``."""
        if self.energy_j is None or self.total_s <= 0:
            return None
        return self.energy_j / self.total_s

    def summary(self) -> MeasurementSummary:
        """The measurement's derived figures."""
        return MeasurementSummary(
            items=self.items,
            warmup=self.warmup,
            repeats=len(self.samples_s),
            median_s=self.median_s,
            min_s=self.min_s,
            mean_s=self.mean_s,
            std_s=self.std_s,
            per_item_s=self.per_item_s,
            energy_j=self.energy_j,
            energy_per_item_j=self.energy_per_item_j,
            power_w=self.power_w,
        )


def measure(
    fn: Callable[[], object],
    *,
    items: int = 1,
    repeats: int = 10,
    warmup: int = 2,
    rapl_root: str | os.PathLike[str] | None = RAPL_ROOT,
) -> Measurement:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Args:
        fn: the operation; its result is ignored.
        items: items each call processes (for :attr:`Measurement.per_item_s`).
        repeats: timed calls (at least 1).
        warmup: untimed calls first (at least 0).
        rapl_root: where to read RAPL counters; ``None`` to skip energy.

    Raises:
        ConfigError: ``items`` or ``repeats`` not positive, ``warmup`` negative.
    """
    items = _checks.positive_int(items, "items", where="measure")
    repeats = _checks.positive_int(repeats, "repeats", where="measure")
    warmup = _checks.integer(warmup, "warmup", 0, where="measure")
    for _ in range(warmup):
        fn()
    meter = _RaplMeter(rapl_root) if rapl_root is not None else None
    if meter is not None:
        meter.start()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    energy = meter.stop() if meter is not None else None
    return Measurement(tuple(samples), items, warmup, energy)


def _cycle(images: np.ndarray, batch_size: int) -> Callable[[], np.ndarray]:
    """A function returning the next batch of ``batch_size`` images, cycling through them."""
    n = images.shape[0]
    if n == 0:
        raise ShapeError("need at least one image to time (got an empty batch)")
    if batch_size >= n:
        batch = np.ascontiguousarray(np.resize(images, (batch_size, *images.shape[1:])))
        return lambda: batch
    state = {"i": 0}

    def nxt() -> np.ndarray:
        i = state["i"]
        state["i"] = (i + batch_size) % (n - batch_size + 1)
        return images[i : i + batch_size]

    return nxt


def time_torch_ann(
    arch: Any,
    state: dict[str, np.ndarray],
    images: np.ndarray,
    batch_size: int = 1,
    *,
    threads: int | None = None,
    repeats: int = 50,
    warmup: int = 5,
    rapl_root: str | os.PathLike[str] | None = RAPL_ROOT,
) -> Measurement:
    """Forward-pass time of the ANN in PyTorch (eval mode, inference mode, float32).

    Args:
        arch: a :class:`snnfast.ann.Architecture` (or its spec string).
        state: its parameters (:func:`snnfast.ann.load_model`).
        images: uint8 ``[N, 1, 28, 28]``; scaled to [0, 1] once, outside the timed calls.
        batch_size: images per call (cycled through ``images``; repeated if there are fewer).
        threads: torch intra-op threads for the measurement (default all usable cores,
            :func:`snnfast._checks.all_cores`).
    """
    import torch

    from . import ann
    from .train import build_torch_model

    if isinstance(arch, str):
        arch = ann.Architecture.parse(arch)
    batch_size = _checks.positive_int(batch_size, "batch_size", where="timing")
    params = ann.check_state(arch, state)
    model = build_torch_model(arch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    model.eval()
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    nxt = _cycle(x.numpy(), batch_size)

    def call() -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(nxt()))

    with torch_threads(threads):
        return measure(call, items=batch_size, repeats=repeats, warmup=warmup, rapl_root=rapl_root)


def time_numpy_ann(
    arch: Any,
    state: dict[str, np.ndarray],
    images: np.ndarray,
    batch_size: int = 1,
    *,
    repeats: int = 20,
    warmup: int = 2,
    rapl_root: str | os.PathLike[str] | None = RAPL_ROOT,
) -> Measurement:
    """Forward-pass time of the ANN with :func:`snnfast.ann.predict` (NumPy, float32)."""
    from . import ann

    if isinstance(arch, str):
        arch = ann.Architecture.parse(arch)
    batch_size = _checks.positive_int(batch_size, "batch_size", where="timing")
    params = ann.check_state(arch, state)
    nxt = _cycle(images, batch_size)
    return measure(
        lambda: ann.predict(arch, params, nxt()),
        items=batch_size,
        repeats=repeats,
        warmup=warmup,
        rapl_root=rapl_root,
    )


def time_engine(
    network: Any,
    images: np.ndarray,
    settings: RunSettings,
    batch_size: int = 1,
    *,
    record: Sequence[int] | None = None,
    repeats: int = 20,
    warmup: int = 2,
    rapl_root: str | os.PathLike[str] | None = RAPL_ROOT,
) -> Measurement:
    """Simulation time of :meth:`snnfast.Network.run` for ``batch_size`` images per call.

    Args:
        network: the :class:`snnfast.Network`.
        images: uint8 images, cycled through (repeated if fewer than ``batch_size``).
        settings: how each call runs (time steps, delay, ``v_init``, early exit, threads).
        batch_size: images per call.
        record: layers to record; default the output layer only (what classification needs).
        repeats, warmup, rapl_root: as in :func:`measure`.

    Raises:
        ConfigError: ``settings`` is not a :class:`~snnfast.settings.RunSettings`, or a bad
            count.
    """
    if not isinstance(settings, RunSettings):
        raise ConfigError(f"time_engine: settings must be a RunSettings, got {settings!r}")
    batch_size = _checks.positive_int(batch_size, "batch_size", where="timing")
    rec = [network.n_layers] if record is None else list(record)
    nxt = _cycle(images, batch_size)
    s = settings
    return measure(
        lambda: network.run(
            nxt(),
            s.timesteps,
            delay=s.delay,
            v_init=s.v_init,
            threads=s.threads,
            record=rec,
            early_exit=s.early_exit,
        ),
        items=batch_size,
        repeats=repeats,
        warmup=warmup,
        rapl_root=rapl_root,
    )


# -- the machine ------------------------------------------------------------------------------


def _cpuinfo() -> tuple[str | None, int | None]:
    """CPU model name and number of physical cores from ``/proc/cpuinfo`` (Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, None
    model = None
    cores = set()
    phys = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and model is None:
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not line.strip():
            if core is not None:
                cores.add((phys, core))
            phys = core = None
    return model, (len(cores) or None)


def _package_version(name: str) -> str | None:
    mod = sys.modules.get(name)
    if mod is not None and hasattr(mod, "__version__"):
        return str(mod.__version__)
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python >= 3.8 has it
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class MachineInfo(Record):
    """What measurements ran on.

    Attributes:
        cpu_model: CPU model name.
        logical_cpus: logical CPUs of the machine.
        usable_cpus: CPUs this process may run on (:func:`snnfast._checks.all_cores`).
        physical_cores: physical cores, or ``None`` when unknown.
        memory_gib: physical memory, or ``None``.
        platform, python, numpy: versions.
        torch: PyTorch's version, or ``None`` when it is not installed.
        omp_wait_policy: ``$OMP_WAIT_POLICY``.
        rapl_readable: whether RAPL energy counters can be read.
        load_average: 1, 5 and 15 minute load averages, or ``None``.
    """

    cpu_model: str
    logical_cpus: int | None
    usable_cpus: int
    physical_cores: int | None
    memory_gib: float | None
    platform: str
    python: str
    numpy: str
    torch: str | None
    omp_wait_policy: str | None
    rapl_readable: bool
    load_average: list[float] | None


def machine_info(rapl_root: str | os.PathLike[str] = RAPL_ROOT) -> MachineInfo:
    """What the measurements run on: CPU model, cores, memory, OS, versions, RAPL readability,
    load average. Never imports torch."""
    model, physical = _cpuinfo()
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 2**20
                break
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = [round(x, 2) for x in os.getloadavg()]
    return MachineInfo(
        cpu_model=model or platform.processor() or platform.machine(),
        logical_cpus=os.cpu_count(),
        usable_cpus=_checks.all_cores(),
        physical_cores=physical,
        memory_gib=None if mem_gib is None else round(mem_gib, 1),
        platform=platform.platform(),
        python=platform.python_version(),
        numpy=np.__version__,
        torch=_package_version("torch"),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        rapl_readable=bool(rapl_domains(rapl_root)),
        load_average=load,
    )
