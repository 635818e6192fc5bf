//! The scatter-add floor: how fast this processor does the engine's synaptic additions when it
//! does nothing else, the figure the engine's synaptic events per second are measured against.
//!
//! [`scatter_floor`] simulates the images once and records every contiguous run of synapses
//! the convolution and dense groups add or subtract (where in the accumulator, where in the
//! weight table, how long), in the engine's order, with the base currents of a complemented
//! input (`crate::step`) once per image. It then times only those additions, with the run's
//! kernel set, on one core, into accumulators of the layers' real sizes and types from the
//! network's real weight tables: the same run lengths and buffers, without finding the runs,
//! updating neurons or collecting spikes. Pooling synapses (one addition each, a few per mille
//! of the events) are left out. With a complemented input the engine performs fewer additions
//! than it delivers synaptic events, so the floor's additions are fewer than the run's events.

use std::time::Instant;

use crate::aligned::Aligned;
use crate::engine::RunOptions;
use crate::error::{Error, Result};
use crate::kernels::{Choice, Kernels, Task};
use crate::network::{Network, Synapses};
use crate::neuron::Acc;
use crate::scatter::runs;
use crate::simulate::Simulation;
use crate::step::{finish_step, layer_step, prepare_image, Spikes};

/// Most runs a trace may hold (32 bytes each).
const MAX_RUNS: usize = 1 << 22;

/// Values of the narrowest type (i16) in a cache line: where each layer's accumulator and each
/// group's weights start in the concatenations.
const LINE_VALUES: usize = 32;

/// What [`scatter_floor`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// Synaptic events added (the traced runs' lengths, summed over the repetitions).
    pub events: u64,
    /// Seconds the additions took on one core: the thread's CPU time (on Unix; elsewhere the
    /// elapsed time), so that other work on a busy machine does not count.
    pub seconds: f64,
    /// The kernel set that added.
    pub kernels: &'static str,
}

