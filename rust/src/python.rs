//! The PyO3 glue: `snnfast._core`. Thin on purpose; the public API is `snnfast.Network`.
//!
//! Arguments arrive already converted by `snnfast.network` (NumPy arrays of the right dtype,
//! Python integers); every structural check (shapes, ranges, what fits) is the engine's, and
//! its errors become `snnfast.errors` exceptions here.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use numpy::{IntoPyArray, PyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::chip::{self, ChipCounter, Combine, CoreResources, TimeModel, TimePlan, N_COUNTERS};
use crate::engine::{self, Observer, RunOptions, RunOutput, Workspaces, MAX_TIMESTEPS};
use crate::error::{Error, ErrorKind};
use crate::geometry::Shape;
use crate::kernels::{self as kernel_sets, Choice};
use crate::network::{GroupKind, GroupSpec, LayerSpec, Network};

pyo3::import_exception!(snnfast.errors, ShapeError);
pyo3::import_exception!(snnfast.errors, ConfigError);
pyo3::import_exception!(snnfast.errors, SnnfastError);
pyo3::import_exception!(snnfast.errors, MemoryLimitError);

fn to_py(err: Error) -> PyErr {
    match err.kind {
        ErrorKind::Shape => ShapeError::new_err(err.message),
        ErrorKind::Config => ConfigError::new_err(err.message),
        ErrorKind::Memory { need, limit } => Python::attach(|py| {
            let make = || -> PyResult<PyErr> {
                let kwargs = PyDict::new(py);
                kwargs.set_item("need_bytes", need)?;
                kwargs.set_item("limit_bytes", limit)?;
                let exc = py
                    .get_type::<MemoryLimitError>()
                    .call((err.message.clone(),), Some(&kwargs))?;
                Ok(PyErr::from_value(exc))
            };
            make().unwrap_or_else(|e| e)
        }),
        ErrorKind::Interrupted => SnnfastError::new_err(err.message),
    }
}

/// An integer array as a flat vector and its shape.
fn flat<T: numpy::Element + Copy>(a: &PyReadonlyArrayDyn<'_, T>) -> (Vec<T>, Vec<usize>) {
    (a.as_array().iter().copied().collect(), a.shape().to_vec())
}

/// One synapse group as `snnfast.layers` hands it over (every key present; those its kind does
/// not use hold neutral values).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct GroupArgs<'py> {
    kind: String,
    source: i64,
    channel_offset: i64,
    weight: Option<PyReadonlyArrayDyn<'py, i16>>,
    pool_weight: i64,
    kernel: (i64, i64),
    stride: (i64, i64),
    padding: (i64, i64, i64, i64),
    groups: i64,
}

/// One layer as `snnfast.network` hands it over.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct LayerArgs<'py> {
    label: String,
    threshold: i64,
    leak: i64,
    du: i64,
    reset: String,
    bias: Option<PyReadonlyArrayDyn<'py, i32>>,
    groups: Vec<GroupArgs<'py>>,
}

impl GroupArgs<'_> {
    fn spec(&self) -> PyResult<GroupSpec> {
        let weight = || {
            self.weight.as_ref().map(flat).ok_or_else(|| {
                ConfigError::new_err(format!(
                    "a {} synapse group needs a weight array",
                    self.kind
                ))
            })
        };
        let (t, b, l, r) = self.padding;
        let kind = match self.kind.as_str() {
            "conv" => {
                let (weight, shape) = weight()?;
                GroupKind::Conv {
                    weight,
                    shape,
                    stride: self.stride,
                    padding: [t, b, l, r],
                    groups: self.groups,
                }
            }
            "pool" => GroupKind::Pool {
                kernel: self.kernel,
                weight: self.pool_weight,
                stride: self.stride,
                padding: [t, b, l, r],
            },
            "dense" => {
                let (weight, shape) = weight()?;
                GroupKind::Dense { weight, shape }
            }
            other => {
                return Err(ConfigError::new_err(format!(
                    "unknown synapse group kind {other:?}"
                )))
            }
        };
        Ok(GroupSpec {
            kind,
            source: self.source,
            channel_offset: self.channel_offset,
        })
    }
}

