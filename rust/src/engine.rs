//! Event-driven simulation of a batch of images.
//!
//! Each step, each layer (input first) receives the spikes of its synapse groups' sources (this
//! step with `delay = 0`, the previous step with `delay = 1`), scatters the synapses of exactly
//! those spikes into an accumulator, then updates every neuron once ([`crate::neuron`]).
//! Synaptic work therefore follows the spike count; the neuron updates are the fixed
//! `neurons × T` that a chip also performs.
//!
//! Images are independent: they are shared out to `threads` workers (the calling thread and
//! scoped threads; no global pool, so a forked process is safe), each with its own reusable
//! state, writing to disjoint rows of the outputs. A single image on more than one thread is
//! split into two pipelined stages of layers ([`crate::pipeline`]), the second on a helper
//! thread that the network's [`Workspaces`] keep between runs ([`crate::helper`]). Results do
//! not depend on the batch size or the thread count. Every worker checks a cancel flag once per
//! step; the calling thread also calls the run's poll hook about every [`POLL_INTERVAL`],
//! which may cancel the run.
//!
//! A run may be watched by an [`Observer`] ([`run_observed`]), which is shown each layer's
//! spikes of each step as soon as they are known (the chip accounting of [`crate::chip`]). The
//! plain run is watched by [`NoObserver`], whose empty methods compile away. An observed run
//! of one image is not split into pipelined stages.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Bytes, Error, Result};
use crate::geometry::Shape;
use crate::helper::{Helper, HelperSlot};
use crate::kernels::{Choice, Kernels};
use crate::network::Network;
use crate::neuron::LEAK_MAX;
use crate::pipeline::Relay;
pub use crate::simulate::decision;
use crate::simulate::{Simulation, Stage, Stop};
pub(crate) use crate::step::state_bytes;
use crate::step::{role_bytes, LayerState, Plan};

/// Most time steps one run may have (`snnfast.settings.MAX_TIMESTEPS`).
pub const MAX_TIMESTEPS: usize = 1 << 20;

/// How often the calling thread calls a run's poll hook.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time steps, `1..=MAX_TIMESTEPS`.
    pub timesteps: usize,
    /// 0: spikes reach the next layer in the same step; 1: one step later (Loihi pipelining).
    pub delay: usize,
    /// Initial potential as a fraction of each layer's threshold, in `[0, 1)`.
    pub v_init: f64,
    pub threads: usize,
    /// Layers (0 = input) whose spike counts and final potentials are returned.
    pub record: Vec<usize>,
    /// Early exit: stop an image once its output decision has been the same for this many
    /// consecutive steps (see [`decision`]). `None` runs every image for `timesteps` steps.
    pub early_exit: Option<usize>,
    /// Steps after which the state is also reported: increasing, each in `1..=timesteps`, the
    /// last one `timesteps`. Empty means `[timesteps]`. What is reported for checkpoint `c` is
    /// exactly what a run of `c` steps returns, so one run of `T` steps serves every shorter
    /// run too.
    pub checkpoints: Vec<usize>,
    /// The kernel set to run with.
    pub kernels: Choice,
    /// How a single image on two or more threads is split into two pipelined stages: `None`
    /// chooses the layer by the expected work; `Some(0)` never splits; `Some(s)` runs layers
    /// `0..s` on one thread and `s..` on the other (for tests and benchmarks).
    pub split: Option<usize>,
    /// Bytes the run's outputs and worker state may take (checked before allocating).
    pub memory_limit: u64,
}

impl RunOptions {
    /// `timesteps` steps, no delay, `v_init = 0`, one thread, nothing recorded, no early exit,
    /// no checkpoints, the best kernels of this processor, no memory limit.
    pub fn new(timesteps: usize) -> RunOptions {
        RunOptions {
            timesteps,
            delay: 0,
            v_init: 0.0,
            threads: 1,
            record: Vec::new(),
            early_exit: None,
            checkpoints: Vec::new(),
            kernels: Choice::resolve(None).expect("the default kernel choice always resolves"),
            memory_limit: u64::MAX,
            split: None,
        }
    }
}

/// What a run returns, for each of the `S` checkpoints (`S = 1` without checkpoints): per
/// recorded layer, `[S, N, size]` in C, H, W order.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub spike_counts: Vec<Vec<i32>>,
    pub membrane: Vec<Vec<i32>>,
    /// `[S, N, n_layers + 1]`: synaptic events delivered into each layer.
    pub synops: Vec<i64>,
    /// `[S, N]`: time steps simulated for each image (the checkpoint unless it exited early).
    pub steps: Vec<i32>,
    /// The kernel set that ran (`"portable"`, `"avx2"`, `"avx512"`).
    pub kernels: &'static str,
}

/// Per-worker simulation state kept between runs of one network, so that running a single
/// image allocates nothing large, the helper thread that lets one image use two cores, and the
/// synaptic additions per step of the last run (to balance the two cores' share of the layers).
/// Use one `Workspaces` with one network only.
#[derive(Default)]
pub struct Workspaces {
    states: Mutex<Vec<Vec<LayerState>>>,
    helper: HelperSlot,
    events: Mutex<Option<Vec<f64>>>,
}

impl Workspaces {
    fn take(&self, net: &Network) -> Result<Vec<LayerState>> {
        let cached = self.states.lock().map(|mut v| v.pop()).unwrap_or(None);
        match cached {
            Some(state) if state.len() == net.layers.len() + 1 => Ok(state),
            _ => new_state(net),
        }
    }

    fn give(&self, state: Vec<LayerState>) {
        if let Ok(mut v) = self.states.lock() {
            v.push(state);
        }
    }

