//! Layers, their geometry, and validation.
//!
//! A [`Network`] is compiled from [`LayerSpec`]s into scatter tables: for every presynaptic
//! neuron the engine can find, without search, the output neurons its synapses reach. Neurons
//! are stored position-major with the channel innermost (H, W, C), so that the synapses of one
//! spike land on contiguous runs of output channels.

use crate::error::{Error, Result};
use crate::neuron::{LEAK_MAX, V_MAX};

/// Shape of a layer's neurons: channels × height × width (a dense layer is `O × 1 × 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub fn size(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The input shape `(C, H, W)` as given, checked: each entry at least 1.
    pub fn checked((c, h, w): (i64, i64, i64)) -> Result<Shape> {
        if c < 1 || h < 1 || w < 1 {
            return Err(Error::shape(format!(
                "input_shape must be (C, H, W) with positive sizes, got ({c}, {h}, {w})"
            )));
        }
        let dim = |v: i64| usize::try_from(v).map_err(|_| Error::shape("input_shape too large"));
        Ok(Shape {
            c: dim(c)?,
            h: dim(h)?,
            w: dim(w)?,
        })
    }
}

/// `value` if it is in `lo..=hi`, else a `Config` error in the one wording of snnfast
/// (`"layer 2 (conv2d): stride must be an integer in [1, 65536], got 0"`).
pub fn int_in(value: i64, name: &str, lo: i64, hi: i64, place: &str) -> Result<i64> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(Error::config(format!(
            "{place}: {name} must be an integer in [{lo}, {hi}], got {value}"
        )))
    }
}

/// What kind of layer, with its weights in PyTorch order, as the user gives it (unchecked:
/// [`Network::new`] validates everything).
#[derive(Debug, Clone)]
pub enum LayerKind {
    /// `weight` has `shape` `[out_ch, in_ch, kernel, kernel]`, row-major.
    Conv2d {
        weight: Vec<i16>,
        shape: Vec<usize>,
        stride: i64,
        padding: i64,
    },
    /// `kernel × kernel` windows with stride `kernel`, channel-wise, one shared weight.
    AvgPool2d { kernel: i64, weight: i64 },
    /// `weight` has `shape` `[out, in]`, row-major; its input is the previous layer
    /// flattened C, H, W.
    Dense { weight: Vec<i16>, shape: Vec<usize> },
}

/// One hidden (or output) layer as the user describes it.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub kind: LayerKind,
    /// One bias per output channel (empty for pooling: zero bias).
    pub bias: Vec<i32>,
    /// Threshold, at least 1.
    pub threshold: i64,
    /// Leak `dv` in `0..=4096`.
    pub leak: i64,
}

impl LayerSpec {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            LayerKind::Conv2d { .. } => "conv2d",
            LayerKind::AvgPool2d { .. } => "avgpool2d",
            LayerKind::Dense { .. } => "dense",
        }
    }
}

/// For one input coordinate (a row or a column), the `(kernel offset, output coordinate)` pairs
/// its synapses reach, stored flat with offsets.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    start: Vec<u32>,
    pairs: Vec<(u32, u32)>,
}

impl Reach {
    /// Input coordinate `i` reaches output `o` through kernel offset `k` when
    /// `o·stride + k − padding = i`, `0 ≤ k < kernel`, `0 ≤ o < out`.
    fn new(input: usize, out: usize, kernel: usize, stride: usize, padding: usize) -> Reach {
        let mut start = Vec::with_capacity(input + 1);
        let mut pairs = Vec::new();
        for i in 0..input {
            start.push(pairs.len() as u32);
            for k in 0..kernel {
                let num = i as i64 + padding as i64 - k as i64;
                if num >= 0 && num % stride as i64 == 0 && ((num / stride as i64) as usize) < out {
                    pairs.push((k as u32, (num / stride as i64) as u32));
                }
            }
        }
        start.push(pairs.len() as u32);
        Reach { start, pairs }
    }

