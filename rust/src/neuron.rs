//! The integer leaky integrate-and-fire neuron (`docs/neuron.md`).
//!
//! For each neuron and time step, with input current `z = b + Σ W·s`:
//!
//! ```text
//! v = v − sign(v) · ((|v| · dv) >> 12)      leak, truncating toward zero
//! v = saturate_24bit(v + z)                 [−2^23, 2^23 − 1]
//! s = v ≥ θ                                 at most one spike per step
//! v = v − θ · s                             soft reset (reset by subtraction)
//! ```
//!
//! Layers may instead reset to zero and carry a synaptic current `u` with its own decay `du`
//! (Loihi's CUBA compartment, [`update_cuba`]): `u = sat24(u − sign(u)·((|u|·du) >> 12) + Σ W·s)`,
//! then `v = sat24(leak(v) + u + b)`; `du = 4096` is the plain neuron above.
//!
//! Everything stays in `i32`: the network validation guarantees `|v| + |z| < 2^31`, and the leak
//! product is split so it cannot overflow.

use crate::kernels::Kernels;

/// The per-step synaptic accumulator of a layer: `i32`, or `i16` where the layer's weights
/// guarantee that one step's input fits (see `Layer::narrow`).
pub trait Acc: Copy + Default + Send + Sync {
    /// `self + w`; cannot overflow for a layer validated for this accumulator.
    fn add(self, w: i16) -> Self;
    fn get(self) -> i32;
    /// `acc[j] += w[j]` over a run, with the kernels `k`.
    fn add_run<K: Kernels>(k: K, acc: &mut [Self], w: &[i16]);
    /// `acc[j] -= w[j]` over a run, with the kernels `k`.
    fn sub_run<K: Kernels>(k: K, acc: &mut [Self], w: &[i16]);
    /// `acc[j] += w` where bit `j` of `bits` is set (`bits < 2^acc.len()`), with the kernels `k`.
    fn add_bits<K: Kernels>(k: K, acc: &mut [Self], bits: u32, w: i16);
    /// The leak-free [`update_layer`], with the kernels `k`.
    fn update_plain<K: Kernels>(
        k: K,
        v: &mut [i32],
        acc: &mut [Self],
        mask: &mut [u64],
        bias: &[i32],
        threshold: i32,
    );
}

impl Acc for i16 {
    #[inline(always)]
    fn add(self, w: i16) -> i16 {
        self.wrapping_add(w)
    }
    #[inline(always)]
    fn get(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn add_run<K: Kernels>(k: K, acc: &mut [i16], w: &[i16]) {
        k.add_i16(acc, w)
    }
    #[inline(always)]
    fn sub_run<K: Kernels>(k: K, acc: &mut [i16], w: &[i16]) {
        k.sub_i16(acc, w)
    }
    #[inline(always)]
    fn add_bits<K: Kernels>(k: K, acc: &mut [i16], bits: u32, w: i16) {
        k.add_bits_i16(acc, bits, w)
    }
    #[inline(always)]
    fn update_plain<K: Kernels>(
        k: K,
        v: &mut [i32],
        acc: &mut [i16],
        mask: &mut [u64],
        bias: &[i32],
        threshold: i32,
    ) {
        k.update_i16(v, acc, mask, bias, threshold)
    }
}

impl Acc for i32 {
    #[inline(always)]
    fn add(self, w: i16) -> i32 {
        self.wrapping_add(w as i32)
    }
    #[inline(always)]
    fn get(self) -> i32 {
        self
    }
    #[inline(always)]
    fn add_run<K: Kernels>(k: K, acc: &mut [i32], w: &[i16]) {
        k.add_i32(acc, w)
    }
    #[inline(always)]
    fn sub_run<K: Kernels>(k: K, acc: &mut [i32], w: &[i16]) {
        k.sub_i32(acc, w)
    }
    #[inline(always)]
    fn add_bits<K: Kernels>(k: K, acc: &mut [i32], bits: u32, w: i16) {
        k.add_bits_i32(acc, bits, w)
    }
    #[inline(always)]
    fn update_plain<K: Kernels>(
        k: K,
        v: &mut [i32],
        acc: &mut [i32],
        mask: &mut [u64],
        bias: &[i32],
        threshold: i32,
    ) {
        k.update_i32(v, acc, mask, bias, threshold)
    }
}

/// Lowest membrane potential (24-bit signed).
pub const V_MIN: i32 = -(1 << 23);
/// Highest membrane potential (24-bit signed).
pub const V_MAX: i32 = (1 << 23) - 1;
/// Largest leak: `dv = 4096` empties the potential every step.
pub const LEAK_MAX: i32 = 4096;

/// The leak `v − sign(v) · ((|v| · dv) >> 12)` for `|v| ≤ 2^23`, `0 ≤ dv ≤ 4096`, in `i32`.
///
/// `|v|·dv` can reach 2^35, so it is split into `(|v| >> 12)·dv + ((|v| & 4095)·dv >> 12)`,
/// which is the same integer (the first part is a multiple of 4096 before the shift).
#[inline(always)]
pub fn leak(v: i32, dv: i32) -> i32 {
    let a = v.abs();
    let d = (a >> 12) * dv + (((a & 4095) * dv) >> 12);
    v - v.signum() * d
}

/// Clamp to the 24-bit signed range.
#[inline(always)]
pub fn saturate(v: i32) -> i32 {
    v.clamp(V_MIN, V_MAX)
}

/// One neuron's step: returns the new potential and whether it spiked (0 or 1).
#[inline(always)]
pub fn step<const LEAKY: bool>(v: i32, z: i32, threshold: i32, dv: i32) -> (i32, i32) {
    let v = if LEAKY { leak(v, dv) } else { v };
    let v = saturate(v + z);
    let s = (v >= threshold) as i32;
    (v - (threshold & s.wrapping_neg()), s)
}

/// Update a layer: `v` and `acc` (synaptic input this step, cleared here) are laid out
/// position-major with the channel innermost, and `bias` has one entry per channel. Bit `i % 64`
/// of `mask[i / 64]` is set where neuron `i` spiked. This is the portable version; [`Kernels`]
/// may replace the leak-free case by vector code that computes the same integers.
#[inline(always)]
pub fn update_layer<A: Acc, const LEAKY: bool>(
    v: &mut [i32],
    acc: &mut [A],
    mask: &mut [u64],
    bias: &[i32],
    threshold: i32,
    dv: i32,
) {
    let c = bias.len();
    debug_assert!(v.len().is_multiple_of(c) && acc.len() == v.len() && mask.len() * 64 >= v.len());
    mask.fill(0);
    let mut j = 0;
    for i in 0..v.len() {
        let (nv, s) = step::<LEAKY>(v[i], bias[j] + acc[i].get(), threshold, dv);
        v[i] = nv;
        acc[i] = A::default();
        mask[i >> 6] |= (s as u64) << (i & 63);
        j += 1;
        if j == c {
            j = 0;
        }
    }
}

/// How a neuron's potential is reset after it spikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// `v − θ` (the default; keeps what exceeded the threshold).
    Subtract,
    /// `0`, as Loihi and Lava's bit-accurate LIF model reset.
    Zero,
}

