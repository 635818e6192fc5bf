//! What every core of a [`ChipMap`] holds, as the chip stores it.
//!
//! Per core: its neurons and compartments; its input axons (one per presynaptic neuron with a
//! synapse on the core: a spike reaches a core once, whatever the number of its synapses
//! there); the output axons of its neurons (one per destination core, as NxTF and nengo-loihi
//! count discrete axons); its synapses; and the synapse memory they take
//! ([`SynapseFormat::entry_bits`] per presynaptic neuron, with the core's index and weight
//! widths). A neuron with a reset synapse (the two-compartment soft reset) adds one synapse, one
//! input axon and one output axon on its own core.

use super::map::ChipMap;

/// Per-core resources, each a vector over the cores.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreResources {
    pub neurons: Vec<u64>,
    pub compartments: Vec<u64>,
    pub input_axons: Vec<u64>,
    pub output_axons: Vec<u64>,
    pub synapses: Vec<u64>,
    pub synapse_bits: Vec<u64>,
    /// Widths of a stored synapse's compartment index and weight on each core.
    pub index_bits: Vec<u64>,
    pub weight_bits: Vec<u64>,
}

impl CoreResources {
    /// The resources of every core of `map`.
    pub fn of(map: &ChipMap) -> CoreResources {
        let n = map.n_cores();
        let mut r = CoreResources {
            neurons: vec![0; n],
            compartments: vec![0; n],
            input_axons: vec![0; n],
            output_axons: vec![0; n],
            synapses: vec![0; n],
            synapse_bits: vec![0; n],
            index_bits: vec![0; n],
            weight_bits: vec![0; n],
        };
        // Neurons, compartments and each core's widest weight come first: the index width
        // depends on the compartments, and every synapse stored on a core has its widths.
        for ly in &map.layers {
            for &c in &ly.cores {
                let c = c as usize;
                r.neurons[c] += 1;
                r.compartments[c] += ly.compartments as u64;
                r.weight_bits[c] = r.weight_bits[c].max(ly.weight_bits as u64);
            }
        }
        let f = map.format;
        for c in 0..n {
            r.index_bits[c] = f.index_bits(r.compartments[c]) as u64;
        }
        let bits = |c: usize| (r.index_bits[c] + r.weight_bits[c]) as u32;
        let per_syn: Vec<u32> = (0..n).map(bits).collect();
        for (l, ly) in map.layers.iter().enumerate() {
            for (i, &own) in ly.cores.iter().enumerate() {
                let own = own as usize;
                let fan = map.fan(l, i);
                r.output_axons[own] += fan.len() as u64;
                for e in fan {
                    let d = e.core as usize;
                    r.input_axons[d] += 1;
                    r.synapses[d] += e.total();
                    r.synapse_bits[d] += f.entry_bits(e.total(), per_syn[d]);
                }
                if ly.reset_synapse {
                    r.output_axons[own] += 1;
                    r.input_axons[own] += 1;
                    r.synapses[own] += 1;
                    r.synapse_bits[own] += f.entry_bits(1, per_syn[own]);
                }
            }
        }
        r
    }
}