    #[inline(always)]
    pub(crate) fn of(&self, i: usize) -> &[(u32, u32)] {
        &self.pairs[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// The synapses into a layer, arranged for scattering.
#[derive(Debug, Clone)]
pub(crate) enum Synapses {
    /// `weight[((c_in · k + ky) · k + (k − 1 − kx)) · out_ch + o]`: the kernel
    /// is flipped along x so that, with stride 1, the synapses of one spike onto one output row
    /// are a single contiguous run of weights landing on a contiguous run of outputs.
    Conv {
        weight: Vec<i16>,
        kernel: usize,
        out_ch: usize,
        rows: Reach,
        cols: Reach,
        /// Stride 1 only: per input column, `(first output column, first flipped kx, count)`.
        spans: Option<Vec<(u32, u32, u32)>>,
        /// Per presynaptic neuron (H, W, C index): its `[y, x, c]`, so that a spike costs a
        /// load instead of three divisions.
        coords: Vec<[u16; 3]>,
    },
    Pool {
        weight: i16,
        /// Per presynaptic neuron: the output neuron its one synapse reaches, or `NO_TARGET`
        /// (rows and columns that fit no window).
        target: Vec<u32>,
    },
    /// `weight[i_hwc · out + o]`: row `i` holds the synapses of presynaptic neuron `i` (H, W, C index).
    Dense { weight: Vec<i16>, out: usize },
}

/// Marks a presynaptic neuron without a synapse into a pooling layer.
pub(crate) const NO_TARGET: u32 = u32::MAX;

/// `[y, x, c]` of every neuron of a layer shaped `s`, in its H, W, C order.
fn coords_of(s: Shape) -> Vec<[u16; 3]> {
    let mut out = Vec::with_capacity(s.size());
    for y in 0..s.h {
        for x in 0..s.w {
            for c in 0..s.c {
                out.push([y as u16, x as u16, c as u16]);
            }
        }
    }
    out
}

/// A compiled layer: its neurons and the synapses that feed them.
#[derive(Debug, Clone)]
pub struct Layer {
    pub shape: Shape,
    pub(crate) synapses: Synapses,
    /// One per channel (all zero for pooling).
    pub(crate) bias: Vec<i32>,
    pub threshold: i32,
    pub leak: i32,
    /// The synaptic input of one step always fits i16 (sum of |weights| into any neuron
    /// ≤ 32767): the engine accumulates it in i16, twice as many lanes per vector.
    pub(crate) narrow: bool,
}

/// A validated, compiled network. Layer 0 is the input layer (uint8 pixels as bias).
#[derive(Debug, Clone)]
pub struct Network {
    pub input: Shape,
    pub input_threshold: i32,
    pub layers: Vec<Layer>,
}

impl Network {
    /// Validate `specs` against `input` and compile them.
    pub fn new(input: Shape, input_threshold: i64, specs: &[LayerSpec]) -> Result<Network> {
        if input.size() == 0 {
            return Err(Error::shape(format!(
                "input_shape must be (C, H, W) with positive sizes, got ({}, {}, {})",
                input.c, input.h, input.w
            )));
        }
        let input_threshold = threshold(input_threshold, "input layer")?;
        if specs.is_empty() {
            return Err(Error::shape(
                "a network needs at least one layer after the input",
            ));
        }
        let mut layers = Vec::with_capacity(specs.len());
        let mut prev = input;
        for (i, spec) in specs.iter().enumerate() {
            let layer = compile(
                prev,
                spec,
                &format!("layer {} ({})", i + 1, spec.kind_name()),
            )?;
            prev = layer.shape;
            layers.push(layer);
        }
        Ok(Network {
            input,
            input_threshold,
            layers,
        })
    }

    /// Shapes of all layers, input first.
    pub fn shapes(&self) -> Vec<Shape> {
        std::iter::once(self.input)
            .chain(self.layers.iter().map(|l| l.shape))
            .collect()
    }

    /// Synapses leaving each neuron of layer `l` (0 = input) into layer `l + 1`, in C, H, W order.
    pub fn fan_out(&self, l: usize) -> Vec<u64> {
        let src = self.shapes()[l];
        let next = &self.layers[l];
        let mut out = vec![0u64; src.size()];
        for c in 0..src.c {
            for y in 0..src.h {
                for x in 0..src.w {
                    let hwc = (y * src.w + x) * src.c + c;
                    out[(c * src.h + y) * src.w + x] = next.synapses_of(src, hwc) as u64;
                }
            }
        }
        out
    }

    /// Number of synapses into each layer, input first (0).
    pub fn synapse_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64];
        for l in 0..self.layers.len() {
            counts.push(self.fan_out(l).iter().sum());
        }
        counts
    }
}

impl Layer {
    /// Whether this is a dense layer (its neurons have no spatial shape).
    pub fn is_dense(&self) -> bool {
        matches!(self.synapses, Synapses::Dense { .. })
    }