impl LayerArgs<'_> {
    fn spec(&self) -> PyResult<LayerSpec> {
        Ok(LayerSpec {
            label: self.label.clone(),
            groups: self
                .groups
                .iter()
                .map(GroupArgs::spec)
                .collect::<PyResult<_>>()?,
            bias: self.bias.as_ref().map(|b| flat(b).0),
            threshold: self.threshold,
            leak: self.leak,
            du: self.du,
            reset: self.reset.clone(),
        })
    }
}

/// A compiled network, ready to run. Built by `snnfast.Network`.
#[pyclass(module = "snnfast._core", frozen)]
struct Engine {
    net: Network,
    workspaces: Workspaces,
    /// Tells apart engines, so that a chip map is only used with the network it was made for.
    id: u64,
}

static ENGINE_IDS: AtomicU64 = AtomicU64::new(1);

type RunArrays<'py> = (
    Vec<Bound<'py, PyArray1<i32>>>,
    Vec<Bound<'py, PyArray1<i32>>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    &'static str,
);

impl Engine {
    /// Run with `observer` watching, the GIL released; the calling thread re-attaches about
    /// every 25 ms to let Python run its signal handlers (a KeyboardInterrupt, or any error
    /// they raise, stops the run).
    fn run_engine<O: Observer>(
        &self,
        py: Python<'_>,
        slice: &[u8],
        opts: &RunOptions,
        observer: &O,
    ) -> PyResult<RunOutput> {
        let (net, ws) = (&self.net, &self.workspaces);
        let mut pending: Option<PyErr> = None;
        let result = py.detach(|| {
            let mut poll = || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        pending = Some(e);
                        true
                    }
                })
            };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine::run_observed(net, slice, opts, ws, &mut poll, observer)
            }))
        });
        match result {
            Ok(Err(err)) if err.kind == ErrorKind::Interrupted => {
                Err(pending.unwrap_or_else(|| to_py(err)))
            }
            Ok(r) => r.map_err(to_py),
            Err(_) => Err(SnnfastError::new_err(
                "snnfast engine: internal error (a Rust panic); please report it",
            )),
        }
    }

    /// Layer `layer` (1-based), or an error.
    fn layer(&self, layer: usize) -> PyResult<&crate::network::Layer> {
        layer
            .checked_sub(1)
            .and_then(|i| self.net.layers.get(i))
            .ok_or_else(|| ConfigError::new_err(format!("no layer {layer} with synapses")))
    }
}

