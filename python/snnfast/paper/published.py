"""Every number of Liu et al. 2022 that the study compares against, as published, in one place.

Liu, Mahjoubfar, Prusinski, Stevens, *Neuromorphic computing for content-based image
retrieval*, PLoS ONE 17(4): e0264364 (2022), CC-BY. The numbers are copied verbatim from its
tables (including one row that is inconsistent in the paper itself, see :data:`PAPER_TABLE5`);
nothing here is computed by snnfast.

The chip model's two calibration constants (:class:`snnfast.chip.EnergyModel`'s
``static_power_w`` and ``fixed_overhead_s``) come from the Loihi rows of Tables 3 and 4; the
library keeps its own sourced copy (it never imports the study) and the tests check that the
two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CITATION",
    "PAPER_LOIHI",
    "PAPER_SNN16_ACCURACY",
    "PAPER_TABLE1",
    "PAPER_TABLE1_TIMESTEPS",
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "PAPER_TABLE4",
    "PAPER_TABLE5",
    "PAPER_XEON_BATCH1_MS",
    "PAPER_XEON_LARGE_MS",
    "TABLE1_SPECS",
    "PaperFigures",
]

CITATION = (
    "Liu, Mahjoubfar, Prusinski, Stevens, *Neuromorphic computing for content-based image "
    "retrieval*, PLoS ONE 17(4): e0264364 (2022)"
)

PAPER_TABLE1: dict[str, tuple[float, float, float, float | None]] = {
    # architecture: ANN train, ANN validation, ANN test, SNN test accuracy (%); None = N/A
    "4-8-10": (85.03, 85.37, 83.96, 83.73),
    "8-16-10": (89.11, 88.43, 87.41, 86.98),
    "16-32-10": (89.41, 88.72, 87.85, 87.41),
    "32-64-10": (93.99, 90.68, 90.07, 90.01),
    "4-8-16-10": (87.47, 87.20, 86.16, 86.02),
    "8-16-32-10": (90.43, 89.03, 88.40, 76.54),
    "16-32-64-10": (90.36, 89.25, 87.91, 87.85),
    "32-64-128-10": (93.37, 90.08, 89.43, 88.18),
    "4-8-16-32-10": (89.14, 88.57, 87.87, 87.49),
    "8-16-32-64-10": (92.11, 90.20, 89.51, 84.19),
    "16-32-64-128-10": (94.27, 90.60, 89.76, 85.79),
    "32-64-128-256-10": (93.38, 90.78, 90.21, None),
}
"""The paper's Table 1. The last network was not deployable on Loihi (maximum fan-in)."""

TABLE1_SPECS: tuple[str, ...] = tuple(PAPER_TABLE1)
"""The twelve architectures of the paper's Table 1, in its order."""

PAPER_TABLE1_TIMESTEPS = 128
"""Time steps behind Table 1's SNN column: its 32-64-10 entry equals Table 2's SNN(128)."""

PAPER_TABLE2: dict[str, tuple[float, float, float]] = {
    # model: classification, top-1, top-3 accuracy (%)
    "ANN": (90.07, 87.49, 94.55),
    "SNN(16)": (85.05, 85.55, 93.56),
    "SNN(128)": (90.01, 86.58, 93.93),
}
"""The paper's Table 2, test accuracies of 32-64-10 (retrieval)."""

PAPER_SNN16_ACCURACY = 0.8505
"""The paper's SNN classification accuracy at 16 steps (Table 2), as a fraction."""

PAPER_TABLE3: tuple[tuple[str, int, str, float], ...] = (
    # model, batch size, hardware, runtime per example (ms)
    ("ANN", 1, "Intel Xeon CPU (Gold 6148)", 0.216),
    ("ANN", 262144, "Intel Xeon CPU (Gold 6148)", 0.0073),
    ("ANN", 1, "Intel CPU (i7-8750H)", 0.2634),
    ("ANN", 128, "Intel CPU (i7-8750H)", 0.013),
    ("ANN", 1, "ARM CPU (Cortex-A72)", 0.778),
    ("ANN", 2048, "ARM CPU (Cortex-A72)", 0.356),
    ("ANN", 1, "NVIDIA GPU (V100)", 1.296),
    ("ANN", 4096, "NVIDIA GPU (V100)", 0.0075),
    ("ANN", 1, "NVIDIA GPU (T4)", 1.204),
    ("ANN", 4096, "NVIDIA GPU (T4)", 0.010),
    ("SNN (16)", 1, "Loihi chip (neuromorphic cores)", 2.984),
    ("SNN (128)", 1, "Loihi chip (neuromorphic cores)", 11.976),
)
"""The paper's Table 3, inference latency."""

