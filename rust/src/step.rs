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
    /// Spike bits of this step (bit `i % 64` of word `i / 64`).
    pub(crate) mask: Vec<u64>,
    pub(crate) spikes: Vec<u32>,
    pub(crate) prev_spikes: Vec<u32>,
    pub(crate) counts: Vec<i32>,
    /// Whether this run needs the layer's spike counts (recorded, or the early-exit decision).
    pub(crate) counting: bool,
}

/// Bytes of one worker's state for a layer of `size` neurons (`None`: too many to count), with
/// an i16 accumulator when `narrow` and a current register when `current`.
pub(crate) fn state_bytes(size: Option<usize>, narrow: bool, current: bool) -> Bytes {
    let per = if narrow { 18 } else { 20 } + if current { 4 } else { 0 };
    match size {
        Some(n) => Bytes::of(n, per).plus(Bytes::of(mask_words(n), 8)),
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
            mask: zeroed(mask_words(size), what)?,
            spikes,
            prev_spikes,
            counts: zeroed(size, what)?,
            counting: true,
        })
    }
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
        let src = &sources[g.info.source];
        let spikes = if delay == 0 {
            &src.spikes
        } else {
            &src.prev_spikes
        };
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
    spikes: &'a [u32],
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

/// Collect this step's spikes from the mask and count them.
#[inline(always)]
pub(crate) fn finish_step(st: &mut LayerState) {
    gather_spikes(&st.mask, &mut st.spikes);
    if st.counting {
        for &i in &st.spikes {
            st.counts[i as usize] += 1;
        }
    }
}

/// Add the synapses of group `g` for every spike in `spikes` (H, W, C indices of its source)
/// into `acc` (the layer's, H, W, C); returns the number of synaptic events.
#[inline(always)]
fn scatter<A: Acc, K: Kernels>(
    k: K,
    layer: &Layer,
    g: &Group,
    spikes: &[u32],
    acc: &mut [A],
) -> i64 {
    let mut events = 0i64;
    let (out_w, c_out, offset) = (layer.shape.w, layer.shape.c, g.offset);
    match &g.synapses {
        Synapses::Conv {
            weight,
            kh,
            kw,
            ipg,
            opg,
            rows,
            cols,
            spans,
            coords,
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
                        let w0 = w_base + ky as usize * w_row;
                        let a0 = a_base + oy as usize * a_row;
                        A::add_run(k, &mut acc[a0..a0 + len], &weight[w0..w0 + len]);
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
                            let w0 = w_base - kx as usize * o;
                            let a0 = a_base + ox as usize * c_out;
                            A::add_run(k, &mut acc[a0..a0 + o], &weight[w0..w0 + o]);
                        }
                    }
                }
            }
        }
        Synapses::Pool { weight, target } => {
            for &s in spikes {
                let t = target[s as usize];
                if t != NO_TARGET {
                    let a = &mut acc[t as usize];
                    *a = a.add(*weight);
                    events += 1;
                }
            }
        }
        Synapses::PoolWindows {
            weight,
            rows,
            cols,
            coords,
        } => {
            for &s in spikes {
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
        }
        Synapses::Dense { weight, out } => {
            let o = *out;
            for &s in spikes {
                let w0 = s as usize * o;
                A::add_run(k, &mut acc[offset..offset + o], &weight[w0..w0 + o]);
            }
            events = (spikes.len() * o) as i64;
        }
    }
    events
}
