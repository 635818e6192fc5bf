//! A placement of a network on chip cores, checked, and the fan-out table the accounting and the
//! counting read: for every neuron, each core its synapses reach, with the synapses of each kind
//! and the tile hops between the two cores.

use crate::error::{zeroed, Bytes, Error, Result};
use crate::geometry::{Axis, Reach, Shape};
use crate::network::{GroupInfo, Network};

/// How a core stores synapses (nengo-loihi's model of Loihi's synapse memory): an axon's
/// synapses on a core are entries of at most `max_per_entry` synapses, each entry
/// `n · (weight bits + index bits) + header_bits` bits rounded up to whole `word_bits` words;
/// the index addresses the core's compartments with at least `min_index_bits` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynapseFormat {
    pub word_bits: u32,
    pub header_bits: u32,
    pub max_per_entry: u32,
    pub min_index_bits: u32,
}

impl SynapseFormat {
    /// Bits that `n` synapses of one axon on one core take, `bits` bits per synapse.
    pub fn entry_bits(&self, n: u64, bits: u32) -> u64 {
        let (per, word) = (self.max_per_entry as u64, self.word_bits as u64);
        let words = |k: u64| (k * bits as u64 + self.header_bits as u64).div_ceil(word) * word;
        let (full, rem) = (n / per, n % per);
        full * words(per) + if rem > 0 { words(rem) } else { 0 }
    }

    /// Index bits for a core of `compartments` compartments.
    pub fn index_bits(&self, compartments: u64) -> u32 {
        let needed = u64::BITS - compartments.saturating_sub(1).leading_zeros();
        needed.max(self.min_index_bits)
    }
}

/// Where one layer sits and how its neurons are built on the chip.
#[derive(Debug, Clone)]
pub struct LayerPlacement {
    /// The core of every neuron, in the layer's C, H, W order.
    pub cores: Vec<u32>,
    /// Compartments per neuron (2 for Loihi 1's soft reset built from two compartments).
    pub compartments: u32,
    /// Each neuron also has a reset synapse onto itself, with its own input and output axon
    /// (the two-compartment soft reset: the soma feeds `-threshold` back to the dendrite).
    pub reset_synapse: bool,
    /// Bits of one stored weight of the synapses into this layer.
    pub weight_bits: u32,
}

/// A placement: every layer (input first) and the `(x, y)` router tile of every core.
#[derive(Debug, Clone)]
pub struct ChipSpec {
    pub layers: Vec<LayerPlacement>,
    pub tiles: Vec<(u32, u32)>,
    pub format: SynapseFormat,
}

/// One neuron's synapses onto one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub core: u32,
    /// Tile hops from the neuron's core to `core`, east-west and north-south.
    pub dx: u32,
    pub dy: u32,
    /// Synapses by the kind of their group: convolution, pooling, dense.
    pub synapses: [u32; 3],
}

impl Entry {
    pub fn total(&self) -> u64 {
        self.synapses.iter().map(|&s| s as u64).sum()
    }
}

/// The synapse-kind slot of a group kind.
pub fn kind_slot(kind: &str) -> usize {
    match kind {
        "conv" => 0,
        "pool" => 1,
        _ => 2,
    }
}

/// One layer on the chip: its neurons' cores (H, W, C order) and fan-out table.
#[derive(Debug, Clone)]
pub struct PlacedLayer {
    pub cores: Vec<u32>,
    pub compartments: u32,
    pub reset_synapse: bool,
    pub weight_bits: u32,
    /// `entries[start[i]..start[i + 1]]` are neuron `i`'s (H, W, C index) destination cores.
    pub start: Vec<u32>,
    pub entries: Vec<Entry>,
}

/// A network placed on chip cores (see the module docstring).
#[derive(Debug, Clone)]
pub struct ChipMap {
    pub layers: Vec<PlacedLayer>,
    pub tiles: Vec<(u32, u32)>,
    pub format: SynapseFormat,
    pub shapes: Vec<Shape>,
}

