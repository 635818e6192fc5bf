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
//! The time of a step is that of its busiest core plus nothing else here (the barrier is the
//! caller's: it depends only on the tiles in use). A core's time is a [`TimeModel`]: a
//! non-negative linear function of its counts on the neuron side (compartment updates, spikes,
//! messages sent) and on the message side (messages received, synaptic events), the two sides
//! summed or overlapped ([`Combine`]). A core with no event in a step takes its idle time, so a
//! step only visits the cores that had events.

use std::sync::Mutex;

use super::map::ChipMap;
use crate::engine::Observer;
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

/// How a core's two sides make its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// One after the other: neuron side + message side.
    Sum,
    /// Overlapped: the longer of the two.
    Max,
}

/// A core's time in a step (ns): `neuron · counts` and `message · counts`, combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeModel {
    pub neuron: [f64; N_COUNTERS],
    pub message: [f64; N_COUNTERS],
    pub combine: Combine,
}

impl TimeModel {
    fn check(&self) -> Result<()> {
        for (side, w) in [("neuron", &self.neuron), ("message", &self.message)] {
            if let Some((k, v)) = w
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(Error::config(format!(
                    "chip time model: the {side}-side time of {} must be a finite number >= 0, \
                     got {v}",
                    COUNTERS[k]
                )));
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn time(&self, counts: &[u64], idle_neuron: f64, idle_message: f64) -> f64 {
        let (mut n, mut m) = (idle_neuron, idle_message);
        for ((&c, &wn), &wm) in counts.iter().zip(&self.neuron).zip(&self.message).skip(1) {
            n += wn * c as f64;
            m += wm * c as f64;
        }
        match self.combine {
            Combine::Sum => n + m,
            Combine::Max => n.max(m),
        }
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

/// The observer that counts a run on a chip map (see the module docstring).
pub struct ChipCounter<'a> {
    map: &'a ChipMap,
    time: TimeModel,
    n_img: usize,
    timesteps: usize,
    checkpoints: usize,
    /// Compartments of each core, and its idle time on each side.
    compartments: Vec<u64>,
    idle: Vec<(f64, f64)>,
    /// The longest idle core.
    idle_max: f64,
    trace: bool,
    counts: Mutex<Vec<u64>>,
    busy: Mutex<Vec<f64>>,
    traces: Mutex<Vec<u64>>,
}

/// One worker's counts of the image it runs.
pub struct CounterImage {
    image: usize,
    step: Vec<u64>,
    touched: Vec<u32>,
    marked: Vec<bool>,
    totals: Vec<u64>,
    busy: f64,
    t: usize,
    trace: Vec<u64>,
}

impl<'a> ChipCounter<'a> {
    /// A counter for a run of `n_img` images, `timesteps` steps and `checkpoints` checkpoints;
    /// `trace` keeps every step's counts (only for runs without checkpoints). Refuses outputs
    /// over `memory_limit` bytes.
    pub fn new(
        map: &'a ChipMap,
        time: TimeModel,
        n_img: usize,
        timesteps: usize,
        checkpoints: usize,
        trace: bool,
        memory_limit: u64,
    ) -> Result<ChipCounter<'a>> {
        time.check()?;
        if trace && checkpoints > 1 {
            return Err(Error::config(
                "chip counting: a per-step trace needs a run without checkpoints",
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
        let mut compartments = vec![0u64; cores];
        for ly in &map.layers {
            for &c in &ly.cores {
                compartments[c as usize] += ly.compartments as u64;
            }
        }
        let idle: Vec<(f64, f64)> = compartments
            .iter()
            .map(|&n| {
                (
                    n as f64 * time.neuron[COMPARTMENTS],
                    n as f64 * time.message[COMPARTMENTS],
                )
            })
            .collect();
        let zero = [0u64; K];
        let idle_max = idle
            .iter()
            .map(|&(n, m)| time.time(&zero, n, m))
            .fold(0.0, f64::max);
        let what = "the chip counts of this run";
        Ok(ChipCounter {
            map,
            time,
            n_img,
            timesteps,
            checkpoints,
            compartments,
            idle,
            idle_max,
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
}

fn take<T>(m: Mutex<Vec<T>>) -> Vec<T> {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
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

impl Observer for ChipCounter<'_> {
    type Image = CounterImage;

    fn image(&self) -> Result<CounterImage> {
        let cores = self.map.n_cores();
        let what = "the chip counts of one worker";
        Ok(CounterImage {
            image: 0,
            step: zeroed(cores * K, what)?,
            touched: Vec::with_capacity(cores),
            marked: zeroed(cores, what)?,
            totals: zeroed(cores * K, what)?,
            busy: 0.0,
            t: 0,
            trace: if self.trace {
                zeroed(cores * K * self.timesteps, what)?
            } else {
                Vec::new()
            },
        })
    }

    fn begin(&self, st: &mut CounterImage, image: usize) {
        st.image = image;
        st.totals.fill(0);
        st.trace.fill(0);
        st.busy = 0.0;
        st.t = 0;
    }

    #[inline]
    fn spikes(&self, st: &mut CounterImage, layer: usize, spikes: &[u32]) {
        let ly = &self.map.layers[layer];
        let (comp, reset) = (ly.compartments as u64, ly.reset_synapse as u64);
        for &i in spikes {
            let i = i as usize;
            let own = ly.cores[i] as usize;
            st.touch(own);
            let fan = self.map.fan(layer, i);
            let (mut ew, mut ns) = (0u64, 0u64);
            for e in fan {
                let d = e.core as usize;
                st.touch(d);
                let row = &mut st.step[d * K..(d + 1) * K];
                row[MSG_IN] += 1;
                for (s, &n) in e.synapses.iter().enumerate() {
                    row[SYN + s] += n as u64;
                }
                ew += e.dx as u64;
                ns += e.dy as u64;
            }
            let row = &mut st.step[own * K..(own + 1) * K];
            row[SPIKES] += 1;
            row[ACTIVE] += comp;
            row[MSG_OUT] += fan.len() as u64 + reset;
            row[MSG_IN] += reset;
            row[SYN_RESET] += reset;
            row[HOPS_EW] += ew;
            row[HOPS_NS] += ns;
        }
    }

    fn end_step(&self, st: &mut CounterImage) {
        let mut worst = self.idle_max;
        let cores = self.map.n_cores();
        let keep = self.trace && st.t < self.timesteps;
        for &c in &st.touched {
            let c = c as usize;
            let row = &mut st.step[c * K..(c + 1) * K];
            let (n, m) = self.idle[c];
            worst = worst.max(self.time.time(row, n, m));
            let total = &mut st.totals[c * K..(c + 1) * K];
            for k in 0..K {
                total[k] += row[k];
            }
            if keep {
                let at = (st.t * cores + c) * K;
                st.trace[at..at + K].copy_from_slice(row);
            }
            row.fill(0);
            st.marked[c] = false;
        }
        st.touched.clear();
        st.busy += worst;
        st.t += 1;
    }

    fn emit(&self, st: &mut CounterImage, checkpoint: usize, steps: usize) {
        let cores = self.map.n_cores();
        let at = checkpoint * self.n_img + st.image;
        if let Ok(mut counts) = self.counts.lock() {
            let row = &mut counts[at * cores * K..(at + 1) * cores * K];
            row.copy_from_slice(&st.totals);
            for (c, &n) in self.compartments.iter().enumerate() {
                row[c * K + COMPARTMENTS] = n * steps as u64;
            }
        }
        if let Ok(mut busy) = self.busy.lock() {
            busy[at] = st.busy;
        }
        if self.trace && checkpoint + 1 == self.checkpoints {
            for t in 0..steps.min(self.timesteps) {
                for (c, &n) in self.compartments.iter().enumerate() {
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
        let counter = ChipCounter::new(map, time(), n, opts.timesteps, s, trace, u64::MAX).unwrap();
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
        assert!(ChipCounter::new(&map, tm, 1, 4, 1, false, u64::MAX).is_err());
        tm.message[SYN] = f64::NAN;
        assert!(ChipCounter::new(&map, tm, 1, 4, 1, false, u64::MAX).is_err());
        assert!(ChipCounter::new(&map, time(), 1, 4, 2, true, u64::MAX).is_err());
        let err = ChipCounter::new(&map, time(), 1000, 4, 1, true, 1000)
            .err()
            .unwrap();
        assert!(matches!(err.kind, crate::ErrorKind::Memory { .. }));
    }
}
