//! One time step of one layer: the synaptic scatter of its groups' spikes ([`crate::scatter`]),
//! the neuron update, and the spikes it emits; and the per-worker state it works on. The hot
//! code of the engine, compiled for the run's kernel set through [`Task`]s ([`layer_step`]).
//!
//! **Complemented input.** A pixel of value `p` makes its input neuron spike in about `p / θ` of
//! the steps, so a bright pixel spikes in most of them. For the convolution and dense groups
//! that read the input layer, the engine splits the input neurons per image into the *flipped*
//! ones, expected to spike in more than half of the steps, and the others: it adds, once per
//! image, the synapses of every flipped neuron into a constant `base` current of the layer, and
//! each step adds the synapses of the others that spiked and subtracts those of the flipped
//! ones that did not (the *quiet* ones). The sum is the same integer (wrapping additions in a
//! fixed width are exact whatever the order, and the true sum fits the accumulator), with
//! roughly half the additions on real images. The events counted are still the synapses of the
//! spikes: the flipped neurons' synapses once, less those of the quiet ones, plus the others'.
//! Where the input goes straight to the potential (no current register), the base is added to
//! the layer's bias once per image (`bias`, per neuron) instead of to the accumulator every step:
//! the accumulator then holds only the step's difference, which fits it as the whole input
//! does (its magnitude is at most the sum of the synapses' magnitudes).

use crate::aligned::Aligned;
use crate::error::{zeroed, Bytes, Error, Result};
use crate::kernels::{Kernels, Task};
use crate::network::{Group, Layer, Network, Synapses};
use crate::neuron::{gather_spikes, mask_words, update_cuba, update_layer, Acc, Reset, LEAK_MAX};
use crate::scatter::scatter;

/// Per-layer state of one worker, reused from image to image.
pub(crate) struct LayerState {
    pub(crate) v: Aligned<i32>,
    /// The synaptic current of CUBA layers (`du < 4096`); empty otherwise.
    pub(crate) u: Vec<i32>,
    /// The step's synaptic input, in i32 or (for narrow layers) i16; the other one is empty.
    pub(crate) acc: Aligned<i32>,
    pub(crate) acc16: Aligned<i16>,
    /// Spike bits of this step (bit `i % 64` of word `i / 64`), and of the step before; one
    /// word longer than the neurons need, always zero, so that any 64 bits can be read at once.
    pub(crate) mask: Vec<u64>,
    pub(crate) prev_mask: Vec<u64>,
    /// This step's and the previous step's spikes as indices (increasing), kept only when a
    /// synapse group reads them (`listed`); groups that read the mask do not need them. For a
    /// complemented input layer: only the spikes of neurons that are not flipped.
    pub(crate) spikes: Vec<u32>,
    pub(crate) prev_spikes: Vec<u32>,
    /// A complemented input layer (see the module notes): its flipped neurons (bits, per
    /// image), and this and the previous step's flipped neurons that did not spike. Empty
    /// otherwise.
    pub(crate) flip: Vec<u64>,
    pub(crate) quiet: Vec<u32>,
    pub(crate) prev_quiet: Vec<u32>,
    /// A layer fed by a complemented input: the input of all flipped neurons spiking (per
    /// image, i32 or i16 as `acc`) and the synaptic events that makes. Empty otherwise.
    pub(crate) base: Aligned<i32>,
    pub(crate) base16: Aligned<i16>,
    pub(crate) base_events: i64,
    /// A layer fed by a complemented input, without a current register: its bias plus the
    /// base, per neuron, H, W, C (per image). Empty otherwise.
    pub(crate) bias: Aligned<i32>,
    pub(crate) counts: Vec<i32>,
    /// Whether this run needs the layer's spike counts (recorded, or the early-exit decision).
    pub(crate) counting: bool,
    /// Whether some synapse group reads this layer's spikes as a list of indices.
    pub(crate) listed: bool,
    /// Synaptic additions this state's steps of the layer performed (fewer than the events
    /// where the input is complemented) since [`Workspaces`](crate::engine::Workspaces) last
    /// read them: what the split of one image over two cores balances.
    pub(crate) adds: u64,
    /// Steps of the layer this state simulated over the same span.
    pub(crate) steps: u64,
}

/// What the state of each layer needs beyond the neurons (see [`Plan::of`]).
#[derive(Clone, Copy, Default)]
pub(crate) struct Role {
    /// Some synapse group reads the layer's spikes as a list.
    pub(crate) listed: bool,
    /// The input layer, complemented for the groups that read it.
    pub(crate) flips: bool,
    /// A layer with a group that reads the complemented input.
    pub(crate) based: bool,
    /// A based layer whose base goes into a per-neuron bias (it has no current register).
    pub(crate) biased: bool,
}