impl ChipMap {
    /// Check `spec` against `net` and build the fan-out tables, refusing (a `Memory` error)
    /// tables over `memory_limit` bytes.
    pub fn new(net: &Network, spec: ChipSpec, memory_limit: u64) -> Result<ChipMap> {
        let shapes = net.shapes();
        check_spec(&shapes, &spec)?;
        let n_cores = spec.tiles.len();
        // Upper bound of the table entries: per neuron, at most its fan-out and at most the
        // number of cores.
        let mut bound = Bytes::ZERO;
        for (l, shape) in shapes.iter().enumerate() {
            let fan = net.fan_out(l);
            let n = fan
                .iter()
                .map(|&f| f.min(n_cores as u64) as usize)
                .sum::<usize>();
            bound = bound
                .plus(Bytes::of(n, std::mem::size_of::<Entry>()))
                .plus(Bytes::of(shape.size() + 1, 8));
        }
        bound.check(memory_limit, "the chip map's fan-out tables")?;
        let mut layers = Vec::with_capacity(shapes.len());
        for (l, p) in spec.layers.iter().enumerate() {
            layers.push(PlacedLayer {
                cores: to_hwc(&p.cores, shapes[l])?,
                compartments: p.compartments,
                reset_synapse: p.reset_synapse,
                weight_bits: p.weight_bits,
                start: Vec::new(),
                entries: Vec::new(),
            });
        }
        for s in 0..shapes.len() {
            let (start, entries) = fan_table(net, &shapes, &layers, &spec.tiles, s)?;
            layers[s].start = start;
            layers[s].entries = entries;
        }
        Ok(ChipMap {
            layers,
            tiles: spec.tiles,
            format: spec.format,
            shapes,
        })
    }

    pub fn n_cores(&self) -> usize {
        self.tiles.len()
    }

    /// Neuron `i`'s (H, W, C index of layer `l`) destination cores.
    #[inline(always)]
    pub fn fan(&self, l: usize, i: usize) -> &[Entry] {
        let ly = &self.layers[l];
        &ly.entries[ly.start[i] as usize..ly.start[i + 1] as usize]
    }
}

fn check_spec(shapes: &[Shape], spec: &ChipSpec) -> Result<()> {
    if spec.layers.len() != shapes.len() {
        return Err(Error::shape(format!(
            "chip map: the network has {} layers (input included), the placement {}",
            shapes.len(),
            spec.layers.len()
        )));
    }
    let n_cores = spec.tiles.len();
    if n_cores == 0 || n_cores > u32::MAX as usize {
        return Err(Error::config(format!(
            "chip map: the placement must have 1 to {} cores, got {n_cores}",
            u32::MAX
        )));
    }
    let f = spec.format;
    if f.word_bits == 0 || f.max_per_entry == 0 {
        return Err(Error::config(
            "chip map: synapse word bits and synapses per entry must be at least 1",
        ));
    }
    for (l, (p, s)) in spec.layers.iter().zip(shapes).enumerate() {
        if p.cores.len() != s.size() {
            return Err(Error::shape(format!(
                "chip map: layer {l} has {} neurons (shape {}), its placement lists {} cores",
                s.size(),
                s.text(),
                p.cores.len()
            )));
        }
        if let Some(&bad) = p.cores.iter().find(|&&c| c as usize >= n_cores) {
            return Err(Error::config(format!(
                "chip map: layer {l} places a neuron on core {bad}, the placement has {n_cores} \
                 cores"
            )));
        }
        if p.compartments == 0 || p.weight_bits == 0 || p.weight_bits > 32 {
            return Err(Error::config(format!(
                "chip map: layer {l} needs at least 1 compartment per neuron and 1 to 32 weight \
                 bits, got {} and {}",
                p.compartments, p.weight_bits
            )));
        }
    }
    Ok(())
}

/// C, H, W order to the engine's H, W, C order.
fn to_hwc(chw: &[u32], s: Shape) -> Result<Vec<u32>> {
    let mut out = zeroed::<u32>(chw.len(), "the chip map")?;
    let hw = s.h * s.w;
    for c in 0..s.c {
        for p in 0..hw {
            out[p * s.c + c] = chw[c * hw + p];
        }
    }
    Ok(out)
}

/// The targets of one group, per presynaptic neuron (see [`Targets::each`]).
struct Targets {
    kind: usize,
    layer: usize,
    shape: Shape,
    rows: Reach,
    cols: Reach,
    /// First output channel of input channel `c`: `first + (c / ipg) · per` (channel-wise and
    /// grouped kinds), `per` channels from there; dense groups reach `first .. first + per`.
    first: usize,
    ipg: usize,
    per: usize,
    dense: bool,
}

