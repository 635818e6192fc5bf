//! Chip accounting beside the engine: a network placed on the cores of a neuromorphic chip.
//!
//! * [`map`] — a placement ([`ChipSpec`]: the core of every neuron, the tile of every core,
//!   compartments per neuron) checked against a compiled [`crate::Network`] and turned into a
//!   [`ChipMap`]: for every neuron, the cores its spikes reach and its synapses on each.
//! * [`resources`] — what each core holds as the chip stores it: compartments, input and output
//!   axons, synapses, and synapse memory bit by bit (entries of at most 64 synapses, index and
//!   weight bits per synapse, a header per entry, whole memory words).
//! * [`count`] — a run [`Observer`](crate::engine::Observer) that counts, per core and per
//!   step, synaptic events, compartment updates, spikes, axon messages and their tile hops, and
//!   the time each step takes on its busiest core under a linear [`TimeModel`].
//!
//! Nothing here changes the simulation; a run without a chip map costs what it always cost.
//! The geometry comes from the network's public description (shapes and
//! [`crate::network::GroupInfo`]), not from the engine's scatter tables.

pub mod count;
pub mod map;
pub mod resources;

pub use count::{ChipCounter, ChipCounts, Combine, TimeModel, TimePlan, COUNTERS, N_COUNTERS};
pub use map::{ChipMap, ChipSpec, LayerPlacement, SynapseFormat};
pub use resources::CoreResources;
