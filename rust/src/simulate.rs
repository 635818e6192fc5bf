//! The simulation of one image, step by step: every step the input layer, then each layer in
//! order ([`crate::step::layer_step`]), the early-exit decision and the checkpoints.
//!
//! A [`Stage`] may cover only some of the layers: with one image on two cores the layers are
//! split into two pipelined stages ([`crate::pipeline`]), each simulated by this same loop on
//! its own thread; the spikes a stage needs from the other arrive through a [`Relay`].

use crate::engine::{Observer, SpikeCounts};
use crate::geometry::Shape;
use crate::kernels::Kernels;
use crate::network::Network;
use crate::neuron::{gather_spikes, Acc};
use crate::pipeline::Relay;
use crate::step::{finish_step, layer_step, prepare_image, LayerState};

/// The layers one thread simulates for an image: `lo..hi` (0 = input), receiving the spikes
/// of earlier layers it reads from `inbox` and sending those later stages read to `outbox`.
pub(crate) struct Stage<'a> {
    pub(crate) lo: usize,
    pub(crate) hi: usize,
    pub(crate) inbox: Option<&'a Relay<'a>>,
    pub(crate) outbox: Option<&'a Relay<'a>>,
}

impl Stage<'_> {
    /// Every layer of `net`, on one thread.
    pub(crate) fn whole(net: &Network) -> Stage<'static> {
        Stage {
            lo: 0,
            hi: net.layers.len() + 1,
            inbox: None,
            outbox: None,
        }
    }
}

/// What every image of a run shares.
pub(crate) struct Simulation<'a> {
    pub(crate) net: &'a Network,
    pub(crate) timesteps: usize,
    pub(crate) delay: usize,
    pub(crate) v_init: f64,
    pub(crate) record: &'a [usize],
    pub(crate) early_exit: Option<usize>,
    pub(crate) checkpoints: &'a [usize],
}

/// What a stage checks once per step: whether the run is to stop.
pub(crate) trait Stop {
    fn stopped(&mut self) -> bool;
}

impl Simulation<'_> {
    /// The initial potential of a layer of threshold `threshold`.
    pub(crate) fn v0(&self, threshold: i32) -> i32 {
        (self.v_init * threshold as f64).floor() as i32
    }

    /// Simulate the layers of `stage` for one image. After the step that reaches checkpoint
    /// `c` (and, when the image exits early, for every checkpoint left), calls
    /// `emit(c, state, synops, steps simulated)`. Returns `false` if the run was stopped first.
    /// Early exit needs the output layer, so a stage without it must not be given one. `obs`
    /// sees every layer's spikes of every step ([`Observer`]); an observed stage must be the
    /// whole network.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn image<K: Kernels, O: Observer>(
        &self,
        k: K,
        pixels: &[i32],
        state: &mut [LayerState],
        synops: &mut [i64],
        stop: &mut dyn Stop,
        stage: &Stage,
        (obs, seen): (&O, &mut O::Image),
        mut emit: impl FnMut(usize, &[LayerState], &[i64], usize),
    ) -> bool {
        let (net, checkpoints) = (self.net, self.checkpoints);
        let thresholds: Vec<i32> = std::iter::once(net.input_threshold)
            .chain(net.layers.iter().map(|l| l.threshold))
            .collect();
        let out_layer = state.len() - 1;
        for (l, st) in state.iter_mut().enumerate() {
            let counting = self.record.contains(&l)
                || (self.early_exit.is_some() && l == out_layer)
                || obs.needs_counts();
            st.reset(self.v0(thresholds[l]), counting);
        }
        prepare_image(k, net, state, pixels, self.timesteps, stage.lo..stage.hi);
        synops.fill(0);
        // The observer's copy of a layer's spikes where the layer keeps no full list.
        let mut listed = Vec::new();
        let (mut last, mut stable) = (None, 0usize);
        let mut next = 0;
        for t in 0..self.timesteps {
            if stop.stopped() {
                return false;
            }
            for st in state.iter_mut() {
                st.next_step();
            }
            if let Some(inbox) = stage.inbox {
                if !inbox.receive(t, state) {
                    return false;
                }
            }
            if stage.lo == 0 {
                // Layer 0: the input layer, bias = pixel value, no synapses, no leak.
                let st = &mut state[0];
                let th = net.input_threshold;
                i16::update_plain(k, &mut st.v, &mut st.acc16, &mut st.mask, pixels, th);
                finish_step(st);
            }
            let first = stage.lo.max(1);
            for (l, events) in synops.iter_mut().enumerate().take(stage.hi).skip(first) {
                let (below, above) = state.split_at_mut(l);
                *events += layer_step(k, &net.layers[l - 1], below, self.delay, &mut above[0]);
            }
            if O::ACTIVE {
                for (l, st) in state.iter().enumerate() {
                    let spikes = if st.listed && st.flip.is_empty() {
                        &st.spikes
                    } else {
                        gather_spikes(&st.mask, &mut listed);
                        &listed
                    };
                    obs.spikes(seen, l, spikes);
                }
                obs.end_step(seen);
            }
            if let Some(outbox) = stage.outbox {
                if !outbox.send(t, state) {
                    return false;
                }
            }
            if let Some(e) = self.early_exit {
                let shape = net.layers[out_layer - 1].shape;
                let now = decision_hwc(&state[out_layer], shape);
                stable = match now {
                    None => 0,
                    Some(_) if now == last => stable + 1,
                    Some(_) => 1,
                };
                last = now;
                if stable >= e {
                    // A run of any later checkpoint's length would stop here too.
                    for c in next..checkpoints.len() {
                        obs.emit(seen, c, t + 1, SpikeCounts::new(state));
                        emit(c, state, synops, t + 1);
                    }
                    return true;
                }
            }
            if checkpoints[next] == t + 1 {
                obs.emit(seen, next, t + 1, SpikeCounts::new(state));
                emit(next, state, synops, t + 1);
                next += 1;
            }
        }
        true
    }
}

/// The output decision: the output neuron with the most spikes, ties broken by the higher
/// membrane potential, then by the lower index. `None` while the output layer has not spiked.
/// `counts` and `v` are in C, H, W order (the order the index refers to).
pub fn decision(counts: &[i32], v: &[i32]) -> Option<usize> {
    decision_by(counts.len(), |i| (counts[i], v[i]))
}

/// [`decision`] over `n` neurons whose `(count, potential)` in C, H, W order is `at(i)`.
#[inline]
fn decision_by(n: usize, at: impl Fn(usize) -> (i32, i32)) -> Option<usize> {
    let mut best: Option<(usize, (i32, i32))> = None;
    for i in 0..n {
        let cv = at(i);
        if cv.0 == 0 {
            continue;
        }
        best = match best {
            Some((b, bcv)) if bcv >= cv => Some((b, bcv)),
            _ => Some((i, cv)),
        };
    }
    best.map(|(i, _)| i)
}

/// [`decision`] of a layer shaped `shape` whose state is stored H, W, C.
fn decision_hwc(st: &LayerState, shape: Shape) -> Option<usize> {
    let hw = shape.h * shape.w;
    decision_by(st.counts.len(), |i| {
        let (c, p) = (i / hw, i % hw);
        let j = p * shape.c + c;
        (st.counts[j], st.v[j])
    })
}
