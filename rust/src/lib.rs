//! snnfast core: an event-driven, bit-exact integer spiking network engine.
//!
//! * [`neuron`] — the integer leaky integrate-and-fire update (the one place it is written;
//!   the rules are in `docs/neuron.md`).
//! * [`kernels`] — the hot loops per instruction set (portable, AVX2, AVX-512) and the one
//!   run-time choice between them; `aligned` gives them buffers that start a cache line.
//! * [`geometry`] — shapes and the windows of convolution and pooling.
//! * [`network`] — layers and their synapse groups, validated once and compiled into scatter
//!   tables.
//! * [`engine`] — the event-driven simulation of a batch of images over threads; the per-step
//!   hot code of one layer is in `step`. An [`engine::Observer`] may watch a run.
//! * [`chip`] — a network placed on neuromorphic chip cores: per-core resources as the chip
//!   stores them, and an observer that counts a run per core and per step.
//!
//! The crate has no Python types in it; the `python` feature adds the thin PyO3 glue
//! exposed as `snnfast._core`.

mod aligned;
pub mod chip;
mod compile;
pub mod engine;
pub mod error;
pub mod floor;
pub mod geometry;
mod helper;
pub mod kernels;
pub mod network;
pub mod neuron;
mod pipeline;
mod scatter;
mod simulate;
mod step;

#[cfg(feature = "python")]
mod python;

pub use engine::{
    decision, run, run_observed, run_with, NoObserver, Observer, RunOptions, RunOutput,
    SpikeCounts, Workspaces, MAX_TIMESTEPS,
};
pub use error::{Error, ErrorKind, Result};
pub use geometry::Shape;
pub use network::{GroupKind, GroupSpec, LayerSpec, Network};
