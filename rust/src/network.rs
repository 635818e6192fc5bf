//! Layers as the user describes them, their validation, and the compiled network.
//!
//! A layer's neurons are fed by one or more *synapse groups*, each from one earlier layer (its
//! source): a residual addition is two groups into the same channels, a concatenation is groups
//! writing disjoint channel ranges. A [`Network`] is compiled from [`LayerSpec`]s into scatter
//! tables: for every presynaptic neuron the engine finds, without search, the output neurons its
//! synapses reach. Every structural check of snnfast's layers is written here, once.

use crate::aligned::Aligned;
use crate::error::{Bytes, Error, Result};
use crate::geometry::{Axis, Coords, Reach, Shape, MAX_NEURONS};
use crate::neuron::{Reset, LEAK_MAX, V_MAX};

/// Largest stride, padding or pooling kernel accepted.
const MAX_PARAM: i64 = i32::MAX as i64;

/// What a synapse group is, with its weights in PyTorch order, as the user gives it (unchecked:
/// [`Network::new`] validates everything).
#[derive(Debug, Clone)]
pub enum GroupKind {
    /// `weight` has `shape` `[O, I / groups, KH, KW]`, row-major; `stride` is `(sh, sw)` and
    /// `padding` `(top, bottom, left, right)`, zero padding without synapses.
    Conv {
        weight: Vec<i16>,
        shape: Vec<usize>,
        stride: (i64, i64),
        padding: [i64; 4],
        groups: i64,
    },
    /// Channel-wise windows `kernel = (kh, kw)`, every synapse of weight `weight`.
    Pool {
        kernel: (i64, i64),
        weight: i64,
        stride: (i64, i64),
        padding: [i64; 4],
    },
    /// `weight` has `shape` `[O, I]`, row-major; its input is the source flattened C, H, W.
    Dense { weight: Vec<i16>, shape: Vec<usize> },
}

/// One synapse group: its kind, its source layer (an index below the layer's own; 0 is the
/// input) and the first channel of the layer it writes.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub kind: GroupKind,
    pub source: i64,
    pub channel_offset: i64,
}

/// One hidden (or output) layer as the user describes it.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// What to call the layer in messages (`"conv2d"`, `"spiking"`, a user's name).
    pub label: String,
    pub groups: Vec<GroupSpec>,
    /// One bias per channel, or one per neuron (C, H, W order); `None` is all zeros.
    pub bias: Option<Vec<i32>>,
    /// Threshold, at least 1.
    pub threshold: i64,
    /// Leak `dv` in `0..=4096`.
    pub leak: i64,
    /// Current decay `du` in `0..=4096`; 4096 (no current memory) is the plain neuron.
    pub du: i64,
    /// `"subtract"` (the default) or `"zero"`.
    pub reset: String,
}

impl LayerSpec {
    /// A layer of one group from the layer before it (`index − 1`).
    pub fn chain(label: &str, kind: GroupKind, bias: Option<Vec<i32>>, threshold: i64) -> Self {
        LayerSpec {
            label: label.to_string(),
            groups: vec![GroupSpec {
                kind,
                source: -1,
                channel_offset: 0,
            }],
            bias,
            threshold,
            leak: 0,
            du: LEAK_MAX as i64,
            reset: "subtract".to_string(),
        }
    }
}

/// The synapses of one group, arranged for scattering.
#[derive(Debug, Clone)]
pub(crate) enum Synapses {
    /// `weight[((c · kh + ky) · kw + (kw − 1 − kx)) · opg + o]` for input channel `c` (its group
    /// is `c / ipg`) and the group's output `o`: the kernel is flipped along x so that, with
    /// x-stride 1, the synapses of one spike onto one output row are one contiguous run.
    Conv {
        weight: Aligned<i16>,
        kh: usize,
        kw: usize,
        /// Input and output channels per convolution group.
        ipg: usize,
        opg: usize,
        rows: Reach,
        cols: Reach,
        /// Only for x-stride 1 with one convolution group writing every channel of the layer:
        /// per input column, `(first output column, first flipped kx, count)`.
        spans: Option<Vec<(u32, u32, u32)>>,
        /// Per presynaptic neuron (H, W, C index): its `[y, x, c]`.
        coords: Coords,
    },
    /// Pooling whose windows do not overlap: per presynaptic position (y, x), the output
    /// neuron its channel 0 reaches (channel `c` reaches that plus `c`), or `NO_TARGET`.
    Pool {
        weight: i16,
        target: Vec<u32>,
        channels: usize,
    },
    /// Pooling with overlapping windows.
    PoolWindows {
        weight: i16,
        rows: Reach,
        cols: Reach,
        coords: Coords,
    },
    /// `weight[i_hwc · out + o]`: row `i` holds the synapses of presynaptic neuron `i`.
    Dense { weight: Aligned<i16>, out: usize },
}

