"""How a spiking network is run: :class:`RunSettings`, one value passed whole.

The same value goes to :meth:`snnfast.Network.run`, :func:`snnfast.embed.embed`, the chip's
energy model and the timing code, and a :class:`snnfast.convert.ConvertedModel` carries the
settings it was converted for (:attr:`~snnfast.convert.ConvertedModel.settings`). Change one
field with :meth:`RunSettings.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _checks
from ._records import Record

__all__ = ["MAX_TIMESTEPS", "RunSettings"]

MAX_TIMESTEPS = 1 << 20
"""Most time steps one run may have (1,048,576): a run this long on the shipped network takes
about an hour per image on one core, and spike counts stay far inside int32."""


@dataclass(frozen=True)
class RunSettings(Record):
    """The settings of one simulation; every field is checked when the value is made.

    Attributes:
        timesteps: time steps ``T`` in ``[1, MAX_TIMESTEPS]``.
        delay: 0 (spikes reach the next layer in the same step) or 1 (one step later, Loihi
            pipelining).
        v_init: initial potential as a fraction of each layer's threshold, in ``[0, 1)``.
        early_exit: stop an image once its output decision has been the same for this many
            consecutive steps; ``None`` runs every image for ``timesteps`` steps.
        threads: worker threads; ``None`` means all usable cores
            (:func:`snnfast._checks.all_cores`). Results never depend on it.
    """

    timesteps: int = 16
    delay: int = 0
    v_init: float = 0.0
    early_exit: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        where = "RunSettings"
        set_ = object.__setattr__
        set_(
            self,
            "timesteps",
            _checks.positive_int(self.timesteps, "timesteps", MAX_TIMESTEPS, where=where),
        )
        set_(self, "delay", _checks.integer(self.delay, "delay", 0, 1, where=where))
        set_(
            self,
            "v_init",
            _checks.number(self.v_init, "v_init", 0.0, 1.0, hi_open=True, where=where),
        )
        if self.early_exit is not None:
            set_(
                self,
                "early_exit",
                _checks.positive_int(self.early_exit, "early_exit", MAX_TIMESTEPS, where=where),
            )
        if self.threads is not None:
            set_(
                self,
                "threads",
                _checks.positive_int(self.threads, "threads", _checks.MAX_THREADS, where=where),
            )

    @property
    def worker_threads(self) -> int:
        """The thread count a run uses: :attr:`threads`, or all usable cores."""
        return _checks.threads(self.threads)
