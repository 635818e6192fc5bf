//! The PyO3 glue: `snnfast._core`. Thin on purpose; the public API is `snnfast.Network`.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::engine::{self, RunOptions, Workspaces};
use crate::error::{Error, ErrorKind};
use crate::network::{LayerKind, LayerSpec, Network, Shape};

pyo3::import_exception!(snnfast.errors, ShapeError);
pyo3::import_exception!(snnfast.errors, ConfigError);
pyo3::import_exception!(snnfast.errors, SnnfastError);

fn to_py(err: Error) -> PyErr {
    match err.kind {
        ErrorKind::Shape => ShapeError::new_err(err.message),
        ErrorKind::Config => ConfigError::new_err(err.message),
    }
}

fn item<'py>(spec: &Bound<'py, PyDict>, key: &str, name: &str) -> PyResult<Bound<'py, PyAny>> {
    spec.get_item(key)?
        .ok_or_else(|| ConfigError::new_err(format!("{name}: missing '{key}'")))
}

fn int_param(spec: &Bound<'_, PyDict>, key: &str, name: &str) -> PyResult<i64> {
    item(spec, key, name)?
        .extract::<i64>()
        .map_err(|_| ConfigError::new_err(format!("{name}: '{key}' must be an integer")))
}

fn small(v: i64, key: &str, name: &str) -> PyResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v <= 1 << 20)
        .ok_or_else(|| ConfigError::new_err(format!("{name}: {key} must be in [0, 2^20], got {v}")))
}

fn array<'py, T: numpy::Element + Copy>(
    spec: &Bound<'py, PyDict>,
    key: &str,
    name: &str,
    dtype: &str,
) -> PyResult<(Vec<T>, Vec<usize>)> {
    let obj = item(spec, key, name)?;
    let arr: PyReadonlyArrayDyn<'py, T> = obj
        .extract()
        .map_err(|_| ShapeError::new_err(format!("{name}: {key} must be a {dtype} NumPy array")))?;
    let shape = arr.shape().to_vec();
    Ok((arr.as_array().iter().copied().collect(), shape))
}

fn layer_spec(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<LayerSpec> {
    let spec = obj
        .cast::<PyDict>()
        .map_err(|_| ConfigError::new_err(format!("layer {index}: spec must be a dict")))?;
    let kind: String = item(spec, "kind", &format!("layer {index}"))?.extract()?;
    let name = format!("layer {index} ({kind})");
    let threshold = int_param(spec, "threshold", &name)?;
    let leak = int_param(spec, "leak", &name)?;
    let threshold = i32::try_from(threshold)
        .map_err(|_| ConfigError::new_err(format!("{name}: threshold must fit int32")))?;
    let leak = i32::try_from(leak)
        .map_err(|_| ConfigError::new_err(format!("{name}: leak must be in 0..=4096")))?;
    let (kind, bias) = match kind.as_str() {
        "conv2d" => {
            let (weight, shape) = array::<i16>(spec, "weight", &name, "int16")?;
            let (bias, _) = array::<i32>(spec, "bias", &name, "int32")?;
            if shape.len() != 4 || shape[2] != shape[3] {
                return Err(ShapeError::new_err(format!(
                    "{name}: weight must be [O, I, K, K], got shape {shape:?}"
                )));
            }
            let stride = small(int_param(spec, "stride", &name)?, "stride", &name)?;
            let padding = small(int_param(spec, "padding", &name)?, "padding", &name)?;
            let kind = LayerKind::Conv2d {
                weight,
                out_ch: shape[0],
                in_ch: shape[1],
                kernel: shape[2],
                stride,
                padding,
            };
            (kind, bias)
        }
        "avgpool2d" => {
            let kernel = small(int_param(spec, "kernel", &name)?, "kernel", &name)?;
            let weight = i16::try_from(int_param(spec, "weight", &name)?)
                .map_err(|_| ConfigError::new_err(format!("{name}: weight must fit int16")))?;
            (LayerKind::AvgPool2d { kernel, weight }, Vec::new())
        }
        "dense" => {
            let (weight, shape) = array::<i16>(spec, "weight", &name, "int16")?;
            let (bias, _) = array::<i32>(spec, "bias", &name, "int32")?;
            if shape.len() != 2 {
                return Err(ShapeError::new_err(format!(
                    "{name}: weight must be [O, I], got shape {shape:?}"
                )));
            }
            let kind = LayerKind::Dense {
                weight,
                out: shape[0],
                inp: shape[1],
            };
            (kind, bias)
        }
        other => {
            return Err(ConfigError::new_err(format!(
                "layer {index}: unknown layer kind '{other}'"
            )))
        }
    };
    Ok(LayerSpec {
        kind,
        bias,
        threshold,
        leak,
    })
}

/// A compiled network, ready to run. Built by `snnfast.Network`.
#[pyclass(module = "snnfast._core", frozen)]
struct Engine {
    net: Network,
    workspaces: Workspaces,
}

type RunArrays<'py> = (
    Vec<Bound<'py, PyArray1<i32>>>,
    Vec<Bound<'py, PyArray1<i32>>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
);

