"""Type stubs of the compiled engine (private; use snnfast.Network)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Engine",
    "KERNELS_ENV",
    "MAX_TIMESTEPS",
    "__version__",
    "available_kernels",
    "kernels",
]
__version__: str
KERNELS_ENV: str
MAX_TIMESTEPS: int

def kernels() -> str: ...
def available_kernels() -> list[str]: ...

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
    ) -> tuple[
        list[npt.NDArray[np.int32]],
        list[npt.NDArray[np.int32]],
        npt.NDArray[np.int64],
        npt.NDArray[np.int32],
        str,
    ]: ...
    def scatter_floor(
        self,
        images: npt.NDArray[np.uint8],
        *,
        timesteps: int,
        delay: int = 0,
        v_init: float = 0.0,
        min_seconds: float = 0.2,
    ) -> tuple[int, float, str]: ...