impl Floor {
    /// Synaptic events per second on one core.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// One traced run: `acc[a0 + j] += w[w0 + j]`, `j < len`, in the concatenated narrow (`wide =
/// false`) or wide accumulators and the concatenated weight tables.
#[derive(Clone, Copy)]
struct Run {
    wide: bool,
    a0: usize,
    w0: usize,
    len: usize,
}

/// The scatter-add floor of `net` for `images` (uint8 `[N, C, H, W]`) with the timesteps,
/// delay, initial potential and kernel set of `opts`: the traced additions are repeated until
/// at least `min_seconds` have passed.
pub fn scatter_floor(
    net: &Network,
    images: &[u8],
    opts: &RunOptions,
    min_seconds: f64,
) -> Result<Floor> {
    let size = net.input.size();
    if images.is_empty() || !images.len().is_multiple_of(size) {
        return Err(Error::shape(format!(
            "scatter_floor: images must hold N x {size} values with N > 0, got {}",
            images.len()
        )));
    }
    let (trace, narrow_len, wide_len, weights) = trace(net, images, opts)?;
    let job = Additions {
        trace: &trace,
        weights: &weights,
        narrow: Aligned::zeroed(narrow_len, "the floor's accumulators")?,
        wide: Aligned::zeroed(wide_len, "the floor's accumulators")?,
        min_seconds,
    };
    let (events, seconds) = match opts.kernels {
        Choice::Portable(k) => k.run(job),
        Choice::Avx2(k) => k.run(job),
        Choice::Avx512(k) => k.run(job),
    };
    Ok(Floor {
        events,
        seconds,
        kernels: opts.kernels.name(),
    })
}

/// The runs of one simulation of `images`, the lengths of the concatenated narrow and wide
/// accumulators, and the concatenated weight tables.
fn trace(
    net: &Network,
    images: &[u8],
    opts: &RunOptions,
) -> Result<(Vec<Run>, usize, usize, Aligned<i16>)> {
    let shapes = net.shapes();
    // Where each layer's accumulator and each group's weights start in the concatenations.
    let (mut narrow_len, mut wide_len) = (0usize, 0usize);
    let mut acc_at = vec![0usize; shapes.len()];
    for (l, layer) in net.layers.iter().enumerate() {
        let len = if layer.narrow {
            &mut narrow_len
        } else {
            &mut wide_len
        };
        // Each part starts a cache line, as the engine's own buffers do.
        acc_at[l + 1] = len.next_multiple_of(LINE_VALUES);
        *len = acc_at[l + 1] + layer.shape.size();
    }
    let (mut w_len, mut w_at) = (0usize, Vec::new());
    for layer in &net.layers {
        let mut at = Vec::new();
        for g in &layer.groups {
            at.push(w_len.next_multiple_of(LINE_VALUES));
            w_len = at[at.len() - 1] + table(g).map_or(0, <[i16]>::len);
        }
        w_at.push(at);
    }
    let mut weights = Aligned::<i16>::zeroed(w_len, "the floor's weights")?;
    for (layer, at) in net.layers.iter().zip(&w_at) {
        for (g, &start) in layer.groups.iter().zip(at) {
            if let Some(w) = table(g) {
                weights[start..start + w.len()].copy_from_slice(w);
            }
        }
    }
    let mut state = crate::engine::new_state(net)?;
    let sim = Simulation {
        net,
        timesteps: opts.timesteps,
        delay: opts.delay,
        v_init: opts.v_init,
        record: &[],
        early_exit: None,
        checkpoints: &[],
    };
    let thresholds: Vec<i32> = std::iter::once(net.input_threshold)
        .chain(net.layers.iter().map(|l| l.threshold))
        .collect();
    let input = net.input;
    let mut pixels = vec![0i32; input.size()];
    let mut trace: Vec<Run> = Vec::new();
    let k = crate::kernels::Portable;
    let whole = 0..net.layers.len() + 1;
    for image in images.chunks(input.size()) {
        crate::engine::load_image(image, input, &mut pixels);
        for (l, st) in state.iter_mut().enumerate() {
            st.reset(sim.v0(thresholds[l]), false);
        }
        prepare_image(k, net, &mut state, &pixels, opts.timesteps, whole.clone());
        // The base currents of a complemented input: the flipped neurons' runs, once.
        let mut flipped = Vec::new();
        crate::neuron::gather_spikes(&state[0].flip, &mut flipped);
        for (i, layer) in net.layers.iter().enumerate() {
            if state[i + 1].base.is_empty() && state[i + 1].base16.is_empty() {
                continue;
            }
            for (gi, g) in layer
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.info.source == 0)
            {
                record(&mut trace, layer, g, &flipped, acc_at[i + 1], w_at[i][gi])?;
            }
        }
        for _ in 0..opts.timesteps {
            for st in state.iter_mut() {
                st.next_step();
            }
            let st = &mut state[0];
            let th = net.input_threshold;
            i16::update_plain(k, &mut st.v, &mut st.acc16, &mut st.mask, &pixels, th);
            finish_step(st);
            for (i, layer) in net.layers.iter().enumerate() {
                let (below, above) = state.split_at_mut(i + 1);
                for (gi, g) in layer.groups.iter().enumerate() {
                    let Spikes {
                        list,
                        quiet,
                        flipped,
                        ..
                    } = below[g.info.source].seen(opts.delay);
                    let (a0, w0) = (acc_at[i + 1], w_at[i][gi]);
                    record(&mut trace, layer, g, list, a0, w0)?;
                    if flipped {
                        record(&mut trace, layer, g, quiet, a0, w0)?;
                    }
                }
                layer_step(k, layer, below, opts.delay, &mut above[0]);
            }
        }
    }
    Ok((trace, narrow_len, wide_len, weights))
}

/// The weight table of a convolution or dense group (pooling has none).
fn table(g: &crate::network::Group) -> Option<&[i16]> {
    match &g.synapses {
        Synapses::Conv { weight, .. } | Synapses::Dense { weight, .. } => Some(&weight[..]),
        _ => None,
    }
}

/// This thread's CPU time in seconds (on Unix), else the time since the first call.
pub fn thread_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write to; CLOCK_THREAD_CPUTIME_ID exists on every
        // Unix the engine builds on.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Append the runs of group `g` of `layer` for `spikes` to `trace`, the layer's accumulator at