/// Update a layer of current-based (CUBA) neurons, or of neurons that reset to zero
/// (`docs/neuron.md`): with `CURRENT`, the synaptic current `u` (one per neuron) decays by
/// `du` and takes this step's input, saturated to 24 bits, and `v` integrates it; without,
/// the input goes straight to `v` (`du = 4096`). With `ZERO` a spike resets `v` to 0, else it
/// subtracts `θ`. Layout and mask as in [`update_layer`], which is the case
/// `CURRENT = ZERO = false`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn update_cuba<A: Acc, const CURRENT: bool, const ZERO: bool>(
    v: &mut [i32],
    u: &mut [i32],
    acc: &mut [A],
    mask: &mut [u64],
    bias: &[i32],
    threshold: i32,
    dv: i32,
    du: i32,
) {
    let c = bias.len();
    debug_assert!(v.len().is_multiple_of(c) && acc.len() == v.len() && mask.len() * 64 >= v.len());
    debug_assert!(!CURRENT || u.len() == v.len());
    mask.fill(0);
    let mut j = 0;
    for i in 0..v.len() {
        let input = acc[i].get();
        let current = if CURRENT {
            let x = saturate(leak(u[i], du) + input);
            u[i] = x;
            x
        } else {
            input
        };
        let x = saturate(leak(v[i], dv) + current + bias[j]);
        let s = (x >= threshold) as i32;
        let spiked = s.wrapping_neg(); // all ones where the neuron spiked
        v[i] = if ZERO {
            x & !spiked
        } else {
            x - (threshold & spiked)
        };
        acc[i] = A::default();
        mask[i >> 6] |= (s as u64) << (i & 63);
        j += 1;
        if j == c {
            j = 0;
        }
    }
}

/// Words of a spike bitmask for `n` neurons.
pub fn mask_words(n: usize) -> usize {
    n.div_ceil(64)
}