/// The images' bytes in C order: the array's own memory when it is contiguous, else a copy.
fn image_bytes<'a>(images: &'a PyReadonlyArrayDyn<'_, u8>) -> Cow<'a, [u8]> {
    match images.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(images.as_array().iter().copied().collect()),
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (layers, *, input_shape, input_threshold, memory_limit))]
    fn new(
        py: Python<'_>,
        layers: Vec<LayerArgs<'_>>,
        input_shape: (i64, i64, i64),
        input_threshold: i64,
        memory_limit: u64,
    ) -> PyResult<Self> {
        let specs = layers
            .iter()
            .map(LayerArgs::spec)
            .collect::<PyResult<Vec<_>>>()?;
        let input = Shape::checked(input_shape).map_err(to_py)?;
        let net = py
            .detach(|| Network::new(input, input_threshold, &specs, memory_limit))
            .map_err(to_py)?;
        Ok(Engine {
            net,
            workspaces: Workspaces::default(),
            id: ENGINE_IDS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Shapes of all layers, input first: (C, H, W), or (O,) for dense layers.
    fn shapes(&self) -> Vec<Vec<usize>> {
        let mut out = vec![vec![self.net.input.c, self.net.input.h, self.net.input.w]];
        for layer in &self.net.layers {
            let s = layer.shape;
            out.push(if layer.flat {
                vec![s.c]
            } else {
                vec![s.c, s.h, s.w]
            });
        }
        out
    }

    fn synapse_counts(&self) -> Vec<u64> {
        self.net.synapse_counts()
    }

    fn fan_out<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyArray1<u64>>> {
        if layer > self.net.layers.len() {
            return Err(ConfigError::new_err(format!("fan_out: no layer {layer}")));
        }
        Ok(self.net.fan_out(layer).into_pyarray(py))
    }

    /// The synapse groups of layer `layer` (1-based): kind, source, kernel, stride, padding,
    /// groups, channels and synapse count of each.
    fn groups<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let l = self.layer(layer)?;
        let counts = self.net.group_synapses(layer);
        l.groups
            .iter()
            .zip(counts)
            .map(|(g, n)| {
                let i = &g.info;
                let d = PyDict::new(py);
                d.set_item("kind", i.kind)?;
                d.set_item("source", i.source)?;
                d.set_item("kernel", i.kernel)?;
                d.set_item("stride", i.stride)?;
                d.set_item("padding", i.padding)?;
                d.set_item("groups", i.groups)?;
                d.set_item("channels", i.channels)?;
                d.set_item("synapses", n)?;
                Ok(d)
            })
            .collect()
    }

    /// Synapses from each neuron of the source of group `group` of `layer` into `layer`.
    fn group_fan_out<'py>(
        &self,
        py: Python<'py>,
        layer: usize,
        group: usize,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        if group >= self.layer(layer)?.groups.len() {
            return Err(ConfigError::new_err(format!(
                "group_fan_out: layer {layer} has no group {group}"
            )));
        }
        Ok(self.net.group_fan_out(layer, group).into_pyarray(py))
    }

    /// Run a uint8 batch; returns flat arrays per recorded layer (`[S, N, size]`), the flat
    /// synops `[S, N, L+1]`, the steps simulated `[S, N]` for `S` checkpoints (1 if none), and
    /// the name of the kernel set that ran. `split` forces how one image on two threads is
    /// split into pipelined stages (`None`: by the expected work; 0: never).
    #[allow(clippy::too_many_arguments)] // keyword-only arguments of one Python call
    #[pyo3(signature = (
        images, *, timesteps, delay, v_init, threads, record, early_exit, checkpoints,
        memory_limit, split=None
    ))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        images: PyReadonlyArrayDyn<'py, u8>,
        timesteps: usize,
        delay: usize,
        v_init: f64,
        threads: usize,
        record: Vec<usize>,
        early_exit: Option<usize>,
        checkpoints: Vec<usize>,
        memory_limit: u64,
        split: Option<usize>,
    ) -> PyResult<RunArrays<'py>> {
        let bytes = image_bytes(&images);
        let slice: &[u8] = &bytes;
        let opts = RunOptions {
            timesteps,
            delay,
            v_init,
            threads,
            record,
            early_exit,
            checkpoints,
            kernels: Choice::from_env().map_err(to_py)?,
            memory_limit,
            split,
        };
        let out = self.run_engine(py, slice, &opts, &engine::NoObserver)?;
        Ok(run_arrays(py, out))
    }

    /// A chip map of this network (`snnfast.chip`): the core of every neuron (per layer, input
    /// first, C, H, W order), compartments per neuron, reset synapses and weight bits per layer,
    /// the `(x, y)` tile of every core, and the synapse format `(word bits, header bits,
    /// synapses per entry, smallest index bits)`.
    #[allow(clippy::too_many_arguments)] // keyword-only arguments of one Python call
    #[pyo3(signature = (
        *, cores, compartments, reset_synapse, weight_bits, tiles, synapse_format, memory_limit
    ))]
    fn chip_map(
        &self,
        py: Python<'_>,
        cores: Vec<PyReadonlyArrayDyn<'_, u32>>,
        compartments: Vec<u32>,
        reset_synapse: Vec<bool>,
        weight_bits: Vec<u32>,
        tiles: Vec<(u32, u32)>,
        synapse_format: (u32, u32, u32, u32),
        memory_limit: u64,
    ) -> PyResult<ChipMap> {
        let n = cores.len();
        if compartments.len() != n || reset_synapse.len() != n || weight_bits.len() != n {
            return Err(ShapeError::new_err(format!(
                "chip map: {n} layers of cores but {} compartment counts, {} reset flags and \
                 {} weight widths",
                compartments.len(),
                reset_synapse.len(),
                weight_bits.len()
            )));
        }
        let layers = (0..n)
            .map(|l| chip::LayerPlacement {
                cores: flat(&cores[l]).0,
                compartments: compartments[l],
                reset_synapse: reset_synapse[l],
                weight_bits: weight_bits[l],
            })
            .collect();
        let (word_bits, header_bits, max_per_entry, min_index_bits) = synapse_format;
        let spec = chip::ChipSpec {
            layers,
            tiles,
            format: chip::SynapseFormat {
                word_bits,
                header_bits,
                max_per_entry,
                min_index_bits,
            },
        };
        let net = &self.net;
        let map = py
            .detach(|| chip::ChipMap::new(net, spec, memory_limit))
            .map_err(to_py)?;
        Ok(ChipMap {
            engine: self.id,
            map,
            plan: Mutex::new(None),
        })
    }

    /// `run`, counted on `chip` per core and per step: also returns the counts
    /// `[S, N, cores, counters]`, the busiest core's time summed over the steps `[S, N]` (ns),
    /// and with `trace` every step's counts `[N, T, cores, counters]` (else `None`).
    #[allow(clippy::too_many_arguments)] // keyword-only arguments of one Python call
    #[pyo3(signature = (
        images, *, timesteps, delay, v_init, threads, record, early_exit, checkpoints,
        memory_limit, chip, neuron_ns, message_ns, overlap, trace
    ))]
    fn run_chip<'py>(
        &self,
        py: Python<'py>,
        images: PyReadonlyArrayDyn<'py, u8>,
        timesteps: usize,
        delay: usize,
        v_init: f64,
        threads: usize,
        record: Vec<usize>,
        early_exit: Option<usize>,
        checkpoints: Vec<usize>,
        memory_limit: u64,
        chip: &ChipMap,
        neuron_ns: Vec<f64>,
        message_ns: Vec<f64>,
        overlap: bool,
        trace: bool,
    ) -> PyResult<ChipRunArrays<'py>> {
        if chip.engine != self.id {
            return Err(ConfigError::new_err(
                "run_chip: the chip map was made for another network",
            ));
        }
        let weights = |v: Vec<f64>, side: &str| -> PyResult<[f64; N_COUNTERS]> {
            v.try_into().map_err(|v: Vec<f64>| {
                ConfigError::new_err(format!(
                    "run_chip: {side} times must list {N_COUNTERS} values, got {}",
                    v.len()
                ))
            })
        };
        let time = TimeModel {
            neuron: weights(neuron_ns, "neuron-side")?,
            message: weights(message_ns, "message-side")?,
            combine: if overlap { Combine::Max } else { Combine::Sum },
        };
        let bytes = image_bytes(&images);
        let slice: &[u8] = &bytes;
        let n_img = slice.len() / self.net.input.size().max(1);
        let opts = RunOptions {
            timesteps,
            delay,
            v_init,
            threads,
            record,
            early_exit,
            checkpoints,
            kernels: Choice::from_env().map_err(to_py)?,
            memory_limit,
            split: None,
        };
        let n_checkpoints = opts.checkpoints.len().max(1);
        let plan = chip.plan(time, memory_limit)?;
        let counter = ChipCounter::new(
            &chip.map,
            &plan,
            n_img,
            timesteps,
            n_checkpoints,
            trace,
            memory_limit,
        )
        .map_err(to_py)?;
        let out = self.run_engine(py, slice, &opts, &counter)?;
        let counts = counter.into_counts();
        Ok((
            run_arrays(py, out),
            counts.counts.into_pyarray(py),
            counts.busy_ns.into_pyarray(py),
            counts.trace.map(|t| t.into_pyarray(py)),
        ))
    }

    /// The scatter-add floor (`snnfast::floor`): one simulation of `images` traces the
    /// convolution and dense runs, then only their additions are timed on one core for at
    /// least `min_seconds`. Returns `(events, seconds, kernels)`.
    #[pyo3(signature = (images, *, timesteps, delay=0, v_init=0.0, min_seconds=0.2))]
    fn scatter_floor(
        &self,
        py: Python<'_>,
        images: PyReadonlyArrayDyn<'_, u8>,
        timesteps: usize,
        delay: usize,
        v_init: f64,
        min_seconds: f64,
    ) -> PyResult<(u64, f64, &'static str)> {
        let data = image_bytes(&images);
        let opts = RunOptions {
            delay,
            v_init,
            kernels: Choice::from_env().map_err(to_py)?,
            ..RunOptions::new(timesteps)
        };
        let net = &self.net;
        if !(1..=MAX_TIMESTEPS).contains(&timesteps) || delay > 1 || !(0.0..1.0).contains(&v_init) {
            return Err(ConfigError::new_err(format!(
                "scatter_floor: timesteps must be in [1, {MAX_TIMESTEPS}], delay 0 or 1 and \
                 v_init in [0, 1), got {timesteps}, {delay}, {v_init}"
            )));
        }
        let floor = py
            .detach(|| crate::floor::scatter_floor(net, &data, &opts, min_seconds))
            .map_err(to_py)?;
        Ok((floor.events, floor.seconds, floor.kernels))
    }
}