/// Marks a presynaptic neuron without a synapse into a pooling layer.
pub(crate) const NO_TARGET: u32 = u32::MAX;

/// What a group is, for the chip mapper and the user (not needed to simulate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// `"conv"`, `"pool"` or `"dense"`.
    pub kind: &'static str,
    pub source: usize,
    /// `(kh, kw)`; `(1, 1)` for dense.
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    /// `(top, bottom, left, right)`.
    pub padding: (usize, usize, usize, usize),
    /// Convolution groups (1 for pooling and dense; pooling is channel-wise).
    pub groups: usize,
    /// Channels of the layer this group writes: `channel_offset .. channel_offset + n`.
    pub channels: (usize, usize),
}

impl GroupInfo {
    /// A convolution or pooling group's description from its two axes.
    fn window(
        kind: &'static str,
        source: usize,
        rows: Axis,
        cols: Axis,
        groups: usize,
        channels: (usize, usize),
    ) -> GroupInfo {
        GroupInfo {
            kind,
            source,
            kernel: (rows.kernel, cols.kernel),
            stride: (rows.stride, cols.stride),
            padding: (rows.before, rows.after, cols.before, cols.after),
            groups,
            channels,
        }
    }
}

/// One compiled synapse group.
#[derive(Debug, Clone)]
pub struct Group {
    pub info: GroupInfo,
    /// First channel of the layer the group writes.
    pub(crate) offset: usize,
    pub(crate) synapses: Synapses,
}

/// A compiled layer: its neurons and the synapse groups that feed them.
#[derive(Debug, Clone)]
pub struct Layer {
    pub shape: Shape,
    /// A dense layer: its neurons have no spatial shape (`(O,)`).
    pub flat: bool,
    pub groups: Vec<Group>,
    /// The bias of neuron `i` (H, W, C order) is `bias[i % bias.len()]`: one per channel, or
    /// repeated to a multiple of the channels that the vector kernels take, or one per neuron.
    pub(crate) bias: Aligned<i32>,
    pub threshold: i32,
    pub leak: i32,
    /// Current decay `du`; `4096` means no current register (the input goes straight to `v`).
    pub du: i32,
    pub reset: Reset,
    /// The synaptic input of one step always fits i16 (sum of |weights| into any neuron over all
    /// groups ≤ 32767): the engine accumulates it in i16, twice as many lanes per vector.
    pub(crate) narrow: bool,
}

/// A validated, compiled network. Layer 0 is the input layer (uint8 pixels as bias).
#[derive(Debug, Clone)]
pub struct Network {
    pub input: Shape,
    pub input_threshold: i32,
    pub layers: Vec<Layer>,
}

/// `value` if it is in `lo..=hi`, else a `Config` error in the one wording of snnfast
/// (`"layer 2 (conv2d): stride must be an integer in [1, 2147483647], got 0"`).
pub fn int_in(value: i64, name: &str, lo: i64, hi: i64, place: &str) -> Result<i64> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(Error::config(format!(
            "{place}: {name} must be an integer in [{lo}, {hi}], got {value}"
        )))
    }
}

fn param(value: i64, name: &str, lo: i64, place: &str) -> Result<usize> {
    Ok(int_in(value, name, lo, MAX_PARAM, place)? as usize)
}

