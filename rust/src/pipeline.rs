//! One image on two cores: the layers are split into two stages, each simulated by its own
//! thread, and the first stage hands the second the spikes it needs, step by step, through a
//! [`Relay`] (as a chip pipelines its layers). Each layer is still computed by exactly one
//! thread in the same order, so the results are those of one thread, bit for bit.
//!
//! The first stage may run up to [`DEPTH`] steps ahead. The split point balances an estimate of
//! each layer's work per step (the synaptic additions it performed on the network's last run,
//! fewer than its events where the input is complemented, plus its neuron updates). Early exit
//! needs every layer at the same step, so it runs unsplit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Bytes, Error, Result};
use crate::network::Network;
use crate::step::LayerState;

/// Steps the first stage may run ahead of the second.
pub(crate) const DEPTH: usize = 8;

/// Work of one neuron update, in synaptic events (measured on this engine's kernels: an
/// update costs about as much as three events).
const UPDATE_COST: f64 = 3.0;

/// One step's spikes of one layer in transit (`quiet`: of a complemented input layer).
struct Parcel {
    mask: Vec<u64>,
    list: Vec<u32>,
    quiet: Vec<u32>,
}

/// The spikes of the layers `layers` (of the first stage, read by the second), step by step.
pub(crate) struct Relay<'a> {
    layers: Vec<usize>,
    slots: Vec<Mutex<Vec<Parcel>>>,
    /// Steps sent and received so far.
    sent: AtomicUsize,
    received: AtomicUsize,
    cancel: &'a AtomicBool,
}

impl<'a> Relay<'a> {
    /// A relay for `layers` of `net`, whose waits give up when `cancel` is set.
    pub(crate) fn new(net: &Network, layers: Vec<usize>, cancel: &'a AtomicBool) -> Result<Self> {
        let shapes = net.shapes();
        let mut slots = Vec::with_capacity(DEPTH);
        for _ in 0..DEPTH {
            let mut parcels = Vec::with_capacity(layers.len());
            for &l in &layers {
                let n = shapes[l].size();
                let words = crate::neuron::mask_words(n) + 1;
                let mut p = Parcel {
                    mask: Vec::new(),
                    list: Vec::new(),
                    quiet: Vec::new(),
                };
                let fail = || Error::allocation("the pipeline's buffers", Bytes::of(n, 8).0);
                p.mask.try_reserve_exact(words).map_err(|_| fail())?;
                p.mask.resize(words, 0);
                p.list.try_reserve_exact(n).map_err(|_| fail())?;
                if l == 0 {
                    p.quiet.try_reserve_exact(n).map_err(|_| fail())?;
                }
                parcels.push(p);
            }
            slots.push(Mutex::new(parcels));
        }
        Ok(Relay {
            layers,
            slots,
            sent: AtomicUsize::new(0),
            received: AtomicUsize::new(0),
            cancel,
        })
    }

    /// Send step `t`'s spikes of the relayed layers (waiting while the receiver is
    /// [`DEPTH`] steps behind). `false` if the run was cancelled meanwhile.
    pub(crate) fn send(&self, t: usize, state: &[LayerState]) -> bool {
        if !wait(
            || t < self.received.load(Ordering::Acquire) + DEPTH,
            self.cancel,
        ) {
            return false;
        }
        let mut slot = lock(&self.slots[t % DEPTH]);
        for (p, &l) in slot.iter_mut().zip(&self.layers) {
            let st = &state[l];
            p.mask.copy_from_slice(&st.mask);
            p.list.clear();
            p.quiet.clear();
            if st.listed {
                // Within the capacities reserved in `new` (a layer's spikes are at most its
                // size; only the input layer has quiet ones).
                p.list.extend_from_slice(&st.spikes);
                p.quiet.extend_from_slice(&st.quiet);
            }
        }
        drop(slot);
        self.sent.store(t + 1, Ordering::Release);
        true
    }