/// `acc_at` and the group's weights at `w_at` in the concatenations.
fn record(
    trace: &mut Vec<Run>,
    layer: &crate::network::Layer,
    g: &crate::network::Group,
    spikes: &[u32],
    acc_at: usize,
    w_at: usize,
) -> Result<()> {
    runs(layer, g, spikes, |a0, w0, len| {
        if trace.len() < MAX_RUNS {
            trace.push(Run {
                wide: !layer.narrow,
                a0: acc_at + a0,
                w0: w_at + w0,
                len,
            })
        }
    });
    if trace.len() >= MAX_RUNS {
        return Err(Error::config(format!(
            "scatter_floor: the trace holds more than {MAX_RUNS} runs; use fewer images or \
             time steps"
        )));
    }
    Ok(())
}

/// The timed part: the traced additions, repeated.
struct Additions<'a> {
    trace: &'a [Run],
    weights: &'a [i16],
    narrow: Aligned<i16>,
    wide: Aligned<i32>,
    min_seconds: f64,
}

impl Task for Additions<'_> {
    type Output = (u64, f64);

    #[inline(always)]
    fn run<K: Kernels>(mut self, k: K) -> (u64, f64) {
        let per_pass: u64 = self.trace.iter().map(|r| r.len as u64).sum();
        let (mut events, start) = (0u64, thread_seconds());
        loop {
            for r in self.trace {
                let w = &self.weights[r.w0..r.w0 + r.len];
                if r.wide {
                    i32::add_run(k, &mut self.wide[r.a0..r.a0 + r.len], w);
                } else {
                    i16::add_run(k, &mut self.narrow[r.a0..r.a0 + r.len], w);
                }
            }
            events += per_pass;
            let seconds = thread_seconds() - start;
            if seconds >= self.min_seconds || per_pass == 0 {
                std::hint::black_box((&self.narrow, &self.wide));
                return (events, seconds.max(f64::MIN_POSITIVE));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Shape;
    use crate::network::{GroupKind, LayerSpec};

    #[test]
    fn the_floor_adds_exactly_the_engines_synaptic_events_of_runs() {
        let input = Shape { c: 1, h: 6, w: 6 };
        let conv = LayerSpec::chain(
            "conv2d",
            GroupKind::Conv {
                weight: (0..8 * 9).map(|i| (i % 7) as i16 - 2).collect(),
                shape: vec![8, 1, 3, 3],
                stride: (1, 1),
                padding: [0; 4],
                groups: 1,
            },
            None,
            9,
        );
        let dense = LayerSpec::chain(
            "dense",
            GroupKind::Dense {
                weight: vec![3; 5 * 8 * 4 * 4],
                shape: vec![5, 8 * 4 * 4],
            },
            None,
            50,
        );
        let net = Network::new(input, 255, &[conv, dense], u64::MAX).unwrap();
        let images: Vec<u8> = (0..72).map(|i| (i * 53 % 256) as u8).collect();
        // One step: no input neuron is flipped, so one pass over the trace adds every event of
        // the engine's run (there is no pooling here).
        let opts = RunOptions::new(1);
        let out = crate::engine::run(&net, &images, &opts).unwrap();
        let floor = scatter_floor(&net, &images, &opts, 0.0).unwrap();
        assert_eq!(floor.events, out.synops.iter().sum::<i64>() as u64);
        assert!(floor.seconds > 0.0);
        assert!(scatter_floor(&net, &images[..5], &opts, 0.0).is_err());
        // Many steps of bright pixels: the complemented input needs fewer additions than
        // events.
        let bright = vec![250u8; 72];
        let opts = RunOptions::new(20);
        let out = crate::engine::run(&net, &bright, &opts).unwrap();
        let floor = scatter_floor(&net, &bright, &opts, 0.0).unwrap();
        let events = out.synops.iter().sum::<i64>() as u64;
        assert!(
            floor.events < events / 2,
            "{} additions for {events} events",
            floor.events
        );
    }
}