impl Network {
    /// Validate `specs` against `input` and compile them, refusing (a `Memory` error) what
    /// would need more than `memory_limit` bytes for its tables, weights and one worker's state.
    pub fn new(
        input: Shape,
        input_threshold: i64,
        specs: &[LayerSpec],
        memory_limit: u64,
    ) -> Result<Network> {
        let input_threshold = threshold(input_threshold, "input layer")?;
        if specs.is_empty() {
            return Err(Error::shape(
                "a network needs at least one layer after the input",
            ));
        }
        let mut shapes = vec![input];
        let mut need = crate::engine::state_bytes(input.checked_size(), true, false);
        let check = |need: Bytes, place: &str| {
            need.check(memory_limit, &format!("the network (up to the {place})"))
        };
        check(need, "input layer")?;
        check_neurons(input, "input layer")?;
        let mut plans = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let index = i + 1;
            let place = format!("layer {index} ({})", spec.label);
            let plan = plan_layer(&shapes, index, spec, &place)?;
            need = need.plus(plan.table_bytes).plus(crate::engine::state_bytes(
                plan.shape.checked_size(),
                plan.narrow,
                plan.du < LEAK_MAX,
            ));
            check(need, &place)?;
            check_neurons(plan.shape, &place)?;
            shapes.push(plan.shape);
            plans.push(plan);
        }
        let layers = plans
            .into_iter()
            .zip(specs)
            .map(|(plan, spec)| crate::compile::build_layer(&shapes, plan, spec))
            .collect::<Result<Vec<_>>>()?;
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

    /// Synapses from each neuron of the source of group `g` of layer `layer` (1-based) into
    /// that layer, in the source's C, H, W order.
    pub fn group_fan_out(&self, layer: usize, g: usize) -> Vec<u64> {
        let shapes = self.shapes();
        let group = &self.layers[layer - 1].groups[g];
        let src = shapes[group.info.source];
        let mut out = vec![0u64; src.size()];
        for c in 0..src.c {
            for y in 0..src.h {
                for x in 0..src.w {
                    let hwc = (y * src.w + x) * src.c + c;
                    out[(c * src.h + y) * src.w + x] = group.synapses_of(src, hwc) as u64;
                }
            }
        }
        out
    }

    /// Synapses leaving each neuron of layer `l` (0 = input) into every layer it feeds, in
    /// C, H, W order.
    pub fn fan_out(&self, l: usize) -> Vec<u64> {
        let mut out = vec![0u64; self.shapes()[l].size()];
        for (i, layer) in self.layers.iter().enumerate() {
            for (g, group) in layer.groups.iter().enumerate() {
                if group.info.source == l {
                    for (o, n) in out.iter_mut().zip(self.group_fan_out(i + 1, g)) {
                        *o += n;
                    }
                }
            }
        }
        out
    }

    /// Synapse count of each group of layer `layer` (1-based).
    pub fn group_synapses(&self, layer: usize) -> Vec<u64> {
        (0..self.layers[layer - 1].groups.len())
            .map(|g| self.group_fan_out(layer, g).iter().sum())
            .collect()
    }

    /// Number of synapses into each layer (summed over its groups), input first (0).
    pub fn synapse_counts(&self) -> Vec<u64> {
        std::iter::once(0)
            .chain((1..=self.layers.len()).map(|l| self.group_synapses(l).iter().sum()))
            .collect()
    }
}

impl Group {
    /// Number of synapses that presynaptic neuron `hwc` (of the source shaped `src`) has into
    /// this group's layer.
    pub(crate) fn synapses_of(&self, src: Shape, hwc: usize) -> usize {
        let x = (hwc / src.c) % src.w;
        let y = hwc / (src.c * src.w);
        match &self.synapses {
            Synapses::Conv {
                rows, cols, opg, ..
            } => rows.of(y).len() * cols.of(x).len() * opg,
            Synapses::Pool { target, .. } => (target[hwc / src.c] != NO_TARGET) as usize,
            Synapses::PoolWindows { rows, cols, .. } => rows.of(y).len() * cols.of(x).len(),
            Synapses::Dense { out, .. } => *out,
        }
    }
}

fn check_neurons(shape: Shape, place: &str) -> Result<()> {
    match shape.checked_size() {
        Some(n) if n <= MAX_NEURONS => Ok(()),
        _ => Err(Error::shape(format!(
            "{place}: {} neurons (shape {}), more than the engine's {MAX_NEURONS} per layer",
            shape.c as u128 * shape.h as u128 * shape.w as u128,
            shape.text()
        ))),
    }
}