    /// Synaptic additions per step into each layer: measured on the last run, else estimated.
    fn events(&self, net: &Network) -> Vec<f64> {
        match self.events.lock().ok().and_then(|e| e.clone()) {
            Some(e) if e.len() == net.layers.len() + 1 => e,
            _ => crate::pipeline::guess_events(net),
        }
    }

    /// Remember the synaptic additions per step into each layer of the last run, as the
    /// states kept here counted them (they start counting afresh). The input layer, which no
    /// synapse feeds, counts none.
    fn remember(&self, n_layers: usize) {
        let (mut adds, mut steps) = (vec![0u64; n_layers], vec![0u64; n_layers]);
        if let Ok(mut states) = self.states.lock() {
            for state in states.iter_mut().filter(|s| s.len() == n_layers) {
                for (l, st) in state.iter_mut().enumerate() {
                    adds[l] += std::mem::take(&mut st.adds);
                    steps[l] += std::mem::take(&mut st.steps);
                }
            }
        }
        if steps.iter().all(|&s| s == 0) {
            return;
        }
        if let Ok(mut e) = self.events.lock() {
            let per_step = adds
                .iter()
                .zip(&steps)
                .map(|(&a, &s)| a as f64 / s.max(1) as f64);
            *e = Some(per_step.collect());
        }
    }
}

/// A fresh simulation state for every layer of `net`, input first.
pub(crate) fn new_state(net: &Network) -> Result<Vec<LayerState>> {
    let plan = Plan::of(net);
    net.shapes()
        .iter()
        .zip(state_kinds(net))
        .zip(plan.0)
        .map(|((s, (narrow, current)), role)| LayerState::new(s.size(), narrow, current, role))
        .collect()
}

/// Per layer, input first: whether its accumulator is i16 and whether it has a current
/// register. The input layer has no synapses: its (always zero) accumulator is narrow.
fn state_kinds(net: &Network) -> impl Iterator<Item = (bool, bool)> + '_ {
    std::iter::once((true, false)).chain(net.layers.iter().map(|l| (l.narrow, l.du < LEAK_MAX)))
}

/// Raw pointer to an output buffer, shared by the workers; each image's row is written by
/// exactly one worker (the synops row of an image split into two stages by two, at disjoint
/// entries, through `put`).
#[derive(Clone, Copy)]
struct Out<T>(*mut T);
// SAFETY: an `Out` is only a base address; the workers write through it only with `row` and
// `put`, whose contracts (disjoint rows or entries, buffer alive for the scope) make sharing it
// sound. `T` is a plain integer type here (`i32`, `i64`), which is itself `Send`.
unsafe impl<T: Send> Send for Out<T> {}
// SAFETY: as for `Send`: shared references to an `Out` only hand out the pointer value.
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// The row of `len` values starting at `row · len`.
    ///
    /// # Safety
    /// The row must be inside the buffer and written by no one else meanwhile.
    unsafe fn row<'a>(self, row: usize, len: usize) -> &'a mut [T] {
        // SAFETY: the caller guarantees that `row * len .. (row + 1) * len` lies inside the
        // buffer and that nobody else reads or writes it while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(row * len), len) }
    }

    /// Write entry `at`.
    ///
    /// # Safety
    /// The entry must be inside the buffer, and no one else may read or write it meanwhile
    /// (nor hold a slice over it).
    unsafe fn put(self, at: usize, value: T) {
        // SAFETY: the caller guarantees that `at` is inside the buffer and not shared.
        unsafe { self.0.add(at).write(value) }
    }
}

/// Watches a run step by step: each layer's spikes of each step, as soon as they are known.
///
/// Every worker makes one [`Observer::Image`] state and reuses it for the images it takes:
/// [`Observer::begin`] starts image `i`, [`Observer::spikes`] is called once per layer (input
/// first) and step with the H, W, C indices of the neurons that spiked, [`Observer::end_step`]
/// closes the step, and [`Observer::emit`] is called where the run reports checkpoint `c`
/// (after `steps` simulated steps; an image that exits early emits its remaining checkpoints at
/// once). Observers only read; they cannot change the simulation.
pub trait Observer: Sync {
    /// Whether it watches at all ([`NoObserver`] does not: the engine then does no work for
    /// it).
    const ACTIVE: bool = true;
    /// Whether [`Observer::emit`] needs every layer's spike counts (the engine then keeps them
    /// for every layer, not only the recorded ones).
    fn needs_counts(&self) -> bool {
        false
    }
    /// Per-worker state.
    type Image: Send;
    /// A worker's state (called once per worker).
    fn image(&self) -> Result<Self::Image>;
    /// Image `image` starts.
    fn begin(&self, st: &mut Self::Image, image: usize);
    /// Layer `layer` (0 = input) emitted `spikes` in the current step.
    fn spikes(&self, st: &mut Self::Image, layer: usize, spikes: &[u32]);
    /// The current step is over.
    fn end_step(&self, st: &mut Self::Image);
    /// The run reports checkpoint `checkpoint` of the current image after `steps` steps;
    /// `counts` are the image's spike counts so far.
    fn emit(&self, st: &mut Self::Image, checkpoint: usize, steps: usize, counts: SpikeCounts);
}

/// Each layer's spike counts of the current image so far, H, W, C order (kept for every layer
/// when the observer [needs them](Observer::needs_counts), else only for the recorded ones).
#[derive(Clone, Copy)]
pub struct SpikeCounts<'a> {
    layers: &'a [LayerState],
}

impl<'a> SpikeCounts<'a> {
    pub(crate) fn new(layers: &'a [LayerState]) -> SpikeCounts<'a> {
        SpikeCounts { layers }
    }

    /// Layer `l`'s counts (0 = input).
    pub fn layer(&self, l: usize) -> &'a [i32] {
        &self.layers[l].counts
    }
}