/// Append the indices of the set bits of `mask` to `out`, in increasing order.
#[inline(always)]
pub fn gather_spikes(mask: &[u64], out: &mut Vec<u32>) {
    out.clear();
    for (w, &word) in mask.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            out.push((w as u32) * 64 + word.trailing_zeros());
            word &= word - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak_wide(v: i32, dv: i32) -> i32 {
        let a = (v as i64).abs();
        (v as i64 - (v as i64).signum() * ((a * dv as i64) >> 12)) as i32
    }

    #[test]
    fn leak_matches_wide_arithmetic() {
        for &v in &[0, 1, -1, 4095, -4096, 12345, -99999, V_MAX, V_MIN, 1 << 22] {
            for &dv in &[0, 1, 7, 2048, 4095, 4096] {
                assert_eq!(leak(v, dv), leak_wide(v, dv), "v={v} dv={dv}");
            }
        }
    }

    #[test]
    fn leak_truncates_toward_zero() {
        assert_eq!(leak(-3, 2048), -2); // |−3|·0.5 = 1.5 → 1
        assert_eq!(leak(3, 2048), 2);
        assert_eq!(leak(5, 4096), 0);
    }

    #[test]
    fn step_saturates_and_soft_resets() {
        assert_eq!(step::<false>(V_MAX, 100, V_MAX, 0), (0, 1));
        assert_eq!(step::<false>(0, -(1 << 30), 10, 0), (V_MIN, 0));
        assert_eq!(step::<false>(7, 5, 10, 0), (2, 1));
        assert_eq!(step::<false>(7, 2, 10, 0), (9, 0));
    }

    /// The CUBA rules with wide arithmetic, one neuron at a time.
    #[allow(clippy::too_many_arguments)]
    fn cuba_wide(
        v: i64,
        u: i64,
        input: i64,
        bias: i64,
        th: i64,
        dv: i32,
        du: i32,
        zero: bool,
    ) -> (i64, i64, bool) {
        let decay = |x: i64, d: i32| x - x.signum() * ((x.abs() * d as i64) >> 12);
        let sat = |x: i64| x.clamp(V_MIN as i64, V_MAX as i64);
        let u = if du == LEAK_MAX {
            input
        } else {
            sat(decay(u, du) + input)
        };
        let x = sat(decay(v, dv) + u + bias);
        let spiked = x >= th;
        let v = if !spiked {
            x
        } else if zero {
            0
        } else {
            x - th
        };
        (v, u, spiked)
    }

    #[test]
    fn cuba_update_matches_wide_arithmetic() {
        let n = 24usize;
        let bias: Vec<i32> = vec![-300, 0, 4000];
        for &(dv, du) in &[
            (0, 0),
            (0, 1),
            (7, 2048),
            (4096, 4095),
            (100, 4096),
            (0, 4096),
        ] {
            for zero in [false, true] {
                let mut v: Vec<i32> = (0..n as i32)
                    .map(|i| i * 350_001 % 16_000_000 - 8_000_000)
                    .collect();
                let mut u: Vec<i32> = (0..n as i32)
                    .map(|i| i * 123_457 % 16_000_000 - 8_000_000)
                    .collect();
                v[0] = V_MAX;
                u[1] = V_MIN;
                let acc0: Vec<i32> = (0..n as i32)
                    .map(|i| i * 77_777 % 9_000_000 - 4_500_000)
                    .collect();
                let (v0, u0) = (v.clone(), u.clone());
                let mut acc = acc0.clone();
                let mut mask = vec![0u64; 1];
                let th = 1_000;
                match (du == LEAK_MAX, zero) {
                    (true, false) => update_cuba::<i32, false, false>(
                        &mut v, &mut u, &mut acc, &mut mask, &bias, th, dv, du,
                    ),
                    (true, true) => update_cuba::<i32, false, true>(
                        &mut v, &mut u, &mut acc, &mut mask, &bias, th, dv, du,
                    ),
                    (false, false) => update_cuba::<i32, true, false>(
                        &mut v, &mut u, &mut acc, &mut mask, &bias, th, dv, du,
                    ),
                    (false, true) => update_cuba::<i32, true, true>(
                        &mut v, &mut u, &mut acc, &mut mask, &bias, th, dv, du,
                    ),
                }
                for i in 0..n {
                    let (wv, wu, ws) = cuba_wide(
                        v0[i] as i64,
                        u0[i] as i64,
                        acc0[i] as i64,
                        bias[i % 3] as i64,
                        th as i64,
                        dv,
                        du,
                        zero,
                    );
                    assert_eq!(
                        v[i] as i64, wv,
                        "v, neuron {i}, dv {dv} du {du} zero {zero}"
                    );
                    if du != LEAK_MAX {
                        assert_eq!(u[i] as i64, wu, "u, neuron {i}");
                    }
                    assert_eq!(mask[0] >> i & 1 == 1, ws);
                    assert_eq!(acc[i], 0);
                }
            }
        }
    }

    #[test]
    fn cuba_without_current_and_subtract_is_the_plain_update() {
        let bias = vec![5, -3];
        let v0: Vec<i32> = vec![100, -40, 7, V_MAX, V_MIN, 0];
        let acc0: Vec<i16> = vec![30, -7, 0, 100, -100, 9];
        let (mut a, mut b) = (v0.clone(), v0.clone());
        let (mut aa, mut ab) = (acc0.clone(), acc0.clone());
        let (mut ma, mut mb) = (vec![0u64], vec![0u64]);
        update_layer::<i16, true>(&mut a, &mut aa, &mut ma, &bias, 50, 300);
        update_cuba::<i16, false, false>(&mut b, &mut [], &mut ab, &mut mb, &bias, 50, 300, 4096);
        assert_eq!((a, aa, ma), (b, ab, mb));
    }

    #[test]
    fn gather_finds_every_spike() {
        let mut mask = vec![0u64; mask_words(200)];
        for i in [0, 7, 8, 9, 63, 64, 130, 199] {
            mask[i / 64] |= 1 << (i % 64);
        }
        let mut out = Vec::new();
        gather_spikes(&mask, &mut out);
        assert_eq!(out, vec![0, 7, 8, 9, 63, 64, 130, 199]);
    }
}