/// A layer's threshold, checked: `1..=i32::MAX`.
fn threshold(value: i64, place: &str) -> Result<i32> {
    Ok(int_in(value, "threshold", 1, i32::MAX as i64, place)? as i32)
}

/// `shape` of a weight array of `len` values with `dims` dimensions, checked.
fn weight_dims<'a>(
    len: usize,
    shape: &'a [usize],
    dims: usize,
    names: &str,
    place: &str,
) -> Result<&'a [usize]> {
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(len) {
        return Err(Error::shape(format!(
            "{place}: weight has {len} values, its shape {shape:?} says otherwise"
        )));
    }
    if shape.len() != dims {
        return Err(Error::shape(format!(
            "{place}: weight must have {dims} dimensions {names}, got shape {shape:?}"
        )));
    }
    if shape.contains(&0) {
        return Err(Error::shape(format!(
            "{place}: weight must not have an empty dimension, got shape {shape:?}"
        )));
    }
    Ok(shape)
}

/// A group's validated parameters (before its tables are built).
pub(crate) struct GroupPlan {
    pub(crate) info: GroupInfo,
    /// The group's output (H, W) and channel count.
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) out_c: usize,
    pub(crate) rows: Axis,
    pub(crate) cols: Axis,
    /// Largest sum of |weights| into one neuron of each of the group's output channels.
    pub(crate) abs_sum: Vec<i64>,
    pub(crate) table_bytes: Bytes,
}

/// A layer's validated parameters.
pub(crate) struct LayerPlan {
    pub(crate) shape: Shape,
    pub(crate) flat: bool,
    pub(crate) groups: Vec<GroupPlan>,
    pub(crate) threshold: i32,
    pub(crate) leak: i32,
    pub(crate) du: i32,
    pub(crate) reset: Reset,
    pub(crate) narrow: bool,
    pub(crate) table_bytes: Bytes,
}

fn axes(
    kernel: (usize, usize),
    stride: (i64, i64),
    padding: [i64; 4],
    place: &str,
) -> Result<(Axis, Axis)> {
    let (sh, sw) = (
        param(stride.0, "stride", 1, place)?,
        param(stride.1, "stride", 1, place)?,
    );
    let [t, b, l, r] = padding.map(|p| param(p, "padding", 0, place));
    let rows = Axis {
        kernel: kernel.0,
        stride: sh,
        before: t?,
        after: b?,
    };
    let cols = Axis {
        kernel: kernel.1,
        stride: sw,
        before: l?,
        after: r?,
    };
    Ok((rows, cols))
}

/// Output size of a window over `src`, or an error naming the kernel and the padded input.
fn window_out(src: Shape, rows: Axis, cols: Axis, place: &str) -> Result<(usize, usize)> {
    match (rows.out_len(src.h), cols.out_len(src.w)) {
        (Some(h), Some(w)) => Ok((h, w)),
        _ => Err(Error::shape(format!(
            "{place}: kernel {}x{} is larger than the padded input {}x{} (source shape {}, \
             padding top {}, bottom {}, left {}, right {})",
            rows.kernel,
            cols.kernel,
            rows.padded(src.h),
            cols.padded(src.w),
            src.text(),
            rows.before,
            rows.after,
            cols.before,
            cols.after
        ))),
    }
}