/// The observer of a plain run: does nothing, costs nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    const ACTIVE: bool = false;
    type Image = ();
    #[inline(always)]
    fn image(&self) -> Result<()> {
        Ok(())
    }
    #[inline(always)]
    fn begin(&self, _: &mut (), _: usize) {}
    #[inline(always)]
    fn spikes(&self, _: &mut (), _: usize, _: &[u32]) {}
    #[inline(always)]
    fn end_step(&self, _: &mut ()) {}
    #[inline(always)]
    fn emit(&self, _: &mut (), _: usize, _: usize, _: SpikeCounts) {}
}

/// Run `images` (uint8, `[N, C, H, W]` contiguous) through `net`.
pub fn run(net: &Network, images: &[u8], opts: &RunOptions) -> Result<RunOutput> {
    run_with(net, images, opts, &Workspaces::default(), &mut || false)
}

/// [`run`], reusing the per-worker state kept in `workspaces` (which belong to `net`), with a
/// poll hook: the calling thread calls `poll` about every [`POLL_INTERVAL`] while the run
/// lasts, and when it returns `true` every worker stops at its next step and the run returns
/// an `Interrupted` error.
pub fn run_with(
    net: &Network,
    images: &[u8],
    opts: &RunOptions,
    workspaces: &Workspaces,
    poll: &mut dyn FnMut() -> bool,
) -> Result<RunOutput> {
    run_observed(net, images, opts, workspaces, poll, &NoObserver)
}

/// [`run_with`], watched by `observer` (see [`Observer`]).
pub fn run_observed<O: Observer>(
    net: &Network,
    images: &[u8],
    opts: &RunOptions,
    workspaces: &Workspaces,
    poll: &mut dyn FnMut() -> bool,
    observer: &O,
) -> Result<RunOutput> {
    let input = net.input;
    let n_img = images.len() / input.size();
    if n_img == 0 || images.len() != n_img * input.size() {
        return Err(Error::shape(format!(
            "images must hold N x {} x {} x {} values with N > 0, got {} values",
            input.c,
            input.h,
            input.w,
            images.len()
        )));
    }
    check_options(net, opts)?;
    let checkpoints = checkpoints(opts)?;
    let n_out = checkpoints.len() * n_img;
    let shapes = net.shapes();
    let n_layers = shapes.len();
    // One image uses at most two threads (two pipelined stages of layers), one if observed.
    let per_image = if O::ACTIVE { 1 } else { 2 };
    let threads = opts.threads.clamp(1, n_img.max(per_image));
    run_bytes(net, n_out, threads, opts).check(opts.memory_limit, "this run")?;
    let what = "the run's outputs";
    let mut spike_counts = Vec::with_capacity(opts.record.len());
    let mut membrane = Vec::with_capacity(opts.record.len());
    for &l in &opts.record {
        spike_counts.push(output::<i32>(n_out * shapes[l].size(), what)?);
        membrane.push(output::<i32>(n_out * shapes[l].size(), what)?);
    }
    let mut synops = output::<i64>(n_out * n_layers, what)?;
    let mut steps = output::<i32>(n_out, what)?;
    let outputs = Outputs {
        counts: spike_counts
            .iter_mut()
            .map(|v| Out(v.as_mut_ptr()))
            .collect(),
        membrane: membrane.iter_mut().map(|v| Out(v.as_mut_ptr())).collect(),
        synops: Out(synops.as_mut_ptr()),
        steps: Out(steps.as_mut_ptr()),
    };
    let job = Job {
        net,
        images,
        n_img,
        opts,
        checkpoints: &checkpoints,
        shapes: &shapes,
        workspaces,
        outputs,
        observer,
        next: AtomicUsize::new(0),
        cancel: AtomicBool::new(false),
        failure: Mutex::new(None),
    };
    match opts.kernels {
        Choice::Portable(k) => job.run(k, threads, poll),
        Choice::Avx2(k) => job.run(k, threads, poll),
        Choice::Avx512(k) => job.run(k, threads, poll),
    }?;
    workspaces.remember(n_layers);
    Ok(RunOutput {
        spike_counts,
        membrane,
        synops,
        steps,
        kernels: opts.kernels.name(),
    })
}

/// Integers whose all-zero bytes are the value 0.
trait Zero: Copy {}
impl Zero for i32 {}
impl Zero for i64 {}

/// A zeroed output buffer of `n` integers, allocated fallibly. Unlike [`zeroed`] it does not
/// write the zeros itself: a large buffer comes straight from the system as zero pages (asked
/// to be huge pages where the system allows), so the workers' first writes, in parallel, are
/// its only touch, instead of a single-threaded fill before the run and the writes after.
fn output<T: Zero>(n: usize, what: &str) -> Result<Vec<T>> {
    let fail = || Error::allocation(what, Bytes::of(n, std::mem::size_of::<T>()).0);
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| fail())?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a nonzero size (checked).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if ptr.is_null() {
        return Err(fail());
    }
    huge_pages(ptr as *mut u8, layout.size());
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `n` values of
    // `T` (as `Vec` would), and all its bytes are zero, which is the value 0 of `T` (`Zero`).
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// Ask the system to back the whole 2 MiB pages inside `len` bytes at `ptr` with huge pages
/// (fewer page faults for large outputs). Advice only: failure changes nothing.
#[allow(unused_variables)]
fn huge_pages(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + len) / HUGE * HUGE;
        if end > start {
            // SAFETY: madvise only advises on the pages of `start..end`, which lie inside the
            // allocation; it does not change their contents (MADV_HUGEPAGE).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
}