/// Per layer (input first), what its state needs.
pub(crate) struct Plan(pub(crate) Vec<Role>);

impl Plan {
    /// The roles of `net`'s layers. The input layer is complemented when a convolution or
    /// dense group reads it and no overlapping pooling group (which needs every spike).
    pub(crate) fn of(net: &Network) -> Plan {
        let mut roles = vec![Role::default(); net.layers.len() + 1];
        let mut blocked = false;
        for g in net.layers.iter().flat_map(|l| &l.groups) {
            if !matches!(g.synapses, Synapses::Pool { .. }) {
                roles[g.info.source].listed = true;
            }
            blocked |= g.info.source == 0 && matches!(g.synapses, Synapses::PoolWindows { .. });
        }
        let flips = !blocked && net.layers.iter().flat_map(|l| &l.groups).any(complemented);
        roles[0].flips = flips;
        for (i, layer) in net.layers.iter().enumerate() {
            roles[i + 1].based = flips && layer.groups.iter().any(complemented);
            roles[i + 1].biased = roles[i + 1].based && layer.du >= LEAK_MAX;
        }
        Plan(roles)
    }
}

/// Whether group `g` reads the input layer's spikes as runs (convolution, dense), the kind a
/// complemented input serves.
fn complemented(g: &Group) -> bool {
    g.info.source == 0 && matches!(g.synapses, Synapses::Conv { .. } | Synapses::Dense { .. })
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

/// Bytes a layer of `size` neurons needs beyond [`state_bytes`] for its `role`.
pub(crate) fn role_bytes(size: usize, narrow: bool, role: Role) -> Bytes {
    let flip = if role.flips {
        Bytes::of(mask_words(size) + 1, 8).plus(Bytes::of(size, 8))
    } else {
        Bytes::ZERO
    };
    let base = if role.based {
        Bytes::of(size, if narrow { 2 } else { 4 })
    } else {
        Bytes::ZERO
    };
    let bias = if role.biased {
        Bytes::of(size, 4)
    } else {
        Bytes::ZERO
    };
    flip.plus(base).plus(bias)
}

impl LayerState {
    pub(crate) fn new(size: usize, narrow: bool, current: bool, role: Role) -> Result<Self> {
        let what = "the simulation state";
        let list = |n: usize| -> Result<Vec<u32>> {
            let mut v = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|_| Error::allocation(what, Bytes::of(n, 4).0))?;
            Ok(v)
        };
        let flips = if role.flips { size } else { 0 };
        let based = if role.based { size } else { 0 };
        Ok(LayerState {
            v: Aligned::zeroed(size, what)?,
            u: zeroed(if current { size } else { 0 }, what)?,
            acc: Aligned::zeroed(if narrow { 0 } else { size }, what)?,
            acc16: Aligned::zeroed(if narrow { size } else { 0 }, what)?,
            mask: zeroed(mask_words(size) + 1, what)?,
            prev_mask: zeroed(mask_words(size) + 1, what)?,
            spikes: list(size)?,
            prev_spikes: list(size)?,
            flip: zeroed(if role.flips { mask_words(size) + 1 } else { 0 }, what)?,
            quiet: list(flips)?,
            prev_quiet: list(flips)?,
            base: Aligned::zeroed(if narrow { 0 } else { based }, what)?,
            base16: Aligned::zeroed(if narrow { based } else { 0 }, what)?,
            base_events: 0,
            bias: Aligned::zeroed(if role.biased { size } else { 0 }, what)?,
            counts: zeroed(size, what)?,
            counting: true,
            listed: role.listed,
            adds: 0,
            steps: 0,
        })
    }

    /// Prepare for a new image: potential `v0`, no current, input, spikes or counts.
    pub(crate) fn reset(&mut self, v0: i32, counting: bool) {
        self.counting = counting;
        self.mask.fill(0);
        self.prev_mask.fill(0);
        self.v.fill(v0);
        self.u.fill(0);
        self.acc.fill(0);
        self.acc16.fill(0);
        if counting {
            // Read only where counted (recorded, early exit, observer), and then cleared here.
            self.counts.fill(0);
        }
        self.spikes.clear();
        self.prev_spikes.clear();
        self.quiet.clear();
        self.prev_quiet.clear();
    }

    /// Start a new step: this step's spikes become the previous step's.
    #[inline]
    pub(crate) fn next_step(&mut self) {
        std::mem::swap(&mut self.spikes, &mut self.prev_spikes);
        std::mem::swap(&mut self.mask, &mut self.prev_mask);
        std::mem::swap(&mut self.quiet, &mut self.prev_quiet);
    }

    /// The spikes a group reads with synaptic delay `delay` (0: this step's, 1: the last's).
    #[inline(always)]
    pub(crate) fn seen(&self, delay: usize) -> Spikes<'_> {
        let flipped = !self.flip.is_empty();
        if delay == 0 {
            Spikes {
                list: &self.spikes,
                quiet: &self.quiet,
                mask: &self.mask,
                flipped,
            }
        } else {
            Spikes {
                list: &self.prev_spikes,
                quiet: &self.prev_quiet,
                mask: &self.prev_mask,
                flipped,
            }
        }
    }
}

