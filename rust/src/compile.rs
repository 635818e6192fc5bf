//! Compiling validated layers into scatter tables (see [`crate::network`] for the validation
//! and the table layouts).

use crate::aligned::Aligned;
use crate::error::Result;
use crate::geometry::{Coords, Reach, Shape};
use crate::network::{
    Group, GroupKind, GroupPlan, Layer, LayerPlan, LayerSpec, Synapses, NO_TARGET,
};

pub(crate) fn build_layer(shapes: &[Shape], plan: LayerPlan, spec: &LayerSpec) -> Result<Layer> {
    let shape = plan.shape;
    let groups = plan
        .groups
        .into_iter()
        .zip(&spec.groups)
        .map(|(p, g)| build_group(shapes, shape, p, &g.kind))
        .collect::<Result<Vec<_>>>()?;
    Ok(Layer {
        shape,
        flat: plan.flat,
        groups,
        bias: bias_period(shape, spec.bias.as_deref())?,
        threshold: plan.threshold,
        leak: plan.leak,
        du: plan.du,
        reset: plan.reset,
        narrow: plan.narrow,
    })
}

/// Neurons a vector kernel updates at once (AVX-512: 16 i32 lanes).
const LANES: usize = 16;

/// Neurons of one spike-mask word: a period that is a multiple of it lets the AVX-512 update
/// write whole words.
const WORD: usize = 64;

/// A layer's bias as the update kernels read it (neuron `i`, in H, W, C order, has bias
/// `b[i % b.len()]`): per channel (`None`: zeros) or per neuron (given in C, H, W order). A
/// per-channel bias is repeated to the smallest period that is a multiple of [`WORD`] and
/// divides the layer, else of [`LANES`] (what the vector kernels step through), else kept.
fn bias_period(shape: Shape, bias: Option<&[i32]>) -> Result<Aligned<i32>> {
    let (c, hw) = (shape.c, shape.h * shape.w);
    let what = "the layer's bias";
    match bias {
        Some(b) if b.len() != c => {
            // Per neuron (validation allows only C or C·H·W entries): C, H, W to H, W, C.
            let mut out = Aligned::<i32>::zeroed(b.len(), what)?;
            for ch in 0..c {
                for p in 0..hw {
                    out[p * c + ch] = b[ch * hw + p];
                }
            }
            Ok(out)
        }
        _ => {
            let one = bias.map_or_else(|| vec![0; c], <[i32]>::to_vec);
            let fits = |unit: usize| {
                (1..=unit)
                    .map(|m| c * m)
                    .find(|p| p % unit == 0 && (c * hw) % p == 0)
            };
            let period = fits(WORD).or_else(|| fits(LANES)).unwrap_or(c);
            let mut out = Aligned::<i32>::zeroed(period, what)?;
            for (i, o) in out.iter_mut().enumerate() {
                *o = one[i % c];
            }
            Ok(out)
        }
    }
}

pub(crate) fn build_group(
    shapes: &[Shape],
    layer: Shape,
    p: GroupPlan,
    kind: &GroupKind,
) -> Result<Group> {
    let src = shapes[p.info.source];
    let offset = p.info.channels.0;
    let synapses = match kind {
        GroupKind::Conv { weight, .. } => {
            let (kh, kw) = p.info.kernel;
            let ng = p.info.groups;
            let (opg, ipg) = (p.out_c / ng, src.c / ng);
            let mut wt = Aligned::<i16>::zeroed(weight.len(), "convolution weights")?;
            for oc in 0..p.out_c {
                let (grp, o) = (oc / opg, oc % opg);
                for ci in 0..ipg {
                    let c = grp * ipg + ci;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let w = weight[((oc * ipg + ci) * kh + ky) * kw + kx];
                            wt[((c * kh + ky) * kw + (kw - 1 - kx)) * opg + o] = w;
                        }
                    }
                }
            }
            let rows = Reach::new(src.h, p.out_h, p.rows)?;
            let cols = Reach::new(src.w, p.out_w, p.cols)?;
            // With x-stride 1, input column x reaches output columns x + left − kx:
            // consecutive outputs for consecutive flipped kx. The run of one kernel row covers
            // consecutive output positions, so it is contiguous only when this group writes
            // every channel of the layer.
            let contiguous = p.cols.stride == 1 && ng == 1 && p.out_c == layer.c;
            let spans = contiguous.then(|| {
                (0..src.w)
                    .map(|x| match cols.of(x).iter().map(|&(_, ox)| ox).min() {
                        Some(lo) => {
                            let kxf = (kw - 1 + lo as usize - (x + p.cols.before)) as u32;
                            (lo, kxf, cols.of(x).len() as u32)
                        }
                        None => (0, 0, 0),
                    })
                    .collect()
            });
            Synapses::Conv {
                weight: wt,
                kh,
                kw,
                ipg,
                opg,
                rows,
                cols,
                spans,
                coords: Coords::of(src)?,
            }
        }
        GroupKind::Pool { weight, .. } => {
            let weight = *weight as i16; // checked by `plan_group`
            let rows = Reach::new(src.h, p.out_h, p.rows)?;
            let cols = Reach::new(src.w, p.out_w, p.cols)?;
            if p.rows.stride >= p.rows.kernel && p.cols.stride >= p.cols.kernel {
                // Windows do not overlap: at most one synapse per presynaptic neuron, and the
                // channels of one position reach consecutive channels of one output position.
                let mut target = crate::error::zeroed::<u32>(src.h * src.w, "a pooling table")?;
                for y in 0..src.h {
                    for x in 0..src.w {
                        target[y * src.w + x] = match (rows.of(y).first(), cols.of(x).first()) {
                            (Some(&(_, oy)), Some(&(_, ox))) => {
                                ((oy as usize * layer.w + ox as usize) * layer.c + offset) as u32
                            }
                            _ => NO_TARGET,
                        };
                    }
                }
                Synapses::Pool {
                    weight,
                    target,
                    channels: src.c,
                }
            } else {
                Synapses::PoolWindows {
                    weight,
                    rows,
                    cols,
                    coords: Coords::of(src)?,
                }
            }
        }
        GroupKind::Dense { weight, .. } => {
            let (o, n) = (p.out_c, src.size());
            // Rows of `wt` are presynaptic neurons in H, W, C order; PyTorch flattens C, H, W.
            let mut wt = Aligned::<i16>::zeroed(o * n, "dense weights")?;
            for c in 0..src.c {
                for y in 0..src.h {
                    for x in 0..src.w {
                        let chw = (c * src.h + y) * src.w + x;
                        let hwc = (y * src.w + x) * src.c + c;
                        for oc in 0..o {
                            wt[hwc * o + oc] = weight[oc * n + chw];
                        }
                    }
                }
            }
            Synapses::Dense { weight: wt, out: o }
        }
    };
    Ok(Group {
        info: p.info,
        offset,
        synapses,
    })
}