fn check_options(net: &Network, opts: &RunOptions) -> Result<()> {
    let n_layers = net.layers.len() + 1;
    if !(1..=MAX_TIMESTEPS).contains(&opts.timesteps) {
        return Err(Error::config(format!(
            "run: timesteps must be an integer in [1, {MAX_TIMESTEPS}], got {}",
            opts.timesteps
        )));
    }
    if opts.delay > 1 {
        return Err(Error::config(format!(
            "run: delay must be an integer in [0, 1], got {}",
            opts.delay
        )));
    }
    if !(0.0..1.0).contains(&opts.v_init) {
        return Err(Error::config(format!(
            "run: v_init must be a finite number in [0.0, 1.0), got {}",
            opts.v_init
        )));
    }
    if let Some(e) = opts.early_exit.filter(|e| !(1..=MAX_TIMESTEPS).contains(e)) {
        return Err(Error::config(format!(
            "run: early_exit must be an integer in [1, {MAX_TIMESTEPS}], got {e}"
        )));
    }
    if let Some(s) = opts.split.filter(|&s| s >= n_layers) {
        return Err(Error::config(format!(
            "run: split must be an integer in [0, {}], got {s}",
            n_layers - 1
        )));
    }
    if let Some(&bad) = opts.record.iter().find(|&&l| l >= n_layers) {
        return Err(Error::config(format!(
            "run: record entry must be an integer in [0, {}], got {bad}",
            n_layers - 1
        )));
    }
    Ok(())
}

/// Bytes a run of `n_out` = checkpoints × images outputs on `threads` workers allocates.
fn run_bytes(net: &Network, n_out: usize, threads: usize, opts: &RunOptions) -> Bytes {
    let shapes = net.shapes();
    let recorded = opts
        .record
        .iter()
        .fold(Bytes::ZERO, |b, &l| b.plus(Bytes::of(shapes[l].size(), 8)));
    let outputs = recorded
        .times(n_out)
        .plus(Bytes::of(n_out, 8).times(shapes.len()))
        .plus(Bytes::of(n_out, 4));
    let worker = shapes
        .iter()
        .zip(state_kinds(net))
        .zip(Plan::of(net).0)
        .fold(Bytes::of(net.input.size(), 4), |b, ((s, (n, c)), role)| {
            b.plus(state_bytes(Some(s.size()), n, c))
                .plus(role_bytes(s.size(), n, role))
        });
    outputs.plus(worker.times(threads))
}

/// The checkpoints of a run, checked; `[timesteps]` when none are given.
fn checkpoints(opts: &RunOptions) -> Result<Vec<usize>> {
    if opts.checkpoints.is_empty() {
        return Ok(vec![opts.timesteps]);
    }
    let c = &opts.checkpoints;
    if c[0] == 0 || c.windows(2).any(|w| w[0] >= w[1]) || *c.last().unwrap() != opts.timesteps {
        return Err(Error::config(format!(
            "run: checkpoints must increase, start at >= 1 and end at timesteps = {}, got {c:?}",
            opts.timesteps
        )));
    }
    Ok(c.clone())
}

/// Where the workers write their results.
struct Outputs {
    counts: Vec<Out<i32>>,
    membrane: Vec<Out<i32>>,
    synops: Out<i64>,
    steps: Out<i32>,
}

/// One batch to simulate, shared by the workers.
struct Job<'a, O: Observer> {
    net: &'a Network,
    images: &'a [u8],
    n_img: usize,
    opts: &'a RunOptions,
    checkpoints: &'a [usize],
    shapes: &'a [Shape],
    workspaces: &'a Workspaces,
    outputs: Outputs,
    observer: &'a O,
    /// The next image no worker has taken yet.
    next: AtomicUsize,
    /// Set to stop every worker at its next step.
    cancel: AtomicBool,
    /// The first error a worker met (its state could not be allocated).
    failure: Mutex<Option<Error>>,
}

/// What a worker checks once per step: the cancel flag, and on the calling thread the poll
/// hook (about every [`POLL_INTERVAL`]).
struct Watch<'a> {
    cancel: &'a AtomicBool,
    poll: Option<&'a mut dyn FnMut() -> bool>,
    next_poll: Instant,
}

impl Stop for Watch<'_> {
    /// Whether the run is to stop now.
    #[inline]
    fn stopped(&mut self) -> bool {
        if self.cancel.load(Ordering::Relaxed) {
            return true;
        }
        if let Some(poll) = self.poll.as_mut() {
            let now = Instant::now();
            if now >= self.next_poll {
                self.next_poll = now + POLL_INTERVAL;
                if poll() {
                    self.cancel.store(true, Ordering::Relaxed);
                    return true;
                }
            }
        }
        false
    }
}