/// One step's spikes of a layer, as indices (when the layer is `listed`) and as bits. Of a
/// complemented input (`flipped`), `list` holds only the spikes of neurons not flipped and
/// `quiet` the flipped neurons that did not spike.
#[derive(Clone, Copy)]
pub(crate) struct Spikes<'a> {
    pub(crate) list: &'a [u32],
    pub(crate) quiet: &'a [u32],
    pub(crate) mask: &'a [u64],
    pub(crate) flipped: bool,
}

/// Set up the complemented input for one image (`pixels`, the input layer's bias, H, W, C) of
/// `timesteps` steps: which input neurons are flipped, and the base current of each layer in
/// `layers` that reads them. Does nothing when the input is not complemented.
pub(crate) fn prepare_image<K: Kernels>(
    k: K,
    net: &Network,
    state: &mut [LayerState],
    pixels: &[i32],
    timesteps: usize,
    layers: std::ops::Range<usize>,
) {
    if state[0].flip.is_empty() {
        return;
    }
    // A neuron spiking in a fraction r of the steps costs r·T additions per synapse plainly
    // and (1 − r)·T + 1 flipped: flip when 2·r·T > T + 1, with r = min(p, θ) / θ.
    let th = net.input_threshold as i64;
    let t = timesteps as i64;
    let (input, rest) = state.split_at_mut(1);
    let input = &mut input[0];
    input.flip.fill(0);
    for (i, &p) in pixels.iter().enumerate() {
        if 2 * (p as i64).min(th) * t > (t + 1) * th {
            input.flip[i >> 6] |= 1 << (i & 63);
        }
    }
    let mut flipped = Vec::new();
    gather_spikes(&input.flip, &mut flipped);
    // Before the first step nothing has spiked: every flipped neuron was quiet (what a group
    // with a synaptic delay reads in step 1).
    input.quiet.clear();
    input.quiet.extend_from_slice(&flipped);
    let all = Spikes {
        list: &flipped,
        quiet: &[],
        mask: &input.flip,
        flipped: false,
    };
    for l in layers.filter(|&l| l > 0) {
        let st = &mut rest[l - 1];
        if st.base.is_empty() && st.base16.is_empty() {
            continue;
        }
        let layer = &net.layers[l - 1];
        st.base.fill(0);
        st.base16.fill(0);
        st.base_events = 0;
        for g in layer.groups.iter().filter(|g| complemented(g)) {
            st.base_events += if layer.narrow {
                k.run(Scatter::<i16, false> {
                    layer,
                    group: g,
                    spikes: all,
                    acc: &mut st.base16[..],
                })
            } else {
                k.run(Scatter::<i32, false> {
                    layer,
                    group: g,
                    spikes: all,
                    acc: &mut st.base[..],
                })
            };
        }
        if !st.bias.is_empty() {
            if layer.narrow {
                fold_base(&mut st.bias, &layer.bias, &st.base16);
            } else {
                fold_base(&mut st.bias, &layer.bias, &st.base);
            }
        }
    }
}