    /// Number of synapses that presynaptic neuron `hwc` (in layer shape `src`) has into this layer.
    #[inline(always)]
    pub(crate) fn synapses_of(&self, src: Shape, hwc: usize) -> usize {
        match &self.synapses {
            Synapses::Conv {
                rows, cols, out_ch, ..
            } => {
                let x = (hwc / src.c) % src.w;
                let y = hwc / (src.c * src.w);
                rows.of(y).len() * cols.of(x).len() * out_ch
            }
            Synapses::Pool { target, .. } => (target[hwc] != NO_TARGET) as usize,
            Synapses::Dense { out, .. } => *out,
        }
    }
}

/// A layer's threshold, checked: `1..=i32::MAX`.
fn threshold(value: i64, place: &str) -> Result<i32> {
    Ok(int_in(value, "threshold", 1, i32::MAX as i64, place)? as i32)
}

/// The threshold and leak of a layer, checked, and its bias length.
fn check_common(spec: &LayerSpec, channels: usize, name: &str) -> Result<(i32, i32)> {
    let th = threshold(spec.threshold, name)?;
    let leak = int_in(spec.leak, "leak", 0, LEAK_MAX as i64, name)? as i32;
    if spec.bias.len() != channels {
        return Err(Error::shape(format!(
            "{name}: bias has {} entries, the layer has {channels} output channels",
            spec.bias.len()
        )));
    }
    Ok((th, leak))
}

/// `shape` of a weight array with `dims` dimensions, checked.
fn weight_dims<'a>(
    shape: &'a [usize],
    dims: usize,
    names: &str,
    name: &str,
) -> Result<&'a [usize]> {
    if shape.len() != dims {
        return Err(Error::shape(format!(
            "{name}: weight must have {dims} dimensions {names}, got shape {shape:?}"
        )));
    }
    Ok(shape)
}

/// The largest input current a neuron can receive must keep `v + z` inside i32. Returns
/// whether the synaptic part alone fits i16 (the layer can accumulate narrow).
fn check_current(max_abs_input: i64, bias: &[i32], name: &str) -> Result<bool> {
    let max_bias = bias.iter().map(|b| (*b as i64).abs()).max().unwrap_or(0);
    let worst = max_abs_input + max_bias + V_MAX as i64 + 1;
    if worst > i32::MAX as i64 {
        return Err(Error::config(format!(
            "{name}: the largest input current a neuron can receive (sum of |weights| {max_abs_input} \
             + |bias| {max_bias}) does not fit the engine's 32-bit accumulator with a 24-bit \
             potential; scale weights or bias down"
        )));
    }
    Ok(max_abs_input <= i16::MAX as i64)
}

