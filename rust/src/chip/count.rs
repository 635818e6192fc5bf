//! Counting a run on a [`ChipMap`], per core and per step, as an engine
//! [`Observer`](crate::engine::Observer).
//!
//! Every spike a neuron emits at step `t` is, at step `t` (the step the chip sends and
//! processes it, whatever the engine's `delay`): one spike and `compartments` active
//! compartment updates on the neuron's core; one axon message to every core in its fan-out
//! (a message out on its own core with the tile hops to the destination, a message in on the
//! destination core) and, on each destination core, its synapses there as synaptic events of
//! their group's kind; with a reset synapse, one reset event and one message (no hop) on its own
//! core. Every compartment of every mapped core is updated every step.
//!
//! The time of a step is that of its busiest core (the barrier is the caller's: it depends only
//! on the tiles in use). A core's time is a [`TimeModel`]: a non-negative linear function of its
//! counts on the neuron side (compartment updates, spikes, messages sent) and on the message
//! side (messages received, synaptic events), the two sides summed or overlapped
//! ([`Combine`]). Times are kept in whole picoseconds, so every sum is exact and the same in any
//! order.

use std::sync::Mutex;

use super::map::ChipMap;
use crate::engine::{Observer, SpikeCounts};
use crate::error::{zeroed, Bytes, Error, Result};

/// Number of counters per core.
pub const N_COUNTERS: usize = 11;
/// The counters, in their order.
pub const COUNTERS: [&str; N_COUNTERS] = [
    "compartment_updates",
    "active_updates",
    "spikes",
    "messages_out",
    "messages_in",
    "synops_conv",
    "synops_pool",
    "synops_dense",
    "synops_reset",
    "hops_ew",
    "hops_ns",
];
const COMPARTMENTS: usize = 0;
const ACTIVE: usize = 1;
const SPIKES: usize = 2;
const MSG_OUT: usize = 3;
const MSG_IN: usize = 4;
const SYN: usize = 5; // conv, pool, dense at SYN + kind slot
const SYN_RESET: usize = 8;
const HOPS_EW: usize = 9;
const HOPS_NS: usize = 10;
const K: usize = N_COUNTERS;

/// Longest time one event may take: 1 ms (times are picoseconds in `u64` sums).
const MAX_EVENT_NS: f64 = 1e6;

/// How a core's two sides make its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// One after the other: neuron side + message side.
    Sum,
    /// Overlapped: the longer of the two.
    Max,
}

/// A core's time in a step: `neuron · counts` and `message · counts` (ns per event, rounded
/// to whole picoseconds), combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeModel {
    pub neuron: [f64; N_COUNTERS],
    pub message: [f64; N_COUNTERS],
    pub combine: Combine,
}

impl TimeModel {
    /// The two sides in whole picoseconds, checked.
    fn picoseconds(&self) -> Result<([u64; K], [u64; K])> {
        let mut out = ([0u64; K], [0u64; K]);
        for (side, w, o) in [
            ("neuron", &self.neuron, &mut out.0),
            ("message", &self.message, &mut out.1),
        ] {
            for (k, (&v, ps)) in w.iter().zip(o.iter_mut()).enumerate() {
                if !(v.is_finite() && (0.0..=MAX_EVENT_NS).contains(&v)) {
                    return Err(Error::config(format!(
                        "chip time model: the {side}-side time of {} must be a finite number \
                         of ns in [0, {MAX_EVENT_NS}], got {v}",
                        COUNTERS[k]
                    )));
                }
                *ps = (v * 1000.0).round() as u64;
            }
        }
        Ok(out)
    }
}

/// What a counted run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ChipCounts {
    /// `[S, N, cores, N_COUNTERS]`: each image's counts per core at each checkpoint.
    pub counts: Vec<u64>,
    /// `[S, N]`: the sum over the steps run of the busiest core's time (ns), barrier excluded.
    pub busy_ns: Vec<f64>,
    /// `[N, T, cores, N_COUNTERS]`: the counts of every step (when asked for).
    pub trace: Option<Vec<u64>>,
}