/// `out[i] = bias[i % bias.len()] + base[i]`: a layer's bias, which repeats with its period
/// (a divisor of the layer's size), plus the base current of a complemented input.
fn fold_base<A: Acc>(out: &mut [i32], bias: &[i32], base: &[A]) {
    for (out, base) in out.chunks_mut(bias.len()).zip(base.chunks(bias.len())) {
        for ((o, &b), &x) in out.iter_mut().zip(bias).zip(base) {
            *o = b + x.get();
        }
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
    let (mut events, mut adds) = (0, 0);
    if !st.base.is_empty() || !st.base16.is_empty() {
        if st.bias.is_empty() {
            // The accumulator is zero here (the update cleared it): start from the base.
            st.acc.copy_from_slice(&st.base);
            st.acc16.copy_from_slice(&st.base16);
        }
        events += st.base_events;
    }
    for g in &layer.groups {
        let spikes = sources[g.info.source].seen(delay);
        let (e, a) = if layer.narrow {
            group_step(k, layer, g, spikes, &mut st.acc16[..])
        } else {
            group_step(k, layer, g, spikes, &mut st.acc[..])
        };
        events += e;
        adds += a;
    }
    st.adds += adds as u64;
    st.steps += 1;
    k.run(Update { layer, state: st });
    finish_step(st);
    events
}

/// One group's scatter: plain, or for a complemented input the spikes of the neurons not
/// flipped added and the quiet flipped ones subtracted (their synapses are in the base).
/// Returns the synaptic events and the additions (or subtractions) performed.
#[inline(always)]
fn group_step<A: Acc, K: Kernels>(
    k: K,
    layer: &Layer,
    group: &Group,
    spikes: Spikes,
    acc: &mut [A],
) -> (i64, i64) {
    if spikes.flipped && complemented(group) {
        let quiet = Spikes {
            list: spikes.quiet,
            ..spikes
        };
        let added = k.run(Scatter::<A, false> {
            layer,
            group,
            spikes,
            acc: &mut *acc,
        });
        let taken = k.run(Scatter::<A, true> {
            layer,
            group,
            spikes: quiet,
            acc,
        });
        (added - taken, added + taken)
    } else {
        let events = k.run(Scatter::<A, false> {
            layer,
            group,
            spikes,
            acc,
        });
        (events, events)
    }
}

/// The synapses of one group for this step's spikes, as a [`Task`] (see [`scatter`]): added,
/// or with `SUB` subtracted.
struct Scatter<'a, A, const SUB: bool> {
    layer: &'a Layer,
    group: &'a Group,
    spikes: Spikes<'a>,
    acc: &'a mut [A],
}

impl<A: Acc, const SUB: bool> Task for Scatter<'_, A, SUB> {
    type Output = i64;

    #[inline(always)]
    fn run<K: Kernels>(self, k: K) -> i64 {
        scatter::<A, K, SUB>(k, self.layer, self.group, self.spikes, self.acc)
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
        // The bias with the base in it, where the layer has one (see the module notes).
        let bias = if st.bias.is_empty() {
            &layer.bias[..]
        } else {
            &st.bias[..]
        };
        if layer.narrow {
            update(
                k,
                layer,
                bias,
                &mut st.v,
                &mut st.u,
                &mut st.acc16,
                &mut st.mask,
            );
        } else {
            update(
                k,
                layer,
                bias,
                &mut st.v,
                &mut st.u,
                &mut st.acc,
                &mut st.mask,
            );
        }
    }
}

/// Update a layer's neurons with `bias` (the layer's, or per neuron). Layers without a current
/// register that reset by subtraction (every layer before CUBA neurons existed) take the
/// original path.
#[inline(always)]
fn update<A: Acc, K: Kernels>(
    k: K,
    layer: &Layer,
    bias: &[i32],
    v: &mut [i32],
    u: &mut [i32],
    acc: &mut [A],
    mask: &mut [u64],
) {
    let (th, dv, du) = (layer.threshold, layer.leak, layer.du);
    match (du < LEAK_MAX, layer.reset) {
        (false, Reset::Subtract) if dv == 0 => A::update_plain(k, v, acc, mask, bias, th),
        (false, Reset::Subtract) => update_layer::<A, true>(v, acc, mask, bias, th, dv),
        (false, Reset::Zero) => update_cuba::<A, false, true>(v, u, acc, mask, bias, th, dv, du),
        (true, Reset::Subtract) => update_cuba::<A, true, false>(v, u, acc, mask, bias, th, dv, du),
        (true, Reset::Zero) => update_cuba::<A, true, true>(v, u, acc, mask, bias, th, dv, du),
    }
}

/// Collect this step's spikes from the mask (if some group reads them as a list; for a
/// complemented input, the spikes of the neurons not flipped and the quiet flipped ones) and
/// count them (if the run needs the counts).
#[inline(always)]
pub(crate) fn finish_step(st: &mut LayerState) {
    if !st.flip.is_empty() {
        gather_split(&st.mask, &st.flip, &mut st.spikes, &mut st.quiet);
        if st.counting {
            count_spikes(&st.mask, &mut st.counts);
        }
    } else if st.listed {
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

/// The set bits of `mask & !flip` into `spikes` and of `flip & !mask` into `quiet`.
#[inline(always)]
fn gather_split(mask: &[u64], flip: &[u64], spikes: &mut Vec<u32>, quiet: &mut Vec<u32>) {
    spikes.clear();
    quiet.clear();
    for (w, (&m, &f)) in mask.iter().zip(flip).enumerate() {
        let (mut on, mut off) = (m & !f, f & !m);
        while on != 0 {
            spikes.push((w as u32) * 64 + on.trailing_zeros());
            on &= on - 1;
        }
        while off != 0 {
            quiet.push((w as u32) * 64 + off.trailing_zeros());
            off &= off - 1;
        }
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
