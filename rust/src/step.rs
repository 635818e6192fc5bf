//! One time step of one layer: the synaptic scatter of its groups' spikes, the neuron update,
//! and the spikes it emits; and the per-worker state it works on. The hot code of the engine,
//! compiled for the run's kernel set through [`Task`]s ([`layer_step`]).

use crate::error::{zeroed, Bytes, Error, Result};
use crate::kernels::{Kernels, Task};
use crate::network::{Group, Layer, Synapses, NO_TARGET};
use crate::neuron::{gather_spikes, mask_words, update_cuba, update_layer, Acc, Reset, LEAK_MAX};

/// Per-layer state of one worker, reused from image to image.
pub(crate) struct LayerState {
    pub(crate) v: Vec<i32>,
    /// The synaptic current of CUBA layers (`du < 4096`); empty otherwise.
    pub(crate) u: Vec<i32>,
    /// The step's synaptic input, in i32 or (for narrow layers) i16; the other one is empty.
    pub(crate) acc: Vec<i32>,
    pub(crate) acc16: Vec<i16>,
    /// Spike bits of this step (bit `i % 64` of word `i / 64`), and of the step before; one
    /// word longer than the neurons need, always zero, so that any 64 bits can be read at once.
    pub(crate) mask: Vec<u64>,
    pub(crate) prev_mask: Vec<u64>,
    /// This step's and the previous step's spikes as indices (increasing), kept only when a
    /// synapse group reads them (`listed`); groups that read the mask do not need them.
    pub(crate) spikes: Vec<u32>,
    pub(crate) prev_spikes: Vec<u32>,
    pub(crate) counts: Vec<i32>,
    /// Whether this run needs the layer's spike counts (recorded, or the early-exit decision).
    pub(crate) counting: bool,
    /// Whether some synapse group reads this layer's spikes as a list of indices.
    pub(crate) listed: bool,
}

/// Bytes of one worker's state for a layer of `size` neurons (`None`: too many to count), with
/// an i16 accumulator when `narrow` and a current register when `current`.
pub(crate) fn state_bytes(size: Option<usize>, narrow: bool, current: bool) -> Bytes {
    let per = if narrow { 18 } else { 20 } + if current { 4 } else { 0 };
    match size {
        Some(n) => Bytes::of(n, per).plus(Bytes::of(mask_words(n) + 1, 16)),
        None => Bytes(None),
    }
}

impl LayerState {
    pub(crate) fn new(size: usize, narrow: bool, current: bool) -> Result<Self> {
        let what = "the simulation state";
        let mut spikes = Vec::new();
        let mut prev_spikes = Vec::new();
        let reserve = |v: &mut Vec<u32>| {
            v.try_reserve_exact(size)
                .map_err(|_| Error::allocation(what, Bytes::of(size, 4).0))
        };
        reserve(&mut spikes)?;
        reserve(&mut prev_spikes)?;
        Ok(LayerState {
            v: zeroed(size, what)?,
            u: zeroed(if current { size } else { 0 }, what)?,
            acc: zeroed(if narrow { 0 } else { size }, what)?,
            acc16: zeroed(if narrow { size } else { 0 }, what)?,
            mask: zeroed(mask_words(size) + 1, what)?,
            prev_mask: zeroed(mask_words(size) + 1, what)?,
            spikes,
            prev_spikes,
            counts: zeroed(size, what)?,
            counting: true,
            listed: true,
        })
    }

    /// Prepare for a new image: potential `v0`, no current, input, spikes or counts.
    pub(crate) fn reset(&mut self, v0: i32, counting: bool, listed: bool) {
        self.counting = counting;
        self.listed = listed;
        self.mask.fill(0);
        self.prev_mask.fill(0);
        self.v.fill(v0);
        self.u.fill(0);
        self.acc.fill(0);
        self.acc16.fill(0);
        self.counts.fill(0);
        self.spikes.clear();
        self.prev_spikes.clear();
    }

    /// Start a new step: this step's spikes become the previous step's.
    #[inline]
    pub(crate) fn next_step(&mut self) {
        std::mem::swap(&mut self.spikes, &mut self.prev_spikes);
        std::mem::swap(&mut self.mask, &mut self.prev_mask);
    }

    /// The spikes a group reads with synaptic delay `delay` (0: this step's, 1: the last's).
    #[inline(always)]
    pub(crate) fn seen(&self, delay: usize) -> Spikes<'_> {
        if delay == 0 {
            Spikes {
                list: &self.spikes,
                mask: &self.mask,
            }
        } else {
            Spikes {
                list: &self.prev_spikes,
                mask: &self.prev_mask,
            }
        }
    }
}

/// One step's spikes of a layer, as indices (when the layer is `listed`) and as bits.
#[derive(Clone, Copy)]
pub(crate) struct Spikes<'a> {
    pub(crate) list: &'a [u32],
    pub(crate) mask: &'a [u64],
}