impl<O: Observer> Job<'_, O> {
    /// Simulate every image with the kernels `k` on `threads` workers, the calling thread
    /// being one of them.
    fn run<K: Kernels>(&self, k: K, threads: usize, poll: &mut dyn FnMut() -> bool) -> Result<()> {
        let mut main = Watch {
            cancel: &self.cancel,
            poll: Some(poll),
            next_poll: Instant::now() + POLL_INTERVAL,
        };
        let pipelined =
            (!O::ACTIVE && self.n_img == 1 && threads > 1 && self.opts.early_exit.is_none())
                .then(|| match self.opts.split {
                    None => crate::pipeline::split(self.net, &self.workspaces.events(self.net)),
                    Some(0) => None,
                    Some(s) => Some(s),
                })
                .flatten()
                .and_then(|s| self.workspaces.helper.take().map(|lent| (s, lent)));
        if let Some((s, lent)) = pipelined {
            self.pipelined(k, s, lent.helper(), &mut main);
        } else if threads == 1 || self.n_img == 1 {
            self.worker(k, &mut main);
        } else {
            let caller = std::thread::current();
            let others = AtomicUsize::new(threads - 1);
            std::thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(|| {
                        let mut watch = Watch {
                            cancel: &self.cancel,
                            poll: None,
                            next_poll: Instant::now(),
                        };
                        self.worker(k, &mut watch);
                        others.fetch_sub(1, Ordering::Release);
                        caller.unpark();
                    });
                }
                self.worker(k, &mut main);
                // Keep polling while the other workers finish their last images.
                while others.load(Ordering::Acquire) > 0 {
                    std::thread::park_timeout(POLL_INTERVAL);
                    main.stopped();
                }
            });
        }
        if let Some(err) = self.failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(err);
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::interrupted());
        }
        Ok(())
    }

    /// The simulation every image of the run shares.
    fn simulation(&self) -> Simulation<'_> {
        Simulation {
            net: self.net,
            timesteps: self.opts.timesteps,
            delay: self.opts.delay,
            v_init: self.opts.v_init,
            record: &self.opts.record,
            early_exit: self.opts.early_exit,
            checkpoints: self.checkpoints,
        }
    }

    /// A worker's state, or `None` (with the run stopped and the error kept) if it cannot be
    /// allocated.
    fn state(&self) -> Option<Vec<LayerState>> {
        match self.workspaces.take(self.net) {
            Ok(state) => Some(state),
            Err(err) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert(err);
                }
                self.cancel.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Write the results of layers `layers` of image `i` at checkpoint `c`: their synaptic
    /// events, counts and potentials, and (if the output layer is among them) the steps.
    ///
    /// # Safety
    /// Only one thread writes image `i`'s results of these layers, and `i < N`, `c < S`.
    unsafe fn emit(
        &self,
        i: usize,
        c: usize,
        layers: std::ops::Range<usize>,
        state: &[LayerState],
        synops: &[i64],
        used: usize,
    ) {
        let out = &self.outputs;
        let n_layers = self.shapes.len();
        let at = c * self.n_img + i;
        // SAFETY: row `c · N + i` of each buffer is inside it (c < S, i < N) and, for these
        // layers, written by this thread only (the caller's guarantee); the buffers outlive
        // the run.
        unsafe {
            for l in layers.clone() {
                out.synops.put(at * n_layers + l, synops[l]);
            }
            if layers.end == n_layers {
                out.steps.put(at, used as i32);
            }
            for (r, &l) in self.opts.record.iter().enumerate() {
                if layers.contains(&l) {
                    let (shape, size) = (self.shapes[l], self.shapes[l].size());
                    to_chw(&state[l].counts, shape, out.counts[r].row(at, size));
                    to_chw(&state[l].v, shape, out.membrane[r].row(at, size));
                }
            }
        }
    }

    /// Take images until none is left or the run is stopped.
    fn worker<K: Kernels>(&self, k: K, watch: &mut Watch) {
        let (net, input, n_img) = (self.net, self.net.input, self.n_img);
        let n_layers = net.layers.len() + 1;
        let Some(mut state) = self.state() else {
            return;
        };
        let mut seen = match self.observer.image() {
            Ok(seen) => seen,
            Err(err) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert(err);
                }
                self.cancel.store(true, Ordering::Relaxed);
                self.workspaces.give(state);
                return;
            }
        };
        let mut pixels = vec![0i32; input.size()];
        let mut row = vec![0i64; n_layers];
        let (sim, whole) = (self.simulation(), Stage::whole(net));
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= n_img {
                break;
            }
            let image = &self.images[i * input.size()..(i + 1) * input.size()];
            load_image(image, input, &mut pixels);
            let emit = |c: usize, state: &[LayerState], synops: &[i64], used: usize| {
                // SAFETY: image `i` is taken by exactly one worker (the atomic counter), which
                // writes all its layers.
                unsafe { self.emit(i, c, 0..n_layers, state, synops, used) }
            };
            self.observer.begin(&mut seen, i);
            let obs = (self.observer, &mut seen);
            if !sim.image(k, &pixels, &mut state, &mut row, watch, &whole, obs, emit) {
                break;
            }
        }
        self.workspaces.give(state);
    }

    /// The run's one image on two threads: layers `0..s` on this one, `s..` on `helper`.
    fn pipelined<K: Kernels>(&self, k: K, s: usize, helper: &Helper, watch: &mut Watch) {
        let (net, input) = (self.net, self.net.input);
        let n_layers = net.layers.len() + 1;
        let relay = match Relay::new(net, crate::pipeline::relayed(net, s), &self.cancel) {
            Ok(r) => r,
            Err(err) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert(err);
                }
                return;
            }
        };
        let (Some(mut first), Some(second)) = (self.state(), self.state()) else {
            return;
        };
        let second = Mutex::new(second);
        let mut pixels = vec![0i32; input.size()];
        load_image(&self.images[..input.size()], input, &mut pixels);
        let sim = self.simulation();
        let (front, back) = (
            Stage {
                lo: 0,
                hi: s,
                inbox: None,
                outbox: Some(&relay),
            },
            Stage {
                lo: s,
                hi: n_layers,
                inbox: Some(&relay),
                outbox: None,
            },
        );
        let theirs = || {
            let mut state = second.lock().unwrap_or_else(|e| e.into_inner());
            let mut row = vec![0i64; n_layers];
            let mut watch = Watch {
                cancel: &self.cancel,
                poll: None,
                next_poll: Instant::now(),
            };
            let emit = |c: usize, state: &[LayerState], synops: &[i64], used: usize| {
                // SAFETY: the one image's layers `s..` are written by this thread only.
                unsafe { self.emit(0, c, s..n_layers, state, synops, used) }
            };
            let obs = (&NoObserver, &mut ());
            if !sim.image(
                k, &pixels, &mut state, &mut row, &mut watch, &back, obs, emit,
            ) {
                self.cancel.store(true, Ordering::Relaxed);
            }
        };
        let ok = helper.join(&theirs, || {
            let mut row = vec![0i64; n_layers];
            let emit = |c: usize, state: &[LayerState], synops: &[i64], used: usize| {
                // SAFETY: the one image's layers `0..s` are written by this thread only.
                unsafe { self.emit(0, c, 0..s, state, synops, used) }
            };
            let obs = (&NoObserver, &mut ());
            if !sim.image(k, &pixels, &mut first, &mut row, watch, &front, obs, emit) {
                self.cancel.store(true, Ordering::Relaxed);
            }
        });
        if !ok {
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert(Error::config(
                    "snnfast engine: internal error on the helper thread; please report it",
                ));
            }
        }
        self.workspaces.give(first);
        self.workspaces
            .give(second.into_inner().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Pixels (C, H, W) into the input layer's per-neuron bias (H, W, C).
pub(crate) fn load_image(image: &[u8], shape: Shape, out: &mut [i32]) {
    for c in 0..shape.c {
        for p in 0..shape.h * shape.w {
            out[p * shape.c + c] = image[c * shape.h * shape.w + p] as i32;
        }
    }
}

/// State (H, W, C) to output (C, H, W).
fn to_chw(src: &[i32], shape: Shape, out: &mut [i32]) {
    let hw = shape.h * shape.w;
    for p in 0..hw {
        for c in 0..shape.c {
            out[c * hw + p] = src[p * shape.c + c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{GroupKind, GroupSpec, LayerSpec};

    fn net(input: Shape, threshold: i64, specs: &[LayerSpec]) -> crate::Result<Network> {
        Network::new(input, threshold, specs, u64::MAX)
    }

    fn opts(t: usize, delay: usize, threads: usize, record: Vec<usize>) -> RunOptions {
        RunOptions {
            delay,
            threads,
            record,
            ..RunOptions::new(t)
        }
    }

    fn dense(out: usize, inp: usize, w: i16, threshold: i32) -> LayerSpec {
        let kind = GroupKind::Dense {
            weight: vec![w; out * inp],
            shape: vec![out, inp],
        };
        LayerSpec::chain("dense", kind, Some(vec![0; out]), threshold as i64)
    }

    #[test]
    fn input_layer_fires_at_pixel_rate() {
        let input = Shape { c: 1, h: 1, w: 4 };
        let net = net(input, 255, &[dense(1, 4, 0, 1)]).unwrap();
        let out = run(&net, &[0, 51, 128, 255], &opts(10, 0, 1, vec![0])).unwrap();
        // v accumulates p per step and fires whenever it reaches 255: floor(10 p / 255) spikes.
        assert_eq!(out.spike_counts[0], vec![0, 2, 5, 10]);
        assert_eq!(out.membrane[0], vec![0, 510 - 510, 1280 - 1275, 0]);
    }

    #[test]
    fn delay_postpones_the_next_layer_by_one_step() {
        let input = Shape { c: 1, h: 1, w: 1 };
        let net = net(input, 255, &[dense(1, 1, 1, 1)]).unwrap();
        let now = run(&net, &[255], &opts(5, 0, 1, vec![1])).unwrap();
        let late = run(&net, &[255], &opts(5, 1, 1, vec![1])).unwrap();
        assert_eq!(now.spike_counts[0], vec![5]);
        assert_eq!(late.spike_counts[0], vec![4]);
        assert_eq!(now.synops, vec![0, 5]);
        assert_eq!(late.synops, vec![0, 4]);
    }

    /// A 3x3 input and a 3x3 convolution of ones, padding 1, threshold 1000.
    fn ones_conv() -> (Shape, LayerSpec) {
        let input = Shape { c: 1, h: 3, w: 3 };
        let kind = GroupKind::Conv {
            weight: vec![1; 9],
            shape: vec![1, 1, 3, 3],
            stride: (1, 1),
            padding: [1; 4],
            groups: 1,
        };
        (input, LayerSpec::chain("conv2d", kind, Some(vec![0]), 1000))
    }

    #[test]
    fn conv_counts_synapses_without_padding_positions() {
        let (input, conv) = ones_conv();
        let net = net(input, 255, &[conv]).unwrap();
        // Corner pixels reach 4 outputs, edges 6, the centre 9: 4·4 + 4·6 + 9 = 49 synapses.
        assert_eq!(net.synapse_counts(), vec![0, 49]);
        let out = run(&net, &[255; 9], &opts(1, 0, 1, vec![1])).unwrap();
        assert_eq!(out.synops, vec![0, 49]);
        assert_eq!(out.membrane[0], vec![4, 6, 4, 6, 9, 6, 4, 6, 4]);
    }

    #[test]
    fn the_split_learns_the_additions_not_the_events() {
        // Every pixel at the input threshold spikes every step: all are complemented, none is
        // ever quiet, so the convolution delivers its 49 events a step with no addition after
        // the base. The next layer's events are its additions.
        let (input, conv) = ones_conv();
        let net = net(input, 255, &[conv, dense(2, 9, 1, 1)]).unwrap();
        let ws = Workspaces::default();
        let out = run_with(&net, &[255; 9], &opts(8, 0, 1, vec![2]), &ws, &mut || false).unwrap();
        assert_eq!(out.synops[1], 8 * 49);
        let learned = ws.events(&net);
        assert_eq!(learned[1], 0.0);
        assert_eq!(learned[2], out.synops[2] as f64 / 8.0);
    }

    #[test]
    fn results_do_not_depend_on_threads() {
        let input = Shape { c: 1, h: 2, w: 2 };
        let net = net(input, 100, &[dense(3, 4, 7, 20), dense(2, 3, -3, 5)]).unwrap();
        let images: Vec<u8> = (0..4 * 9).map(|i| (i * 37 % 256) as u8).collect();
        let a = run(&net, &images, &opts(20, 1, 1, vec![0, 1, 2])).unwrap();
        let b = run(&net, &images, &opts(20, 1, 4, vec![0, 1, 2])).unwrap();
        assert_eq!(a.spike_counts, b.spike_counts);
        assert_eq!(a.membrane, b.membrane);
        assert_eq!(a.synops, b.synops);
    }

    /// A small convolutional network with a skip connection from the input into its last
    /// layer (so that the input layer is relayed between stages too).
    fn skip_cnn() -> Network {
        let input = Shape { c: 1, h: 8, w: 8 };
        let conv = |o: usize, i: usize, k: usize, seed: i64| GroupKind::Conv {
            weight: (0..o * i * k * k)
                .map(|j| ((j as i64 * 7919 + seed) % 61 - 25) as i16)
                .collect(),
            shape: vec![o, i, k, k],
            stride: (1, 1),
            padding: [1; 4],
            groups: 1,
        };
        let c1 = LayerSpec::chain("conv2d", conv(16, 1, 3, 1), Some(vec![3; 16]), 40);
        let pool = LayerSpec::chain(
            "avgpool2d",
            GroupKind::Pool {
                kernel: (2, 2),
                weight: 20,
                stride: (2, 2),
                padding: [0; 4],
            },
            None,
            30,
        );
        let c2 = LayerSpec::chain("conv2d", conv(32, 16, 3, 5), None, 60);
        let mut last = LayerSpec::chain(
            "spiking",
            GroupKind::Pool {
                kernel: (1, 1),
                weight: 9,
                stride: (1, 1),
                padding: [0; 4],
            },
            None,
            25,
        );
        last.groups.push(GroupSpec {
            kind: GroupKind::Pool {
                kernel: (2, 2),
                weight: 4,
                stride: (2, 2),
                padding: [0; 4],
            },
            source: 0,
            channel_offset: 3,
        });
        net(input, 100, &[c1, pool, c2, last]).unwrap()
    }

    #[test]
    fn one_image_split_over_two_threads_is_exact() {
        let net = skip_cnn();
        let n_layers = net.layers.len() + 1;
        let image: Vec<u8> = (0..64).map(|i| (i * 37 % 256) as u8).collect();
        for delay in [0, 1] {
            let mut o = opts(23, delay, 1, (0..n_layers).collect());
            o.checkpoints = vec![2, 9, 23];
            let alone = run(&net, &image, &o).unwrap();
            let ws = Workspaces::default();
            for s in 1..n_layers {
                o.threads = 2;
                o.split = Some(s);
                for _ in 0..3 {
                    let two = run_with(&net, &image, &o, &ws, &mut || false).unwrap();
                    assert_eq!(
                        two.spike_counts, alone.spike_counts,
                        "split {s} delay {delay}"
                    );
                    assert_eq!(two.membrane, alone.membrane, "split {s} delay {delay}");
                    assert_eq!(two.synops, alone.synops, "split {s} delay {delay}");
                    assert_eq!(two.steps, alone.steps);
                }
            }
            o.split = None;
            let auto = run_with(&net, &image, &o, &ws, &mut || false).unwrap();
            assert_eq!(auto.spike_counts, alone.spike_counts);
        }
        let mut bad = opts(4, 0, 2, vec![]);
        bad.split = Some(n_layers);
        assert!(run(&net, &image, &bad).is_err());
    }

    #[test]
    fn a_cancelled_split_run_stops_both_threads() {
        let net = skip_cnn();
        let image = vec![200u8; 64];
        let mut o = opts(MAX_TIMESTEPS, 0, 2, vec![4]);
        o.split = Some(2);
        let mut polls = 0;
        let err = run_with(&net, &image, &o, &Workspaces::default(), &mut || {
            polls += 1;
            polls > 2
        })
        .unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Interrupted);
    }

    #[test]
    fn decision_breaks_ties_by_potential_then_index() {
        assert_eq!(decision(&[0, 0, 0], &[5, 9, 1]), None);
        assert_eq!(decision(&[2, 3, 3], &[0, 1, 1]), Some(1));
        assert_eq!(decision(&[2, 3, 3], &[0, 1, 4]), Some(2));
    }

    #[test]
    fn early_exit_stops_once_the_decision_is_stable() {
        let input = Shape { c: 1, h: 1, w: 2 };
        let net = net(input, 255, &[dense(2, 2, 1, 1)]).unwrap();
        let mut o = opts(50, 0, 1, vec![1]);
        o.early_exit = Some(3);
        // Output fires from step 1 on; both neurons tie, the decision (index 0) is stable at
        // steps 1, 2, 3: the run stops after 3 steps.
        let out = run(&net, &[255, 0], &o).unwrap();
        assert_eq!(out.steps, vec![3]);
        assert_eq!(out.spike_counts[0], vec![3, 3]);
        // A dark image never makes the output spike: it runs to the end.
        let out = run(&net, &[0, 0], &o).unwrap();
        assert_eq!(out.steps, vec![50]);
    }

    #[test]
    fn checkpoints_equal_shorter_runs() {
        let input = Shape { c: 1, h: 2, w: 2 };
        let net = net(input, 100, &[dense(3, 4, 7, 20), dense(2, 3, -3, 5)]).unwrap();
        let images: Vec<u8> = (0..4 * 5).map(|i| (i * 53 % 256) as u8).collect();
        for early_exit in [None, Some(2)] {
            let mut o = opts(12, 1, 2, vec![0, 2]);
            o.early_exit = early_exit;
            o.checkpoints = vec![1, 5, 12];
            let all = run(&net, &images, &o).unwrap();
            let n = 5;
            for (k, &t) in o.checkpoints.iter().enumerate() {
                let mut one = o.clone();
                one.timesteps = t;
                one.checkpoints = vec![];
                let alone = run(&net, &images, &one).unwrap();
                assert_eq!(alone.steps, all.steps[k * n..(k + 1) * n]);
                assert_eq!(alone.synops, all.synops[k * n * 3..(k + 1) * n * 3]);
                for r in 0..2 {
                    let size = alone.spike_counts[r].len();
                    let part = k * size..(k + 1) * size;
                    assert_eq!(alone.spike_counts[r], all.spike_counts[r][part.clone()]);
                    assert_eq!(alone.membrane[r], all.membrane[r][part]);
                }
            }
        }
        let mut bad = opts(4, 0, 1, vec![]);
        for c in [vec![0, 4], vec![2, 2, 4], vec![1, 3], vec![3, 5]] {
            bad.checkpoints = c;
            assert!(run(&net, &images, &bad).is_err());
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let input = Shape { c: 1, h: 1, w: 2 };
        assert!(net(input, 0, &[dense(1, 2, 1, 1)]).is_err());
        assert!(net(input, 1, &[dense(1, 3, 1, 1)]).is_err());
        assert!(net(input, 1, &[dense(1, 2, 1, 0)]).is_err());
        let net = net(input, 1, &[dense(1, 2, 1, 1)]).unwrap();
        assert!(run(&net, &[], &opts(1, 0, 1, vec![])).is_err());
        assert!(run(&net, &[1, 2, 3], &opts(1, 0, 1, vec![])).is_err());
        assert!(run(&net, &[1, 2], &opts(0, 0, 1, vec![])).is_err());
        assert!(run(&net, &[1, 2], &opts(1, 2, 1, vec![])).is_err());
        assert!(run(&net, &[1, 2], &opts(1, 0, 1, vec![5])).is_err());
    }

    #[test]
    fn residual_groups_add_and_depthwise_groups_stay_in_their_channels() {
        // Input 2x1x3; layer 1: depthwise 1x1 conv (channel c times c + 1); layer 2: the
        // residual sum of layer 1 (weight 10) and the input (weight 100), both pooled 1x1.
        let input = Shape { c: 2, h: 1, w: 3 };
        let conv = LayerSpec::chain(
            "conv2d",
            GroupKind::Conv {
                weight: vec![1, 2],
                shape: vec![2, 1, 1, 1],
                stride: (1, 1),
                padding: [0; 4],
                groups: 2,
            },
            None,
            1000,
        );
        let pool = |source, weight| GroupSpec {
            kind: GroupKind::Pool {
                kernel: (1, 1),
                weight,
                stride: (1, 1),
                padding: [0; 4],
            },
            source,
            channel_offset: 0,
        };
        let add = LayerSpec {
            groups: vec![pool(1, 10), pool(0, 100)],
            ..LayerSpec::chain(
                "spiking",
                GroupKind::Dense {
                    weight: vec![],
                    shape: vec![],
                },
                None,
                1 << 20,
            )
        };
        let net = net(input, 255, &[conv, add]).unwrap();
        assert_eq!(net.synapse_counts(), vec![0, 6, 12]);
        assert_eq!(net.fan_out(0), vec![2; 6]);
        // Channel 0 pixels 255, channel 1 pixels 0: only channel 0 spikes, every step.
        let image = [255, 255, 255, 0, 0, 0];
        let out = run(&net, &image, &opts(1, 0, 1, vec![1, 2])).unwrap();
        assert_eq!(out.membrane[0], vec![1, 1, 1, 0, 0, 0]);
        assert_eq!(out.membrane[1], vec![100, 100, 100, 0, 0, 0]);
        let late = run(&net, &image, &opts(2, 1, 1, vec![2])).unwrap();
        // delay 1: step 2 sees the input's step-1 spikes (100) and layer 1's step-1 spikes
        // (none: layer 1 received nothing in step 1).
        assert_eq!(late.membrane[0], vec![100, 100, 100, 0, 0, 0]);
    }

    #[test]
    fn graph_errors_name_the_group() {
        let input = Shape { c: 1, h: 4, w: 4 };
        let pool = |source, k| GroupSpec {
            kind: GroupKind::Pool {
                kernel: (k, k),
                weight: 1,
                stride: (k, k),
                padding: [0; 4],
            },
            source,
            channel_offset: 0,
        };
        let layer = |groups| LayerSpec {
            groups,
            ..LayerSpec::chain(
                "spiking",
                GroupKind::Dense {
                    weight: vec![],
                    shape: vec![],
                },
                None,
                5,
            )
        };
        let err = net(input, 9, &[layer(vec![pool(1, 1)])]).unwrap_err();
        assert!(err.message.contains("source"), "{}", err.message);
        let err = net(input, 9, &[layer(vec![pool(0, 1), pool(0, 2)])]).unwrap_err();
        assert!(err.message.contains("agree on H and W"), "{}", err.message);
        assert!(net(input, 9, &[layer(vec![])]).is_err());
        let err = net(input, 9, &[layer(vec![pool(0, 1)])]).map(|n| n.shapes());
        assert_eq!(err.unwrap()[1], Shape { c: 1, h: 4, w: 4 });
    }
}