fn compile(prev: Shape, spec: &LayerSpec, name: &str) -> Result<Layer> {
    match &spec.kind {
        LayerKind::Conv2d {
            weight,
            shape,
            stride,
            padding,
        } => {
            let dims = weight_dims(shape, 4, "[O, I, K, K]", name)?;
            let (o, ci, k) = (dims[0], dims[1], dims[2]);
            if dims[2] != dims[3] {
                return Err(Error::shape(format!(
                    "{name}: weight must have square kernels [O, I, K, K], got shape {dims:?}"
                )));
            }
            let s = int_in(*stride, "stride", 1, 1 << 16, name)? as usize;
            let p = int_in(*padding, "padding", 0, 1 << 16, name)? as usize;
            if o == 0 || k == 0 {
                return Err(Error::shape(format!(
                    "{name}: weight must have at least one output channel and a kernel of at \
                     least 1, got shape {dims:?}"
                )));
            }
            if ci != prev.c {
                return Err(Error::shape(format!(
                    "{name}: weight expects {ci} input channels, the previous layer has {} \
                     (shape {}x{}x{})",
                    prev.c, prev.c, prev.h, prev.w
                )));
            }
            if prev.h + 2 * p < k || prev.w + 2 * p < k {
                return Err(Error::shape(format!(
                    "{name}: kernel {k} is larger than the padded input {}x{} (padding {p})",
                    prev.h + 2 * p,
                    prev.w + 2 * p
                )));
            }
            let (threshold, leak) = check_common(spec, o, name)?;
            let shape = Shape {
                c: o,
                h: (prev.h + 2 * p - k) / s + 1,
                w: (prev.w + 2 * p - k) / s + 1,
            };
            let mut wt = vec![0i16; o * ci * k * k];
            let mut max_abs = 0i64;
            for oc in 0..o {
                let mut sum = 0i64;
                for c in 0..ci {
                    for ky in 0..k {
                        for kx in 0..k {
                            let w = weight[((oc * ci + c) * k + ky) * k + kx];
                            sum += (w as i64).abs();
                            wt[((c * k + ky) * k + (k - 1 - kx)) * o + oc] = w;
                        }
                    }
                }
                max_abs = max_abs.max(sum);
            }
            let narrow = check_current(max_abs, &spec.bias, name)?;
            let cols = Reach::new(prev.w, shape.w, k, s, p);
            // With stride 1, input column x reaches output columns x + p − kx: consecutive
            // outputs for consecutive flipped kx.
            let spans = (s == 1).then(|| {
                (0..prev.w)
                    .map(|x| match cols.of(x).iter().map(|&(_, ox)| ox).min() {
                        Some(lo) => {
                            let kxf = (k - 1 + lo as usize - (x + p)) as u32;
                            (lo, kxf, cols.of(x).len() as u32)
                        }
                        None => (0, 0, 0),
                    })
                    .collect()
            });
            Ok(Layer {
                shape,
                synapses: Synapses::Conv {
                    weight: wt,
                    kernel: k,
                    out_ch: o,
                    rows: Reach::new(prev.h, shape.h, k, s, p),
                    cols,
                    spans,
                    coords: coords_of(prev),
                },
                bias: spec.bias.clone(),
                threshold,
                leak,
                narrow,
            })
        }
        LayerKind::AvgPool2d { kernel, weight } => {
            let k = int_in(*kernel, "kernel", 1, 1 << 16, name)? as usize;
            let weight = int_in(*weight, "weight", i16::MIN as i64, i16::MAX as i64, name)? as i16;
            if k > prev.h || k > prev.w {
                return Err(Error::shape(format!(
                    "{name}: kernel {k} does not fit the input {}x{}",
                    prev.h, prev.w
                )));
            }
            let bias = if spec.bias.is_empty() {
                vec![0; prev.c]
            } else {
                spec.bias.clone()
            };
            let spec = LayerSpec {
                bias,
                ..spec.clone()
            };
            let (threshold, leak) = check_common(&spec, prev.c, name)?;
            let narrow = check_current((k * k) as i64 * (weight as i64).abs(), &spec.bias, name)?;
            Ok(Layer {
                shape: Shape {
                    c: prev.c,
                    h: prev.h / k,
                    w: prev.w / k,
                },
                synapses: Synapses::Pool {
                    weight,
                    target: coords_of(prev)
                        .iter()
                        .map(|&[y, x, c]| {
                            let (oy, ox) = (y as usize / k, x as usize / k);
                            if oy < prev.h / k && ox < prev.w / k {
                                ((oy * (prev.w / k) + ox) * prev.c + c as usize) as u32
                            } else {
                                NO_TARGET
                            }
                        })
                        .collect(),
                },
                bias: spec.bias,
                threshold,
                leak,
                narrow,
            })
        }
        LayerKind::Dense { weight, shape } => {
            let dims = weight_dims(shape, 2, "[O, I]", name)?;
            let (o, n) = (dims[0], dims[1]);
            if o == 0 {
                return Err(Error::shape(format!(
                    "{name}: weight must have at least one output, got shape {dims:?}"
                )));
            }
            if n != prev.size() {
                return Err(Error::shape(format!(
                    "{name}: weight expects {n} inputs, the previous layer has {} neurons \
                     (shape {}x{}x{})",
                    prev.size(),
                    prev.c,
                    prev.h,
                    prev.w
                )));
            }
            let (threshold, leak) = check_common(spec, o, name)?;
            // Rows of `wt` are presynaptic neurons in H, W, C order; PyTorch flattens C, H, W.
            let mut wt = vec![0i16; o * n];
            for c in 0..prev.c {
                for y in 0..prev.h {
                    for x in 0..prev.w {
                        let chw = (c * prev.h + y) * prev.w + x;
                        let hwc = (y * prev.w + x) * prev.c + c;
                        for oc in 0..o {
                            wt[hwc * o + oc] = weight[oc * n + chw];
                        }
                    }
                }
            }
            let max_abs = (0..o)
                .map(|oc| {
                    weight[oc * n..(oc + 1) * n]
                        .iter()
                        .map(|w| (*w as i64).abs())
                        .sum::<i64>()
                })
                .max()
                .unwrap_or(0);
            let narrow = check_current(max_abs, &spec.bias, name)?;
            Ok(Layer {
                shape: Shape { c: o, h: 1, w: 1 },
                synapses: Synapses::Dense { weight: wt, out: o },
                bias: spec.bias.clone(),
                threshold,
                leak,
                narrow,
            })
        }
    }
}