    /// Receive step `t`'s spikes of the relayed layers into `state` (as if this thread had
    /// simulated them). `false` if the run was cancelled meanwhile.
    pub(crate) fn receive(&self, t: usize, state: &mut [LayerState]) -> bool {
        if !wait(|| self.sent.load(Ordering::Acquire) > t, self.cancel) {
            return false;
        }
        let mut slot = lock(&self.slots[t % DEPTH]);
        for (p, &l) in slot.iter_mut().zip(&self.layers) {
            let st = &mut state[l];
            std::mem::swap(&mut st.mask, &mut p.mask);
            std::mem::swap(&mut st.spikes, &mut p.list);
            std::mem::swap(&mut st.quiet, &mut p.quiet);
        }
        drop(slot);
        self.received.store(t + 1, Ordering::Release);
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wait until `ready()`: spin briefly (the other stage is usually less than a step away),
/// then yield the core (so that a busy machine runs the other stage), then, after about a
/// millisecond, sleep in short naps. `false` if `cancel` is set first.
fn wait(ready: impl Fn() -> bool, cancel: &AtomicBool) -> bool {
    let mut tries = 0u32;
    let mut since: Option<Instant> = None;
    while !ready() {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        tries = tries.saturating_add(1);
        if tries < 256 {
            std::hint::spin_loop();
        } else if since.get_or_insert_with(Instant::now).elapsed() < Duration::from_millis(1) {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    true
}

/// Where to split `net` for one image on two threads: the first stage simulates layers
/// `0..s` (0 = input), the second `s..`. `events[l]` is the synaptic additions per step
/// expected into layer `l`. `None` when no split takes at least a tenth off the longer stage.
pub(crate) fn split(net: &Network, events: &[f64]) -> Option<usize> {
    let shapes = net.shapes();
    let cost: Vec<f64> = shapes
        .iter()
        .zip(events)
        .map(|(s, e)| e + UPDATE_COST * s.size() as f64)
        .collect();
    let total: f64 = cost.iter().sum();
    let mut best: Option<(usize, f64)> = None;
    let mut first = 0.0;
    for s in 1..cost.len() {
        first += cost[s - 1];
        let longer = first.max(total - first);
        if best.is_none_or(|(_, b)| longer < b) {
            best = Some((s, longer));
        }
    }
    best.filter(|&(_, longer)| longer <= 0.9 * total)
        .map(|(s, _)| s)
}

/// The layers below `s` that some synapse group of a layer `s..` reads.
pub(crate) fn relayed(net: &Network, s: usize) -> Vec<usize> {
    let mut out: Vec<usize> = net.layers[s - 1..]
        .iter()
        .flat_map(|l| &l.groups)
        .map(|g| g.info.source)
        .filter(|&src| src < s)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// An estimate of the events per step into each layer before any run was measured: each
/// synapse carries a spike with the typical activity of its source (a quarter of the pixels,
/// a few percent of hidden neurons).
pub(crate) fn guess_events(net: &Network) -> Vec<f64> {
    let mut out = vec![0.0; net.layers.len() + 1];
    for (i, layer) in net.layers.iter().enumerate() {
        for (g, group) in layer.groups.iter().enumerate() {
            let density = if group.info.source == 0 { 0.25 } else { 0.03 };
            let synapses: u64 = net.group_fan_out(i + 1, g).iter().sum();
            out[i + 1] += synapses as f64 * density;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Shape;
    use crate::network::{GroupKind, LayerSpec};

    fn dense(out: usize, inp: usize) -> LayerSpec {
        let kind = GroupKind::Dense {
            weight: vec![1; out * inp],
            shape: vec![out, inp],
        };
        LayerSpec::chain("dense", kind, None, 5)
    }

    #[test]
    fn the_split_balances_the_stages() {
        let input = Shape { c: 1, h: 1, w: 4 };
        let specs = [
            dense(100, 4),
            dense(100, 100),
            dense(100, 100),
            dense(2, 100),
        ];
        let net = Network::new(input, 10, &specs, u64::MAX).unwrap();
        // Layers 1 and 3 heavy: the split goes between them.
        let s = split(&net, &[0.0, 10_000.0, 10.0, 10_000.0, 1.0]).unwrap();
        assert!(s == 2 || s == 3, "{s}");
        assert_eq!(relayed(&net, 3), vec![2]);
        // One dominant layer: no split helps.
        assert_eq!(split(&net, &[0.0, 1e9, 0.0, 0.0, 0.0]), None);
    }
}
