"""Type stubs of the compiled engine (private; use snnfast.Network)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHIP_COUNTERS",
    "ChipMap",
    "Engine",
    "KERNELS_ENV",
    "MAX_TIMESTEPS",
    "__version__",
    "available_kernels",
    "kernels",
]
__version__: str
CHIP_COUNTERS: list[str]
KERNELS_ENV: str
MAX_TIMESTEPS: int

def kernels() -> str: ...
def available_kernels() -> list[str]: ...

@final
class ChipMap:
    def n_cores(self) -> int: ...
    def resources(self) -> dict[str, npt.NDArray[np.uint64]]: ...

_RunArrays = tuple[
    list[npt.NDArray[np.int32]],
    list[npt.NDArray[np.int32]],
    npt.NDArray[np.int64],
    npt.NDArray[np.int32],
    str,
]

@final
class Engine:
    def __new__(
        cls,
        layers: list[dict[str, Any]],
        *,
        input_shape: tuple[int, int, int],
        input_threshold: int,
        memory_limit: int,
    ) -> Engine: ...
    def shapes(self) -> list[list[int]]: ...
    def synapse_counts(self) -> list[int]: ...
    def fan_out(self, layer: int) -> npt.NDArray[np.uint64]: ...
    def groups(self, layer: int) -> list[dict[str, Any]]: ...
    def group_fan_out(self, layer: int, group: int) -> npt.NDArray[np.uint64]: ...
    def run(
        self,
        images: npt.NDArray[np.uint8],
        *,
        timesteps: int,
        delay: int,
        v_init: float,
        threads: int,
        record: list[int],
        early_exit: int | None,
        checkpoints: list[int],
        memory_limit: int,
        split: int | None = None,
    ) -> _RunArrays: ...
    def scatter_floor(
        self,
        images: npt.NDArray[np.uint8],
        *,
        timesteps: int,
        delay: int = 0,
        v_init: float = 0.0,
        min_seconds: float = 0.2,
    ) -> tuple[int, float, str]: ...
    def chip_map(
        self,
        *,
        cores: list[npt.NDArray[np.uint32]],
        compartments: list[int],
        reset_synapse: list[bool],
        weight_bits: list[int],
        tiles: list[tuple[int, int]],
        synapse_format: tuple[int, int, int, int],
        memory_limit: int,
    ) -> ChipMap: ...
    def run_chip(
        self,
        images: npt.NDArray[np.uint8],
        *,
        timesteps: int,
        delay: int,
        v_init: float,
        threads: int,
        record: list[int],
        early_exit: int | None,
        checkpoints: list[int],
        memory_limit: int,
        chip: ChipMap,
        neuron_ns: list[float],
        message_ns: list[float],
        overlap: bool,
        trace: bool,
    ) -> tuple[
        _RunArrays,
        npt.NDArray[np.uint64],
        npt.NDArray[np.float64],
        npt.NDArray[np.uint64] | None,
    ]: ...