/// Per layer (input first), whether some synapse group reads its spikes as a list of indices
/// (every kind but non-overlapping pooling, which reads the bits).
pub(crate) fn listed_layers(net: &crate::network::Network) -> Vec<bool> {
    let mut listed = vec![false; net.layers.len() + 1];
    for g in net.layers.iter().flat_map(|l| &l.groups) {
        if !matches!(g.synapses, Synapses::Pool { .. }) {
            listed[g.info.source] = true;
        }
    }
    listed
}

/// One step of one layer: each group's scatter and the neuron update run as [`Task`]s, so that
/// they are compiled for the run's kernel set (each a small function of its own, as the
/// compiler optimises the hot scatter loop best), then the spikes are collected. Returns the
/// synaptic events. `sources` are the states of every earlier layer.
#[inline]
pub(crate) fn layer_step<K: Kernels>(
    k: K,
    layer: &Layer,
    sources: &[LayerState],
    delay: usize,
    st: &mut LayerState,
) -> i64 {
    let mut events = 0;
    for g in &layer.groups {
        let spikes = sources[g.info.source].seen(delay);
        events += if layer.narrow {
            k.run(Scatter {
                layer,
                group: g,
                spikes,
                acc: &mut st.acc16[..],
            })
        } else {
            k.run(Scatter {
                layer,
                group: g,
                spikes,
                acc: &mut st.acc[..],
            })
        };
    }
    k.run(Update { layer, state: st });
    finish_step(st);
    events
}

/// The synapses of one group for this step's spikes, as a [`Task`] (see [`scatter`]).
struct Scatter<'a, A> {
    layer: &'a Layer,
    group: &'a Group,
    spikes: Spikes<'a>,
    acc: &'a mut [A],
}

impl<A: Acc> Task for Scatter<'_, A> {
    type Output = i64;

    #[inline(always)]
    fn run<K: Kernels>(self, k: K) -> i64 {
        scatter(k, self.layer, self.group, self.spikes, self.acc)
    }
}

/// The neuron update of one layer, as a [`Task`] (see [`update`]).
struct Update<'a> {
    layer: &'a Layer,
    state: &'a mut LayerState,
}

impl Task for Update<'_> {
    type Output = ();

    #[inline(always)]
    fn run<K: Kernels>(self, k: K) {
        let (layer, st) = (self.layer, self.state);
        if layer.narrow {
            update(k, layer, &mut st.v, &mut st.u, &mut st.acc16, &mut st.mask);
        } else {
            update(k, layer, &mut st.v, &mut st.u, &mut st.acc, &mut st.mask);
        }
    }
}

/// Update a layer's neurons. Layers without a current register that reset by subtraction
/// (every layer before CUBA neurons existed) take the original path.
#[inline(always)]
fn update<A: Acc, K: Kernels>(
    k: K,
    layer: &Layer,
    v: &mut [i32],
    u: &mut [i32],
    acc: &mut [A],
    mask: &mut [u64],
) {
    let (th, dv, du, bias) = (layer.threshold, layer.leak, layer.du, &layer.bias[..]);
    match (du < LEAK_MAX, layer.reset) {
        (false, Reset::Subtract) if dv == 0 => A::update_plain(k, v, acc, mask, bias, th),
        (false, Reset::Subtract) => update_layer::<A, true>(v, acc, mask, bias, th, dv),
        (false, Reset::Zero) => update_cuba::<A, false, true>(v, u, acc, mask, bias, th, dv, du),
        (true, Reset::Subtract) => update_cuba::<A, true, false>(v, u, acc, mask, bias, th, dv, du),
        (true, Reset::Zero) => update_cuba::<A, true, true>(v, u, acc, mask, bias, th, dv, du),
    }
}

/// Collect this step's spikes from the mask (if some group reads them as a list) and count
/// them (if the run needs the counts).
#[inline(always)]
pub(crate) fn finish_step(st: &mut LayerState) {
    if st.listed {
        gather_spikes(&st.mask, &mut st.spikes);
        if st.counting {
            for &i in &st.spikes {
                st.counts[i as usize] += 1;
            }
        }
    } else if st.counting {
        count_spikes(&st.mask, &mut st.counts);
    }
}

/// `counts[i] += 1` for every set bit `i` of `mask`.
#[inline(always)]
fn count_spikes(mask: &[u64], counts: &mut [i32]) {
    for (w, &word) in mask.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            counts[w * 64 + word.trailing_zeros() as usize] += 1;
            word &= word - 1;
        }
    }
}

/// Add the synapses of group `g` for every spike of its source (H, W, C indices) into `acc`
/// (the layer's, H, W, C); returns the number of synaptic events.
#[inline(always)]
fn scatter<A: Acc, K: Kernels>(
    k: K,
    layer: &Layer,
    g: &Group,
    spikes: Spikes,
    acc: &mut [A],
) -> i64 {
    let (out_w, c_out, offset) = (layer.shape.w, layer.shape.c, g.offset);
    match &g.synapses {
        Synapses::Pool {
            weight,
            target,
            channels,
        } => pool_from_mask(k, *weight, target, *channels, spikes.mask, acc),
        Synapses::PoolWindows {
            weight,
            rows,
            cols,
            coords,
        } => {
            let mut events = 0i64;
            for &s in spikes.list {
                let (y, x, c) = coords.get(s as usize);
                let (rs, cs) = (rows.of(y), cols.of(x));
                events += (rs.len() * cs.len()) as i64;
                for &(_, oy) in rs {
                    for &(_, ox) in cs {
                        let a = &mut acc[(oy as usize * out_w + ox as usize) * c_out + offset + c];
                        *a = a.add(*weight);
                    }
                }
            }
            events
        }
        Synapses::Conv { weight, .. } | Synapses::Dense { weight, .. } => {
            runs(layer, g, spikes.list, |a0, w0, len| {
                A::add_run(k, &mut acc[a0..a0 + len], &weight[w0..w0 + len])
            })
        }
    }
}