#[pymethods]
impl Engine {
    #[new]
    fn new(
        layers: &Bound<'_, PyList>,
        input_shape: Vec<usize>,
        input_threshold: i64,
    ) -> PyResult<Self> {
        if input_shape.len() != 3 {
            return Err(ShapeError::new_err(format!(
                "input_shape must be (C, H, W), got {input_shape:?}"
            )));
        }
        let specs = layers
            .iter()
            .enumerate()
            .map(|(i, obj)| layer_spec(&obj, i + 1))
            .collect::<PyResult<Vec<_>>>()?;
        let input = Shape {
            c: input_shape[0],
            h: input_shape[1],
            w: input_shape[2],
        };
        let threshold = i32::try_from(input_threshold)
            .map_err(|_| ConfigError::new_err("input layer: threshold must fit int32"))?;
        let net = Network::new(input, threshold, &specs).map_err(to_py)?;
        Ok(Engine {
            net,
            workspaces: Workspaces::default(),
        })
    }

    /// Shapes of all layers, input first: (C, H, W), or (O,) for dense layers.
    fn shapes(&self) -> Vec<Vec<usize>> {
        let mut out = vec![vec![self.net.input.c, self.net.input.h, self.net.input.w]];
        for layer in &self.net.layers {
            let s = layer.shape;
            out.push(if layer.is_dense() {
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
        if layer >= self.net.layers.len() {
            return Err(ConfigError::new_err(format!("fan_out: no layer {layer}")));
        }
        Ok(self.net.fan_out(layer).into_pyarray(py))
    }

    #[allow(clippy::too_many_arguments)] // mirrors the Python signature
    /// Run a uint8 batch; returns flat arrays per recorded layer (`[S, N, size]`), the flat
    /// synops `[S, N, L+1]` and the steps simulated `[S, N]`, for `S` checkpoints (1 if none).
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
    ) -> PyResult<RunArrays<'py>> {
        let data: Vec<u8>;
        let slice = match images.as_slice() {
            Ok(s) => s,
            Err(_) => {
                data = images.as_array().iter().copied().collect();
                &data
            }
        };
        let opts = RunOptions {
            timesteps,
            delay,
            v_init,
            threads,
            record,
            early_exit,
            checkpoints,
        };
        let (net, ws) = (&self.net, &self.workspaces);
        let result = py.detach(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine::run_with(net, slice, &opts, ws)
            }))
        });
        let out = match result {
            Ok(r) => r.map_err(to_py)?,
            Err(_) => {
                return Err(SnnfastError::new_err(
                    "snnfast engine: internal error (a Rust panic); please report it",
                ))
            }
        };
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
        Ok((counts, mem, synops, steps))
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