fn plan_group(shapes: &[Shape], index: usize, g: &GroupSpec, place: &str) -> Result<GroupPlan> {
    let source = if g.source < 0 {
        index - 1
    } else {
        int_in(g.source, "source", 0, index as i64 - 1, place)? as usize
    };
    let offset = param(g.channel_offset, "channel_offset", 0, place)?;
    let src = shapes[source];
    let src_name = if source == index - 1 {
        "the previous layer".to_string()
    } else {
        format!("its source (layer {source})")
    };
    let one = Axis {
        kernel: 1,
        stride: 1,
        before: 0,
        after: 0,
    };
    let (info, out_h, out_w, out_c, rows, cols, abs_sum, tables) = match &g.kind {
        GroupKind::Conv {
            weight,
            shape,
            stride,
            padding,
            groups,
        } => {
            let d = weight_dims(weight.len(), shape, 4, "[O, I / groups, KH, KW]", place)?;
            let (o, ipg, kh, kw) = (d[0], d[1], d[2], d[3]);
            let ng = param(*groups, "groups", 1, place)?;
            if o % ng != 0 {
                return Err(Error::shape(format!(
                    "{place}: groups = {ng} must divide the {o} output channels"
                )));
            }
            if ipg * ng != src.c {
                return Err(Error::shape(format!(
                    "{place}: weight expects {} input channels ({ipg} per group x {ng} groups), \
                     {src_name} has {} (shape {})",
                    ipg * ng,
                    src.c,
                    src.text()
                )));
            }
            let (rows, cols) = axes((kh, kw), *stride, *padding, place)?;
            let (oh, ow) = window_out(src, rows, cols, place)?;
            let abs_sum = (0..o)
                .map(|oc| {
                    let n = ipg * kh * kw;
                    weight[oc * n..(oc + 1) * n]
                        .iter()
                        .map(|w| (*w as i64).abs())
                        .sum()
                })
                .collect();
            let tables = Bytes::of(weight.len(), 2)
                .plus(rows.reach_bytes(src.h, oh))
                .plus(cols.reach_bytes(src.w, ow))
                .plus(Bytes::of(src.w, 12))
                .plus(Coords::bytes(src));
            let info = GroupInfo::window("conv", source, rows, cols, ng, (offset, offset + o));
            (info, oh, ow, o, rows, cols, abs_sum, tables)
        }
        GroupKind::Pool {
            kernel,
            weight,
            stride,
            padding,
        } => {
            let kh = param(kernel.0, "kernel", 1, place)?;
            let kw = param(kernel.1, "kernel", 1, place)?;
            let w = int_in(*weight, "weight", i16::MIN as i64, i16::MAX as i64, place)?;
            let (rows, cols) = axes((kh, kw), *stride, *padding, place)?;
            let (oh, ow) = window_out(src, rows, cols, place)?;
            let abs_sum = vec![(kh as i64 * kw as i64).saturating_mul(w.abs()); src.c];
            let tables = Coords::bytes(src)
                .plus(rows.reach_bytes(src.h, oh))
                .plus(cols.reach_bytes(src.w, ow));
            let info = GroupInfo::window("pool", source, rows, cols, 1, (offset, offset + src.c));
            (info, oh, ow, src.c, rows, cols, abs_sum, tables)
        }
        GroupKind::Dense { weight, shape } => {
            let d = weight_dims(weight.len(), shape, 2, "[O, I]", place)?;
            let (o, n) = (d[0], d[1]);
            if n != src.size() {
                return Err(Error::shape(format!(
                    "{place}: weight expects {n} inputs, {src_name} has {} neurons (shape {})",
                    src.size(),
                    src.text()
                )));
            }
            let abs_sum = (0..o)
                .map(|oc| {
                    weight[oc * n..(oc + 1) * n]
                        .iter()
                        .map(|w| (*w as i64).abs())
                        .sum()
                })
                .collect();
            let info = GroupInfo {
                kind: "dense",
                source,
                kernel: (1, 1),
                stride: (1, 1),
                padding: (0, 0, 0, 0),
                groups: 1,
                channels: (offset, offset + o),
            };
            let tables = Bytes::of(weight.len(), 2);
            (info, 1, 1, o, one, one, abs_sum, tables)
        }
    };
    Ok(GroupPlan {
        info,
        out_h,
        out_w,
        out_c,
        rows,
        cols,
        abs_sum,
        table_bytes: tables,
    })
}