impl Targets {
    fn new(info: &GroupInfo, layer: usize, src: Shape, shape: Shape) -> Result<Targets> {
        let (c0, c1) = info.channels;
        let axis = |k, s, b, a| Axis {
            kernel: k,
            stride: s,
            before: b,
            after: a,
        };
        let (t, b, l, r) = info.padding;
        let rows_axis = axis(info.kernel.0, info.stride.0, t, b);
        let cols_axis = axis(info.kernel.1, info.stride.1, l, r);
        let dense = info.kind == "dense";
        let (rows, cols) = if dense {
            let one = axis(1, 1, 0, 0);
            (Reach::new(1, 1, one)?, Reach::new(1, 1, one)?)
        } else {
            (
                Reach::new(src.h, shape.h, rows_axis)?,
                Reach::new(src.w, shape.w, cols_axis)?,
            )
        };
        let (ipg, per) = match info.kind {
            "conv" => (src.c / info.groups, (c1 - c0) / info.groups),
            "pool" => (1, 1),
            _ => (1, c1 - c0),
        };
        Ok(Targets {
            kind: kind_slot(info.kind),
            layer,
            shape,
            rows,
            cols,
            first: c0,
            ipg,
            per,
            dense,
        })
    }

    /// Call `f(target)` for every H, W, C index of the layer that neuron `(y, x, c)` reaches.
    #[inline]
    fn each(&self, y: usize, x: usize, c: usize, mut f: impl FnMut(usize)) {
        if self.dense {
            for t in self.first..self.first + self.per {
                f(t);
            }
            return;
        }
        let s = self.shape;
        let c_first = self.first + (c / self.ipg) * self.per;
        for &(_, oy) in self.rows.of(y) {
            for &(_, ox) in self.cols.of(x) {
                let base = (oy as usize * s.w + ox as usize) * s.c + c_first;
                for t in base..base + self.per {
                    f(t);
                }
            }
        }
    }
}

/// The fan-out table of source layer `s`.
fn fan_table(
    net: &Network,
    shapes: &[Shape],
    layers: &[PlacedLayer],
    tiles: &[(u32, u32)],
    s: usize,
) -> Result<(Vec<u32>, Vec<Entry>)> {
    let src = shapes[s];
    let mut groups = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        for g in &layer.groups {
            if g.info.source == s {
                groups.push(Targets::new(&g.info, i + 1, src, shapes[i + 1])?);
            }
        }
    }
    let mut start = zeroed::<u32>(src.size() + 1, "the chip map")?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut slot = vec![u32::MAX; tiles.len()];
    let own = &layers[s].cores;
    for y in 0..src.h {
        for x in 0..src.w {
            for c in 0..src.c {
                let i = (y * src.w + x) * src.c + c;
                let first = entries.len();
                let (sx, sy) = tiles[own[i] as usize];
                for g in &groups {
                    let cores = &layers[g.layer].cores;
                    g.each(y, x, c, |t| {
                        let core = cores[t];
                        let at = &mut slot[core as usize];
                        if *at == u32::MAX {
                            *at = (entries.len() - first) as u32;
                            let (tx, ty) = tiles[core as usize];
                            entries.push(Entry {
                                core,
                                dx: tx.abs_diff(sx),
                                dy: ty.abs_diff(sy),
                                synapses: [0; 3],
                            });
                        }
                        entries[first + *at as usize].synapses[g.kind] += 1;
                    });
                }
                entries[first..].sort_unstable_by_key(|e| e.core);
                for e in &entries[first..] {
                    slot[e.core as usize] = u32::MAX;
                }
                if entries.len() > u32::MAX as usize {
                    return Err(Error::config(format!(
                        "chip map: layer {s} has more than {} (neuron, core) pairs",
                        u32::MAX
                    )));
                }
                start[i + 1] = entries.len() as u32;
            }
        }
    }
    Ok((start, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bits_round_to_words_and_split_entries() {
        let f = SynapseFormat {
            word_bits: 64,
            header_bits: 10,
            max_per_entry: 64,
            min_index_bits: 6,
        };
        // 19 bits per synapse: 1 -> 29 bits -> 1 word; 3 -> 67 -> 2; 64 -> 1226 -> 20 words;
        // 65 -> one full entry + one entry of one synapse.
        let got: Vec<u64> = [0, 1, 3, 64, 65]
            .iter()
            .map(|&n| f.entry_bits(n, 19))
            .collect();
        assert_eq!(got, vec![0, 64, 128, 20 * 64, 21 * 64]);
        assert_eq!(f.index_bits(1), 6);
        assert_eq!(f.index_bits(64), 6);
        assert_eq!(f.index_bits(65), 7);
        assert_eq!(f.index_bits(1024), 10);
        assert_eq!(f.index_bits(1025), 11);
    }
}