/// The synaptic runs of a convolution or dense group for `spikes` (H, W, C indices of its
/// source): for each, `run(a0, w0, len)` means `acc[a0 + j] += weight[w0 + j]` for `j < len`
/// (`acc` the layer's accumulator, `weight` the group's table). Returns the synaptic events.
/// Pooling groups have no runs (0).
#[inline(always)]
pub(crate) fn runs(
    layer: &Layer,
    g: &Group,
    spikes: &[u32],
    mut run: impl FnMut(usize, usize, usize),
) -> i64 {
    let mut events = 0i64;
    let (out_w, c_out, offset) = (layer.shape.w, layer.shape.c, g.offset);
    match &g.synapses {
        Synapses::Conv {
            kh,
            kw,
            ipg,
            opg,
            rows,
            cols,
            spans,
            coords,
            ..
        } => {
            let (kh, kw, ipg, o) = (*kh, *kw, *ipg, *opg);
            // Weight offsets: input channel c, kernel row ky, flipped column kxf is
            // ((c · kh + ky) · kw + kxf) · o.
            let (w_row, w_chan) = (kw * o, kh * kw * o);
            if let Some(spans) = spans {
                // One group writing every channel (o == c_out, offset 0), x-stride 1: one
                // contiguous run per kernel row.
                let a_row = out_w * o;
                for &s in spikes {
                    let (y, x, c) = coords.get(s as usize);
                    let rs = rows.of(y);
                    let (ox, kxf, n) = spans[x];
                    let len = n as usize * o;
                    events += (rs.len() * len) as i64;
                    let w_base = c * w_chan + kxf as usize * o;
                    let a_base = ox as usize * o;
                    for &(ky, oy) in rs {
                        run(
                            a_base + oy as usize * a_row,
                            w_base + ky as usize * w_row,
                            len,
                        );
                    }
                }
            } else {
                for &s in spikes {
                    let (y, x, c) = coords.get(s as usize);
                    let (rs, cs) = (rows.of(y), cols.of(x));
                    let first = offset + (c / ipg) * o;
                    events += (rs.len() * cs.len() * o) as i64;
                    for &(ky, oy) in rs {
                        let w_base = c * w_chan + ky as usize * w_row + (kw - 1) * o;
                        let a_base = oy as usize * out_w * c_out + first;
                        for &(kx, ox) in cs {
                            run(a_base + ox as usize * c_out, w_base - kx as usize * o, o);
                        }
                    }
                }
            }
        }
        Synapses::Dense { out, .. } => {
            let o = *out;
            for &s in spikes {
                run(offset, s as usize * o, o);
            }
            events = (spikes.len() * o) as i64;
        }
        Synapses::Pool { .. } | Synapses::PoolWindows { .. } => {}
    }
    events
}

/// Non-overlapping pooling read straight from the source's spike bits: each source position
/// `p` (of `channels` neurons, bits `p · channels ..`) reaches the run of output channels that
/// starts at `target[p]` (or none), so its bits, 32 channels at a time, select which of them
/// receive `weight`. At a few percent density this is far cheaper than listing the spikes and
/// adding them one by one. Returns the synaptic events (spikes with a target).
#[inline(always)]
fn pool_from_mask<A: Acc, K: Kernels>(
    k: K,
    weight: i16,
    target: &[u32],
    channels: usize,
    mask: &[u64],
    acc: &mut [A],
) -> i64 {
    let mut events = 0i64;
    for (p, &t) in target.iter().enumerate() {
        if t == NO_TARGET {
            continue;
        }
        let (mut bit, t) = (p * channels, t as usize);
        let mut ch = 0;
        while ch < channels {
            let take = (channels - ch).min(32);
            let bits = bits_at(mask, bit) as u32 & (u32::MAX >> (32 - take));
            if bits != 0 {
                events += bits.count_ones() as i64;
                A::add_bits(k, &mut acc[t + ch..t + ch + take], bits, weight);
            }
            ch += 32;
            bit += 32;
        }
    }
    events
}

/// The 64 bits of `mask` from bit `bit` on (the mask's last word is padding, always zero).
#[inline(always)]
fn bits_at(mask: &[u64], bit: usize) -> u64 {
    let (w, s) = (bit >> 6, bit & 63);
    if s == 0 {
        mask[w]
    } else {
        (mask[w] >> s) | (mask[w + 1] << (64 - s))
    }
}