/// One fan-out entry for the timing: its destination core and the message-side time one message
/// takes there (ps). The table a step reads, kept small.
#[derive(Debug, Clone, Copy)]
struct EntryPlan {
    core: u32,
    ps: u32,
}

/// The kind bits of an entry whose synapses are of several kinds.
const SEVERAL: u32 = 3;

/// A [`TimeModel`] laid out on a [`ChipMap`] for counting: what one spike of each neuron and
/// one message of each fan-out entry add to a core's time, and every core's idle time. Made once
/// per map and time model and reused by every run.
pub struct TimePlan {
    time: TimeModel,
    neuron_ps: [u64; K],
    message_ps: [u64; K],
    /// Compartments of each core, and its idle time on each side (ps).
    compartments: Vec<u64>,
    idle: Vec<(u64, u64)>,
    /// The longest idle core (ps).
    idle_max: u64,
    /// Per layer, per neuron (H, W, C) and one past the last: where its fan-out entries start
    /// and the neuron-side time (ps) one of its spikes adds to its own core.
    neurons: Vec<Vec<(u32, u32)>>,
    /// Per layer, the message-side time (ps) a spike's reset synapse adds to its own core.
    own_ps: Vec<u64>,
    /// Per layer, per neuron: its messages out and tile hops east-west and north-south.
    counts: Vec<Vec<(u32, u32, u32)>>,
    /// Per layer, the fan-out entries of every neuron, in order.
    entries: Vec<Vec<EntryPlan>>,
    /// Per layer, per fan-out entry: its synapses, with their kind in the top two bits
    /// ([`SEVERAL`]: of several kinds, read from the chip map).
    synapses: Vec<Vec<u32>>,
}

