//! The synaptic scatter of one synapse group for one step: every kind's geometry, written
//! once. Convolution and dense groups add contiguous runs of weights ([`runs`]); pooling
//! groups add their one weight, read straight from the source's spike bits where the windows
//! do not overlap ([`pool_from_mask`]).

use crate::kernels::Kernels;
use crate::network::{Group, Layer, Synapses, NO_TARGET};
use crate::neuron::Acc;
use crate::step::Spikes;

/// Add the synapses of group `g` for every spike of its source (H, W, C indices) into `acc`
/// (the layer's, H, W, C); returns the number of synaptic events. With `SUB` the runs of
/// weights of `spikes.list` are subtracted instead (the quiet neurons of a complemented source,
/// `crate::step`); pooling never is.
#[inline(always)]
pub(crate) fn scatter<A: Acc, K: Kernels, const SUB: bool>(
    k: K,
    layer: &Layer,
    g: &Group,
    spikes: Spikes,
    acc: &mut [A],
) -> i64 {
    let (out_w, c_out, offset) = (layer.shape.w, layer.shape.c, g.offset);
    match &g.synapses {
        Synapses::Pool {
            weight,
            target,
            channels,
        } => pool_from_mask(k, *weight, target, *channels, spikes.mask, acc),
        Synapses::PoolWindows {
            weight,
            rows,
            cols,
            coords,
        } => {
            let mut events = 0i64;
            for &s in spikes.list {
                let (y, x, c) = coords.get(s as usize);
                let (rs, cs) = (rows.of(y), cols.of(x));
                events += (rs.len() * cs.len()) as i64;
                for &(_, oy) in rs {
                    for &(_, ox) in cs {
                        let a = &mut acc[(oy as usize * out_w + ox as usize) * c_out + offset + c];
                        *a = a.add(*weight);
                    }
                }
            }
            events
        }
        Synapses::Conv { weight, .. } | Synapses::Dense { weight, .. } => {
            runs(layer, g, spikes.list, |a0, w0, len| {
                if SUB {
                    A::sub_run(k, &mut acc[a0..a0 + len], &weight[w0..w0 + len])
                } else {
                    A::add_run(k, &mut acc[a0..a0 + len], &weight[w0..w0 + len])
                }
            })
        }
    }
}

/// The synaptic runs of a convolution or dense group for `spikes` (H, W, C indices of its
/// source): for each, `run(a0, w0, len)` means `acc[a0 + j] += weight[w0 + j]` for `j < len`
/// (`acc` the layer's accumulator, `weight` the group's table). Returns the synaptic events.
/// Pooling groups have no runs (0).
#[inline(always)]
pub(crate) fn runs(
    layer: &Layer,
    g: &Group,
    spikes: &[u32],
    mut run: impl FnMut(usize, usize, usize),
) -> i64 {
    let mut events = 0i64;
    let (out_w, c_out, offset) = (layer.shape.w, layer.shape.c, g.offset);
    match &g.synapses {
        Synapses::Conv {
            kh,
            kw,
            ipg,
            opg,
            rows,
            cols,
            spans,
            coords,
            ..
        } => {
            let (kh, kw, ipg, o) = (*kh, *kw, *ipg, *opg);
            // Weight offsets: input channel c, kernel row ky, flipped column kxf is
            // ((c · kh + ky) · kw + kxf) · o.
            let (w_row, w_chan) = (kw * o, kh * kw * o);
            if let Some(spans) = spans {
                // One group writing every channel (o == c_out, offset 0), x-stride 1: one
                // contiguous run per kernel row.
                let a_row = out_w * o;
                for &s in spikes {
                    let (y, x, c) = coords.get(s as usize);
                    let rs = rows.of(y);
                    let (ox, kxf, n) = spans[x];
                    let len = n as usize * o;
                    events += (rs.len() * len) as i64;
                    let w_base = c * w_chan + kxf as usize * o;
                    let a_base = ox as usize * o;
                    for &(ky, oy) in rs {
                        run(
                            a_base + oy as usize * a_row,
                            w_base + ky as usize * w_row,
                            len,
                        );
                    }
                }
            } else {
                for &s in spikes {
                    let (y, x, c) = coords.get(s as usize);
                    let (rs, cs) = (rows.of(y), cols.of(x));
                    let first = offset + (c / ipg) * o;
                    events += (rs.len() * cs.len() * o) as i64;
                    for &(ky, oy) in rs {
                        let w_base = c * w_chan + ky as usize * w_row + (kw - 1) * o;
                        let a_base = oy as usize * out_w * c_out + first;
                        for &(kx, ox) in cs {
                            run(a_base + ox as usize * c_out, w_base - kx as usize * o, o);
                        }
                    }
                }
            }
        }
        Synapses::Dense { out, .. } => {
            let o = *out;
            for &s in spikes {
                run(offset, s as usize * o, o);
            }
            events = (spikes.len() * o) as i64;
        }
        Synapses::Pool { .. } | Synapses::PoolWindows { .. } => {}
    }
    events
}

/// Non-overlapping pooling read straight from the source's spike bits: each source position
/// `p` (of `channels` neurons, bits `p · channels ..`) reaches the run of output channels that
/// starts at `target[p]` (or none), so its bits, 32 channels at a time, select which of them
/// receive `weight`. At a few percent density this is far cheaper than listing the spikes and
/// adding them one by one. Returns the synaptic events (spikes with a target).
#[inline(always)]
fn pool_from_mask<A: Acc, K: Kernels>(
    k: K,
    weight: i16,
    target: &[u32],
    channels: usize,
    mask: &[u64],
    acc: &mut [A],
) -> i64 {
    let mut events = 0i64;
    if channels.is_multiple_of(32) {
        // Every 32 bits of the mask are 32 channels of one position: take the mask a word at
        // a time and skip the words without a spike.
        let per = channels / 32; // 32-channel chunks per position
        let chunks = target.len() * per;
        for (w, &word) in mask.iter().enumerate() {
            if word == 0 {
                continue;
            }
            for half in 0..2 {
                let bits = (word >> (32 * half)) as u32;
                let q = 2 * w + half;
                if bits == 0 || q >= chunks {
                    continue;
                }
                let t = target[q / per];
                if t == NO_TARGET {
                    continue;
                }
                let t = t as usize + (q % per) * 32;
                events += bits.count_ones() as i64;
                A::add_bits(k, &mut acc[t..t + 32], bits, weight);
            }
        }
        return events;
    }
    for (p, &t) in target.iter().enumerate() {
        if t == NO_TARGET {
            continue;
        }
        let (mut bit, t) = (p * channels, t as usize);
        let mut ch = 0;
        while ch < channels {
            let take = (channels - ch).min(32);
            let bits = bits_at(mask, bit) as u32 & (u32::MAX >> (32 - take));
            if bits != 0 {
                events += bits.count_ones() as i64;
                A::add_bits(k, &mut acc[t + ch..t + ch + take], bits, weight);
            }
            ch += 32;
            bit += 32;
        }
    }
    events
}

/// The 64 bits of `mask` from bit `bit` on (the mask's last word is padding, always zero).
#[inline(always)]
fn bits_at(mask: &[u64], bit: usize) -> u64 {
    let (w, s) = (bit >> 6, bit & 63);
    if s == 0 {
        mask[w]
    } else {
        (mask[w] >> s) | (mask[w + 1] << (64 - s))
    }
}