fn plan_layer(shapes: &[Shape], index: usize, spec: &LayerSpec, place: &str) -> Result<LayerPlan> {
    if spec.groups.is_empty() {
        return Err(Error::shape(format!(
            "{place}: a layer needs at least one synapse group"
        )));
    }
    let many = spec.groups.len() > 1;
    let mut groups = Vec::with_capacity(spec.groups.len());
    for (g, gs) in spec.groups.iter().enumerate() {
        let gplace = if many {
            format!("{place}, group {}", g + 1)
        } else {
            place.to_string()
        };
        groups.push(plan_group(shapes, index, gs, &gplace)?);
    }
    let first = &groups[0];
    let flat = first.info.kind == "dense";
    for (g, p) in groups.iter().enumerate().skip(1) {
        if (p.info.kind == "dense") != flat {
            return Err(Error::shape(format!(
                "{place}: group {} is {} but group 1 is {}; dense groups cannot feed the same \
                 layer as convolution or pooling groups",
                g + 1,
                p.info.kind,
                first.info.kind
            )));
        }
        if (p.out_h, p.out_w) != (first.out_h, first.out_w) {
            return Err(Error::shape(format!(
                "{place}: group {} makes a {}x{} output but group 1 a {}x{} one; every group of \
                 a layer must agree on H and W",
                g + 1,
                p.out_h,
                p.out_w,
                first.out_h,
                first.out_w
            )));
        }
    }
    let channels = groups.iter().map(|p| p.info.channels.1).max().unwrap_or(0);
    let shape = Shape {
        c: channels,
        h: first.out_h,
        w: first.out_w,
    };
    let threshold = threshold(spec.threshold, place)?;
    let leak = int_in(spec.leak, "leak", 0, LEAK_MAX as i64, place)? as i32;
    let du = int_in(spec.du, "du", 0, LEAK_MAX as i64, place)? as i32;
    let reset = match spec.reset.as_str() {
        "subtract" => Reset::Subtract,
        "zero" => Reset::Zero,
        other => {
            return Err(Error::config(format!(
                "{place}: reset must be one of 'subtract', 'zero', got {other:?}"
            )))
        }
    };
    if let Some(bias) = &spec.bias {
        let neurons = shape.checked_size();
        if bias.len() != channels && Some(bias.len()) != neurons {
            return Err(Error::shape(format!(
                "{place}: bias has {} entries, the layer has {channels} output channels \
                 (one bias each) and {} neurons (one bias each, shape {})",
                bias.len(),
                neurons.map_or("too many".to_string(), |n| n.to_string()),
                shape.text()
            )));
        }
    }
    // The largest synaptic input of one step into each channel, over all groups. Kept only for
    // the channels some group writes: a channel offset from input may name billions of channels
    // before the layer's memory is checked, and a vector that long would be allocated first.
    let mut abs: std::collections::HashMap<usize, i64> = std::collections::HashMap::new();
    for p in &groups {
        for (j, s) in p.abs_sum.iter().enumerate() {
            let a = abs.entry(p.info.channels.0 + j).or_insert(0);
            *a = a.saturating_add(*s);
        }
    }
    let max_abs = abs.values().copied().max().unwrap_or(0);
    let bias = spec.bias.as_deref().unwrap_or(&[]);
    let narrow = check_current(max_abs, bias, du < LEAK_MAX, place)?;
    let table_bytes = groups
        .iter()
        .fold(Bytes::of(channels, 4), |b, p| b.plus(p.table_bytes));
    Ok(LayerPlan {
        shape,
        flat,
        groups,
        threshold,
        leak,
        du,
        reset,
        narrow,
        table_bytes,
    })
}

/// The largest input current a neuron can receive must keep every sum of the update inside
/// i32: `v + z` without a current register; `u + input` and `v + u + b` (with `|u| ≤ 2^23`)
/// with one. Returns whether the synaptic part alone fits i16 (the layer can accumulate
/// narrow).
fn check_current(max_abs_input: i64, bias: &[i32], current: bool, place: &str) -> Result<bool> {
    let max_bias = bias.iter().map(|b| (*b as i64).abs()).max().unwrap_or(0);
    let state = V_MAX as i64 + 1;
    let worst = if current {
        (max_abs_input.saturating_add(state)).max(max_bias.saturating_add(2 * state))
    } else {
        max_abs_input.saturating_add(max_bias).saturating_add(state)
    };
    if worst > i32::MAX as i64 {
        return Err(Error::config(format!(
            "{place}: the largest input current a neuron can receive (sum of |weights| \
             {max_abs_input} + |bias| {max_bias}) does not fit the engine's 32-bit accumulator \
             with a 24-bit potential; scale weights or bias down"
        )));
    }
    Ok(max_abs_input <= i16::MAX as i64)
}