PAPER_TABLE4: tuple[tuple[str, int, str, float, float, float], ...] = (
    # model, batch size, hardware, static, dynamic, total power (W)
    ("ANN", 1, "Intel Xeon CPU (Gold 6148)", 196.0, 19.1, 215.1),
    ("ANN", 262144, "Intel Xeon CPU (Gold 6148)", 196.0, 44.189, 240.189),
    ("ANN", 1, "Intel CPU (i7-8750H)", 22.0, 1.805, 23.805),
    ("ANN", 128, "Intel CPU (i7-8750H)", 22.0, 5.633, 27.633),
    ("ANN", 1, "ARM CPU (Cortex-A72)", 0.142, 9.082, 9.224),
    ("ANN", 2048, "ARM CPU (Cortex-A72)", 0.142, 2.698, 2.84),
    ("ANN", 1, "NVIDIA GPU (V100)", 24.0, 16.441, 40.441),
    ("ANN", 4096, "NVIDIA GPU (V100)", 24.0, 20.511, 44.511),
    ("ANN", 1, "NVIDIA GPU (T4)", 17.0, 14.049, 31.049),
    ("ANN", 4096, "NVIDIA GPU (T4)", 17.0, 18.228, 35.228),
    ("SNN (16)", 1, "Loihi chip (neuromorphic cores)", 0.946, 0.044, 0.991),
    ("SNN (128)", 1, "Loihi chip (neuromorphic cores)", 0.952, 0.064, 1.016),
)
"""The paper's Table 4, inference power."""

PAPER_TABLE5: tuple[tuple[str, int, str, float, float], ...] = (
    # model, batch size, hardware, energy per example (mJ), relative to SNN(16) on Loihi
    ("ANN", 1, "Intel Xeon CPU (Gold 6148)", 46.787, 15.6),
    ("ANN", 262144, "Intel Xeon CPU (Gold 6148)", 1.753, 0.585),
    ("ANN", 1, "Intel CPU (i7-8750H)", 9.522, 3.178),
    ("ANN", 128, "Intel CPU (i7-8750H)", 0.316, 0.105),
    ("ANN", 1, "ARM CPU (Cortex-A72)", 7.379, 2.463),
    ("ANN", 2048, "ARM CPU (Cortex-A72)", 1.02, 0.34),
    ("ANN", 1, "NVIDIA GPU (V100)", 52.399, 17.5),
    ("ANN", 4096, "NVIDIA GPU (V100)", 0.337, 0.112),
    ("ANN", 1, "NVIDIA GPU (T4)", 37.399, 12.5),
    ("ANN", 4096, "NVIDIA GPU (T4)", 0.366, 0.12),
    ("SNN (16)", 1, "Loihi chip (neuromorphic cores)", 2.996, 1.0),
    ("SNN (128)", 1, "Loihi chip (neuromorphic cores)", 12.17, 4.0),
)
"""The paper's Table 5, inference energy. Its i7-8750H batch-1 row is not Table 3 x Table 4
in the paper itself (0.2634 ms x 23.805 W = 6.27 mJ, printed 9.522 mJ); kept as printed."""

PAPER_XEON_BATCH1_MS = PAPER_TABLE3[0][3]
"""The ANN on the paper's Xeon Gold 6148, batch 1 (ms per image, Table 3)."""
PAPER_XEON_LARGE_MS = PAPER_TABLE3[1][3]
"""The ANN on the paper's Xeon Gold 6148, batch 262,144 (ms per image, Table 3)."""


@dataclass(frozen=True)
class PaperFigures:
    """What the paper measured on Loihi for ``32-64-10``, batch 1 (Tables 3-5)."""

    timesteps: int
    latency_s: float
    static_power_w: float
    dynamic_power_w: float
    energy_j: float

    @property
    def dynamic_energy_j(self) -> float:
        """Dynamic power x latency."""
        return self.dynamic_power_w * self.latency_s


PAPER_LOIHI: dict[int, PaperFigures] = {
    16: PaperFigures(16, 2.984e-3, 0.946, 0.044, 2.996e-3),
    128: PaperFigures(128, 11.976e-3, 0.952, 0.064, 12.17e-3),
}
"""The paper's Loihi measurements by number of time steps: the Loihi rows of Tables 3-5 in
seconds, watts and joules (a test checks them against the tables)."""