type ChipRunArrays<'py> = (
    RunArrays<'py>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray1<u64>>>,
);

/// The arrays of a run, for Python.
fn run_arrays(py: Python<'_>, out: RunOutput) -> RunArrays<'_> {
    let counts = out
        .spike_counts
        .into_iter()
        .map(|v| v.into_pyarray(py))
        .collect();
    let mem = out
        .membrane
        .into_iter()
        .map(|v| v.into_pyarray(py))
        .collect();
    let synops = out.synops.into_pyarray(py);
    let steps = out.steps.into_pyarray(py);
    (counts, mem, synops, steps, out.kernels)
}

/// A network placed on chip cores, made by `Engine.chip_map` (`snnfast.chip.Mapping`).
#[pyclass(module = "snnfast._core", frozen)]
struct ChipMap {
    engine: u64,
    map: chip::ChipMap,
    /// The time plan of the last time model a run used (made once, reused by later runs).
    plan: Mutex<Option<Arc<TimePlan>>>,
}

impl ChipMap {
    /// The time plan of `time` on this map: the cached one if it is for `time`.
    fn plan(&self, time: TimeModel, memory_limit: u64) -> PyResult<Arc<TimePlan>> {
        let mut cache = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = cache.as_ref().filter(|p| *p.time() == time) {
            return Ok(plan.clone());
        }
        let plan = Arc::new(TimePlan::new(&self.map, time, memory_limit).map_err(to_py)?);
        *cache = Some(plan.clone());
        Ok(plan)
    }
}

#[pymethods]
impl ChipMap {
    /// Number of cores.
    fn n_cores(&self) -> usize {
        self.map.n_cores()
    }

    /// Per-core resources as the chip stores them: a dict of uint64 arrays over the cores.
    fn resources<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = CoreResources::of(&self.map);
        let d = PyDict::new(py);
        for (name, v) in [
            ("neurons", r.neurons),
            ("compartments", r.compartments),
            ("input_axons", r.input_axons),
            ("output_axons", r.output_axons),
            ("synapses", r.synapses),
            ("synapse_bits", r.synapse_bits),
            ("index_bits", r.index_bits),
            ("weight_bits", r.weight_bits),
        ] {
            d.set_item(name, v.into_pyarray(py))?;
        }
        Ok(d)
    }
}

/// The kernel set a run started now would use: `$SNNFAST_KERNELS`, else the best available.
#[pyfunction]
fn kernels() -> PyResult<&'static str> {
    Ok(Choice::from_env().map_err(to_py)?.name())
}

/// The kernel sets this processor can run, best last.
#[pyfunction]
fn available_kernels() -> Vec<&'static str> {
    kernel_sets::available()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<ChipMap>()?;
    m.add("CHIP_COUNTERS", chip::COUNTERS.to_vec())?;
    m.add_function(wrap_pyfunction!(kernels, m)?)?;
    m.add_function(wrap_pyfunction!(available_kernels, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("KERNELS_ENV", kernel_sets::ENV)?;
    m.add("MAX_TIMESTEPS", MAX_TIMESTEPS)?;
    Ok(())
}