impl TimePlan {
    /// Lay `time` out on `map`, refusing tables over `memory_limit` bytes.
    pub fn new(map: &ChipMap, time: TimeModel, memory_limit: u64) -> Result<TimePlan> {
        let (wn, wm) = time.picoseconds()?;
        let tables = map.layers.iter().fold(Bytes::ZERO, |b, ly| {
            b.plus(Bytes::of(ly.cores.len() + 1, 20))
                .plus(Bytes::of(ly.entries.len(), 12))
        });
        tables.check(memory_limit, "the chip time plan")?;
        let cores = map.n_cores();
        let mut compartments = vec![0u64; cores];
        for ly in &map.layers {
            for &c in &ly.cores {
                compartments[c as usize] += ly.compartments as u64;
            }
        }
        let idle: Vec<(u64, u64)> = compartments
            .iter()
            .map(|&n| (n * wn[COMPARTMENTS], n * wm[COMPARTMENTS]))
            .collect();
        let combine = |n: u64, m: u64| match time.combine {
            Combine::Sum => n + m,
            Combine::Max => n.max(m),
        };
        let idle_max = idle.iter().map(|&(n, m)| combine(n, m)).max().unwrap_or(0);
        let too_long = || Error::config("chip time model: one spike takes more than 4 ms");
        let small = |v: u64| u32::try_from(v).map_err(|_| too_long());
        let (mut neurons, mut entries, mut counts, mut own_ps, mut synapses) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (l, ly) in map.layers.iter().enumerate() {
            let reset = ly.reset_synapse as u64;
            let n = ly.cores.len();
            let (mut sp, mut ct) = (Vec::with_capacity(n + 1), Vec::with_capacity(n));
            for i in 0..n {
                let fan = map.fan(l, i);
                let (ew, ns) = fan
                    .iter()
                    .fold((0u64, 0u64), |(a, b), e| (a + e.dx as u64, b + e.dy as u64));
                let messages = fan.len() as u64 + reset;
                let neuron = wn[SPIKES]
                    + wn[ACTIVE] * ly.compartments as u64
                    + wn[MSG_OUT] * messages
                    + wn[HOPS_EW] * ew
                    + wn[HOPS_NS] * ns;
                sp.push((ly.start[i], small(neuron)?));
                ct.push((small(messages)?, small(ew)?, small(ns)?));
            }
            sp.push((ly.start[n], 0));
            let en = ly
                .entries
                .iter()
                .map(|e| {
                    let syn: u64 = (0..3).map(|k| wm[SYN + k] * e.synapses[k] as u64).sum();
                    Ok(EntryPlan {
                        core: e.core,
                        ps: small(wm[MSG_IN] + syn)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let syn = ly
                .entries
                .iter()
                .map(|e| {
                    let kinds: Vec<usize> = (0..3).filter(|&k| e.synapses[k] > 0).collect();
                    let total = e.total();
                    if kinds.len() == 1 && total < 1 << 30 {
                        (kinds[0] as u32) << 30 | total as u32
                    } else {
                        SEVERAL << 30
                    }
                })
                .collect();
            neurons.push(sp);
            entries.push(en);
            counts.push(ct);
            synapses.push(syn);
            own_ps.push(reset * (wm[MSG_IN] + wm[SYN_RESET]));
        }
        Ok(TimePlan {
            time,
            neuron_ps: wn,
            message_ps: wm,
            compartments,
            idle,
            idle_max,
            neurons,
            own_ps,
            counts,
            entries,
            synapses,
        })
    }

    /// The time model it lays out.
    pub fn time(&self) -> &TimeModel {
        &self.time
    }

    #[inline(always)]
    fn combine(&self, n: u64, m: u64) -> u64 {
        match self.time.combine {
            Combine::Sum => n + m,
            Combine::Max => n.max(m),
        }
    }

    /// A core's time (ps) for the counters `row` of a step.
    fn core_ps(&self, c: usize, row: &[u64]) -> u64 {
        let (mut n, mut m) = self.idle[c];
        for ((&r, &wn), &wm) in row
            .iter()
            .zip(&self.neuron_ps)
            .zip(&self.message_ps)
            .skip(1)
        {
            n += wn * r;
            m += wm * r;
        }
        self.combine(n, m)
    }
}

/// Independent accumulators of the message-side time of each core in a step: consecutive
/// spikes of one layer reach the same cores, so one accumulator would chain every addition.
const LANES: usize = 4;

/// The observer that counts a run on a chip map (see the module docstring).
///
/// Without a trace, a step only adds each spike's time to its cores, and the counters are made
/// at each checkpoint from every neuron's spike count (which the engine then keeps for every
/// layer); with one (`trace = true`), every step's counters of every core are kept.
pub struct ChipCounter<'a> {
    map: &'a ChipMap,
    plan: &'a TimePlan,
    n_img: usize,
    timesteps: usize,
    checkpoints: usize,
    trace: bool,
    counts: Mutex<Vec<u64>>,
    busy: Mutex<Vec<f64>>,
    traces: Mutex<Vec<u64>>,
}

/// One worker's counts of the image it runs.
pub struct CounterImage {
    image: usize,
    /// The busiest core's time summed over the steps so far (ps).
    busy: u64,
    t: usize,
    /// Without a trace: each core's time on each side in the current step (the message side
    /// in [`LANES`] accumulators).
    neuron_ps: Vec<u64>,
    message_ps: Vec<u64>,
    /// With a trace, every core's counters so far; without, scratch for them.
    totals: Vec<u64>,
    /// With a trace: the current step's counters, the cores they touch and the trace.
    step: Vec<u64>,
    touched: Vec<u32>,
    marked: Vec<bool>,
    trace: Vec<u64>,
}

impl<'a> ChipCounter<'a> {
    /// A counter of `map` timed by `plan` (made for `map`) for a run of `n_img` images,
    /// `timesteps` steps and `checkpoints` checkpoints; `trace` keeps every step's counts (only
    /// for runs without checkpoints). Refuses outputs over `memory_limit` bytes.
    #[allow(clippy::too_many_arguments)] // the run's shape and the chip's
    pub fn new(
        map: &'a ChipMap,
        plan: &'a TimePlan,
        n_img: usize,
        timesteps: usize,
        checkpoints: usize,
        trace: bool,
        memory_limit: u64,
    ) -> Result<ChipCounter<'a>> {
        if trace && checkpoints > 1 {
            return Err(Error::config(
                "chip counting: a per-step trace needs a run without checkpoints",
            ));
        }
        if plan.compartments.len() != map.n_cores() || plan.neurons.len() != map.layers.len() {
            return Err(Error::config(
                "chip counting: the time plan is for another chip map",
            ));
        }
        let cores = map.n_cores();
        let per = Bytes::of(cores, K * 8);
        let mut need = per
            .times(n_img)
            .times(checkpoints)
            .plus(Bytes::of(n_img * checkpoints, 8));
        if trace {
            need = need.plus(per.times(n_img).times(timesteps));
        }
        need.check(memory_limit, "the chip counts of this run")?;
        let what = "the chip counts of this run";
        Ok(ChipCounter {
            map,
            plan,
            n_img,
            timesteps,
            checkpoints,
            trace,
            counts: Mutex::new(zeroed(cores * K * n_img * checkpoints, what)?),
            busy: Mutex::new(zeroed(n_img * checkpoints, what)?),
            traces: Mutex::new(if trace {
                zeroed(cores * K * n_img * timesteps, what)?
            } else {
                Vec::new()
            }),
        })
    }

    /// The counts, once the run is over.
    pub fn into_counts(self) -> ChipCounts {
        let trace = self.trace.then(|| take(self.traces));
        ChipCounts {
            counts: take(self.counts),
            busy_ns: take(self.busy),
            trace,
        }
    }

    /// Neuron `i` of layer `l` spiked `n` times: its counters, added into `out` (`[cores, K]`).
    #[inline(always)]
    fn add_spikes(&self, l: usize, i: usize, n: u64, out: &mut [u64]) {
        let ly = &self.map.layers[l];
        let (comp, reset) = (ly.compartments as u64, ly.reset_synapse as u64);
        let (start, end) = (self.plan.neurons[l][i].0, self.plan.neurons[l][i + 1].0);
        let (start, end) = (start as usize, end as usize);
        let entries = &self.plan.entries[l][start..end];
        for (j, (e, &syn)) in entries
            .iter()
            .zip(&self.plan.synapses[l][start..end])
            .enumerate()
        {
            let row = &mut out[e.core as usize * K..(e.core as usize + 1) * K];
            row[MSG_IN] += n;
            let kind = syn >> 30;
            if kind == SEVERAL {
                let all = &ly.entries[start + j].synapses;
                for (s, &k) in all.iter().enumerate() {
                    row[SYN + s] += n * k as u64;
                }
            } else {
                row[SYN + kind as usize] += n * (syn & ((1 << 30) - 1)) as u64;
            }
        }
        let own = ly.cores[i] as usize;
        let (messages, ew, ns) = self.plan.counts[l][i];
        let row = &mut out[own * K..(own + 1) * K];
        row[SPIKES] += n;
        row[ACTIVE] += n * comp;
        row[MSG_OUT] += n * messages as u64;
        row[MSG_IN] += n * reset;
        row[SYN_RESET] += n * reset;
        row[HOPS_EW] += n * ew as u64;
        row[HOPS_NS] += n * ns as u64;
    }
}

fn take<T>(m: Mutex<Vec<T>>) -> Vec<T> {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
}

impl Observer for ChipCounter<'_> {
    type Image = CounterImage;

    fn needs_counts(&self) -> bool {
        !self.trace
    }

    fn image(&self) -> Result<CounterImage> {
        let cores = self.map.n_cores();
        let what = "the chip counts of one worker";
        let traced = |n: usize| if self.trace { n } else { 0 };
        Ok(CounterImage {
            image: 0,
            busy: 0,
            t: 0,
            neuron_ps: zeroed(cores, what)?,
            message_ps: zeroed(cores * LANES, what)?,
            totals: zeroed(cores * K, what)?,
            step: zeroed(traced(cores * K), what)?,
            touched: Vec::with_capacity(traced(cores)),
            marked: zeroed(traced(cores), what)?,
            trace: zeroed(traced(cores * K * self.timesteps), what)?,
        })
    }

    fn begin(&self, st: &mut CounterImage, image: usize) {
        st.image = image;
        st.busy = 0;
        st.t = 0;
        st.totals.fill(0);
        st.trace.fill(0);
    }

    #[inline]
    fn spikes(&self, st: &mut CounterImage, layer: usize, spikes: &[u32]) {
        if self.trace {
            for &i in spikes {
                let c = self.map.layers[layer].cores[i as usize] as usize;
                st.touch(c);
                for e in self.map.fan(layer, i as usize) {
                    st.touch(e.core as usize);
                }
                self.add_spikes(layer, i as usize, 1, &mut st.step);
            }
            return;
        }
        let cores_of = &self.map.layers[layer].cores;
        let (plans, entries) = (&self.plan.neurons[layer], &self.plan.entries[layer]);
        let own_ps = self.plan.own_ps[layer];
        let cores = self.map.n_cores();
        for (k, &i) in spikes.iter().enumerate() {
            let i = i as usize;
            let ((start, neuron_ps), (end, _)) = (plans[i], plans[i + 1]);
            let own = cores_of[i] as usize;
            st.neuron_ps[own] += neuron_ps as u64;
            let lane = &mut st.message_ps[(k % LANES) * cores..(k % LANES + 1) * cores];
            lane[own] += own_ps;
            for e in &entries[start as usize..end as usize] {
                lane[e.core as usize] += e.ps as u64;
            }
        }
    }

    fn end_step(&self, st: &mut CounterImage) {
        let plan = self.plan;
        let mut worst = plan.idle_max;
        if self.trace {
            let cores = self.map.n_cores();
            let keep = st.t < self.timesteps;
            for &c in &st.touched {
                let c = c as usize;
                let row = &mut st.step[c * K..(c + 1) * K];
                worst = worst.max(plan.core_ps(c, row));
                for (t, r) in st.totals[c * K..(c + 1) * K].iter_mut().zip(row.iter()) {
                    *t += r;
                }
                if keep {
                    let at = (st.t * cores + c) * K;
                    st.trace[at..at + K].copy_from_slice(row);
                }
                row.fill(0);
                st.marked[c] = false;
            }
            st.touched.clear();
        } else {
            let cores = self.map.n_cores();
            let (first, rest) = st.message_ps.split_at_mut(cores);
            for (c, (n, &(idle_n, idle_m))) in st.neuron_ps.iter_mut().zip(&plan.idle).enumerate() {
                let mut m = std::mem::take(&mut first[c]);
                for lane in 1..LANES {
                    m += std::mem::take(&mut rest[(lane - 1) * cores + c]);
                }
                worst = worst.max(plan.combine(idle_n + std::mem::take(n), idle_m + m));
            }
        }
        st.busy += worst;
        st.t += 1;
    }

    fn emit(&self, st: &mut CounterImage, checkpoint: usize, steps: usize, spikes: SpikeCounts) {
        let cores = self.map.n_cores();
        let at = checkpoint * self.n_img + st.image;
        if !self.trace {
            // The totals so far from the spike counts, neuron by neuron in order (the tables
            // are read sequentially), before the lock is taken; `st.totals` is scratch here.
            st.totals.fill(0);
            for l in 0..self.map.layers.len() {
                for (i, &n) in spikes.layer(l).iter().enumerate() {
                    if n != 0 {
                        self.add_spikes(l, i, n as u64, &mut st.totals);
                    }
                }
            }
        }
        if let Ok(mut counts) = self.counts.lock() {
            let row = &mut counts[at * cores * K..(at + 1) * cores * K];
            row.copy_from_slice(&st.totals);
            for (c, &n) in self.plan.compartments.iter().enumerate() {
                row[c * K + COMPARTMENTS] = n * steps as u64;
            }
        }
        if let Ok(mut busy) = self.busy.lock() {
            busy[at] = st.busy as f64 * 1e-3;
        }
        if self.trace && checkpoint + 1 == self.checkpoints {
            for t in 0..steps.min(self.timesteps) {
                for (c, &n) in self.plan.compartments.iter().enumerate() {
                    st.trace[(t * cores + c) * K + COMPARTMENTS] = n;
                }
            }
            if let Ok(mut traces) = self.traces.lock() {
                let size = self.timesteps * cores * K;
                traces[st.image * size..(st.image + 1) * size].copy_from_slice(&st.trace);
            }
        }
    }
}

impl CounterImage {
    #[inline(always)]
    fn touch(&mut self, c: usize) {
        if !self.marked[c] {
            self.marked[c] = true;
            self.touched.push(c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chip::{ChipSpec, CoreResources, LayerPlacement, SynapseFormat};
    use crate::engine::{run, run_observed, RunOptions, Workspaces};
    use crate::geometry::Shape;
    use crate::network::{GroupKind, LayerSpec, Network};

    const FORMAT: SynapseFormat = SynapseFormat {
        word_bits: 64,
        header_bits: 10,
        max_per_entry: 64,
        min_index_bits: 6,
    };

    /// Input 2x6x6 -> conv 4x3x3 (stride 1, padding 1, 2 groups) -> pool 2x2 -> dense 3.
    fn net() -> Network {
        let input = Shape { c: 2, h: 6, w: 6 };
        let w: Vec<i16> = (0..4 * 9).map(|i| (i % 7) as i16 - 2).collect();
        let conv = LayerSpec::chain(
            "conv2d",
            GroupKind::Conv {
                weight: w,
                shape: vec![4, 1, 3, 3],
                stride: (1, 1),
                padding: [1; 4],
                groups: 2,
            },
            Some(vec![3, 1, 2, 4]),
            6,
        );
        let pool = LayerSpec::chain(
            "avgpool2d",
            GroupKind::Pool {
                kernel: (2, 2),
                weight: 3,
                stride: (2, 2),
                padding: [0; 4],
            },
            None,
            5,
        );
        let dense = LayerSpec::chain(
            "dense",
            GroupKind::Dense {
                weight: (0..3 * 36).map(|i| (i % 5) as i16 - 1).collect(),
                shape: vec![3, 36],
            },
            Some(vec![1, 0, 2]),
            4,
        );
        Network::new(input, 100, &[conv, pool, dense], u64::MAX).unwrap()
    }

    /// Every layer split by channel parity over two cores (the dense layer on one), cores on
    /// tiles of two, tiles in a row.
    fn map(net: &Network, reset: bool) -> ChipMap {
        let mut layers = Vec::new();
        let mut next = 0u32;
        for (l, s) in net.shapes().iter().enumerate() {
            let two = l < 3;
            let cores = (0..s.size())
                .map(|i| {
                    next + if two {
                        ((i / (s.h * s.w)) % 2) as u32
                    } else {
                        0
                    }
                })
                .collect();
            next += if two { 2 } else { 1 };
            layers.push(LayerPlacement {
                cores,
                compartments: if reset { 2 } else { 1 },
                reset_synapse: reset,
                weight_bits: 5,
            });
        }
        let tiles = (0..next).map(|c| (c / 2, 0)).collect();
        let spec = ChipSpec {
            layers,
            tiles,
            format: FORMAT,
        };
        ChipMap::new(net, spec, u64::MAX).unwrap()
    }

    fn time() -> TimeModel {
        let mut neuron = [0.0; K];
        let mut message = [0.0; K];
        neuron[COMPARTMENTS] = 1.0;
        neuron[ACTIVE] = 2.0;
        neuron[MSG_OUT] = 3.0;
        message[MSG_IN] = 5.0;
        message[SYN] = 7.0;
        message[SYN + 1] = 11.0;
        message[SYN + 2] = 13.0;
        TimeModel {
            neuron,
            message,
            combine: Combine::Sum,
        }
    }

    fn images(n: usize) -> Vec<u8> {
        (0..n * 72).map(|i| ((i * 97 + 13) % 256) as u8).collect()
    }

    fn counted(
        net: &Network,
        map: &ChipMap,
        opts: &RunOptions,
        imgs: &[u8],
        trace: bool,
    ) -> (crate::RunOutput, ChipCounts) {
        let n = imgs.len() / 72;
        let s = opts.checkpoints.len().max(1);
        let plan = TimePlan::new(map, time(), u64::MAX).unwrap();
        let counter = ChipCounter::new(map, &plan, n, opts.timesteps, s, trace, u64::MAX).unwrap();
        let out = run_observed(
            net,
            imgs,
            opts,
            &Workspaces::default(),
            &mut || false,
            &counter,
        )
        .unwrap();
        (out, counter.into_counts())
    }

    fn opts(t: usize, delay: usize, threads: usize) -> RunOptions {
        RunOptions {
            delay,
            threads,
            record: vec![0, 1, 2, 3],
            ..RunOptions::new(t)
        }
    }

    fn sum(counts: &[u64], image: usize, cores: usize, k: usize) -> u64 {
        (0..cores)
            .map(|c| counts[(image * cores + c) * K + k])
            .sum()
    }

    #[test]
    fn counting_changes_nothing_and_agrees_with_the_engine() {
        let net = net();
        for reset in [false, true] {
            let map = map(&net, reset);
            let cores = map.n_cores();
            let imgs = images(3);
            let o = opts(9, 0, 2);
            let plain = run(&net, &imgs, &o).unwrap();
            let (out, counts) = counted(&net, &map, &o, &imgs, false);
            assert_eq!(out.spike_counts, plain.spike_counts);
            assert_eq!(out.membrane, plain.membrane);
            assert_eq!(out.synops, plain.synops);
            for i in 0..3 {
                let syn: u64 = (SYN..SYN + 3)
                    .map(|k| sum(&counts.counts, i, cores, k))
                    .sum();
                let engine: i64 = plain.synops[i * 4..(i + 1) * 4].iter().sum();
                assert_eq!(syn as i64, engine);
                let spikes: i64 = (0..4)
                    .map(|l| {
                        let size = net.shapes()[l].size();
                        plain.spike_counts[l][i * size..(i + 1) * size]
                            .iter()
                            .map(|&c| c as i64)
                            .sum::<i64>()
                    })
                    .sum();
                assert_eq!(sum(&counts.counts, i, cores, SPIKES) as i64, spikes);
                let comp = if reset { 2 } else { 1 };
                assert_eq!(sum(&counts.counts, i, cores, ACTIVE) as i64, comp * spikes);
                let reset_events = sum(&counts.counts, i, cores, SYN_RESET);
                assert_eq!(reset_events as i64, if reset { spikes } else { 0 });
                assert_eq!(
                    sum(&counts.counts, i, cores, MSG_OUT),
                    sum(&counts.counts, i, cores, MSG_IN)
                );
                let neurons: usize = net.shapes().iter().map(|s| s.size()).sum();
                assert_eq!(
                    sum(&counts.counts, i, cores, COMPARTMENTS),
                    (neurons * 9) as u64 * comp as u64
                );
            }
            // Stored synapses are the engine's synapse counts, plus one reset synapse a neuron.
            let r = CoreResources::of(&map);
            let stored: u64 = r.synapses.iter().sum();
            let engine: u64 = net.synapse_counts().iter().sum();
            let neurons: u64 = net.shapes().iter().map(|s| s.size() as u64).sum();
            assert_eq!(stored, engine + if reset { neurons } else { 0 });
            assert_eq!(
                r.input_axons.iter().sum::<u64>(),
                r.output_axons.iter().sum::<u64>()
            );
        }
    }

    #[test]
    fn the_trace_adds_up_and_gives_the_busiest_core() {
        let net = net();
        let map = map(&net, true);
        let cores = map.n_cores();
        let imgs = images(2);
        let (out, counts) = counted(&net, &map, &opts(7, 1, 1), &imgs, true);
        let trace = counts.trace.unwrap();
        let tm = time();
        for i in 0..2 {
            let mut busy = 0.0;
            for t in 0..7 {
                let mut worst = 0.0f64;
                for c in 0..cores {
                    let at = ((i * 7 + t) * cores + c) * K;
                    let row = &trace[at..at + K];
                    let n: f64 = (0..K).map(|k| tm.neuron[k] * row[k] as f64).sum();
                    let m: f64 = (0..K).map(|k| tm.message[k] * row[k] as f64).sum();
                    worst = worst.max(n + m);
                }
                busy += worst;
            }
            assert!((busy - counts.busy_ns[i]).abs() < 1e-6 * busy.max(1.0));
            for c in 0..cores {
                for k in 0..K {
                    let total: u64 = (0..7)
                        .map(|t| trace[((i * 7 + t) * cores + c) * K + k])
                        .sum();
                    assert_eq!(total, counts.counts[(i * cores + c) * K + k]);
                }
            }
        }
        assert_eq!(out.steps, vec![7, 7]);
    }

    #[test]
    fn counts_without_a_trace_are_the_traced_counts() {
        let net = net();
        for reset in [false, true] {
            let map = map(&net, reset);
            let imgs = images(3);
            let o = opts(8, 1, 2);
            let (_, fast) = counted(&net, &map, &o, &imgs, false);
            let (_, slow) = counted(&net, &map, &o, &imgs, true);
            assert_eq!(fast.counts, slow.counts);
            assert_eq!(fast.busy_ns, slow.busy_ns);
            assert!(fast.trace.is_none());
        }
    }

    #[test]
    fn checkpoints_threads_and_early_exit_count_like_separate_runs() {
        let net = net();
        let map = map(&net, false);
        let imgs = images(4);
        for early_exit in [None, Some(2)] {
            let mut all = opts(10, 1, 2);
            all.early_exit = early_exit;
            all.checkpoints = vec![3, 6, 10];
            let (out, counts) = counted(&net, &map, &all, &imgs, false);
            let size = map.n_cores() * K;
            for (k, &t) in all.checkpoints.iter().enumerate() {
                let mut one = all.clone();
                one.timesteps = t;
                one.checkpoints = vec![];
                one.threads = 1;
                let (alone, c1) = counted(&net, &map, &one, &imgs, false);
                assert_eq!(alone.steps, out.steps[k * 4..(k + 1) * 4]);
                assert_eq!(c1.counts, counts.counts[k * 4 * size..(k + 1) * 4 * size]);
                assert_eq!(c1.busy_ns, counts.busy_ns[k * 4..(k + 1) * 4]);
            }
        }
    }

    #[test]
    fn bad_time_models_and_traces_with_checkpoints_are_refused() {
        let net = net();
        let map = map(&net, false);
        let mut tm = time();
        tm.message[SYN] = -1.0;
        assert!(TimePlan::new(&map, tm, u64::MAX).is_err());
        tm.message[SYN] = f64::NAN;
        assert!(TimePlan::new(&map, tm, u64::MAX).is_err());
        let plan = TimePlan::new(&map, time(), u64::MAX).unwrap();
        assert!(ChipCounter::new(&map, &plan, 1, 4, 2, true, u64::MAX).is_err());
        let err = ChipCounter::new(&map, &plan, 1000, 4, 1, true, 1000)
            .err()
            .unwrap();
        assert!(matches!(err.kind, crate::ErrorKind::Memory { .. }));
        let other = ChipMap::new(
            &net,
            ChipSpec {
                layers: net
                    .shapes()
                    .iter()
                    .map(|s| LayerPlacement {
                        cores: vec![0; s.size()],
                        compartments: 1,
                        reset_synapse: false,
                        weight_bits: 5,
                    })
                    .collect(),
                tiles: vec![(0, 0)],
                format: FORMAT,
            },
            u64::MAX,
        )
        .unwrap();
        assert!(ChipCounter::new(&other, &plan, 1, 4, 1, false, u64::MAX).is_err());
    }
}
