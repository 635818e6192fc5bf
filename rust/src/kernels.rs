//! The compute kernels of the engine, and the one place where an instruction set is chosen.
//!
//! A [`Kernels`] value is a set of kernels for one instruction set: the synaptic scatter of a
//! run of output channels into an `i16` or `i32` accumulator, and the leak-free neuron update
//! of a layer. [`Portable`] runs on every processor; [`Avx2`] and [`Avx512`] are tokens that can
//! only be made by their `detect` on a processor that has the instructions, so no safe code can
//! execute them elsewhere. All compute the same integers.
//!
//! A run picks its kernels once ([`Choice::resolve`]: the best the processor has, or the one
//! `SNNFAST_KERNELS` names) and the whole simulation is monomorphised for that type. Hot code
//! enters the instruction set through [`Kernels::run`]: the [`Task`] given to it, and every
//! `#[inline(always)]` function it calls, is compiled with the kernel set's target features, so
//! loops the compiler vectorises by itself (the leaky update) use the wider registers too.

use crate::error::{Error, Result};

/// Environment variable that forces a kernel set: `portable`, `avx2` or `avx512` (default: the
/// best the processor supports).
pub const ENV: &str = "SNNFAST_KERNELS";

/// Work to be compiled for a kernel set (see [`Kernels::run`]). Implementations mark `run`
/// `#[inline(always)]`, so that its body is generated inside the kernel set's entry point.
pub trait Task {
    type Output;
    fn run<K: Kernels>(self, k: K) -> Self::Output;
}

/// A set of kernels for one instruction set. Every method computes the same integers as
/// [`Portable`]'s.
pub trait Kernels: Copy + Send + Sync + 'static {
    /// The name `SNNFAST_KERNELS` and `snnfast._core.kernels()` use.
    const NAME: &'static str;

    /// `acc[j] += w[j]` (wrapping) for `j < w.len()`; `acc` must be at least as long.
    fn add_i16(self, acc: &mut [i16], w: &[i16]);

    /// `acc[j] += w[j]` (wrapping) into `i32`, for `j < w.len()`; `acc` must be at least as long.
    fn add_i32(self, acc: &mut [i32], w: &[i16]);

    /// `acc[j] -= w[j]` (wrapping) for `j < w.len()`; `acc` must be at least as long.
    fn sub_i16(self, acc: &mut [i16], w: &[i16]);

    /// `acc[j] -= w[j]` (wrapping) into `i32`, for `j < w.len()`.
    fn sub_i32(self, acc: &mut [i32], w: &[i16]);

    /// `acc[j] += w` (wrapping) for every set bit `j` of `bits`; `bits` must have no bit at or
    /// above `acc.len()` (at most 32).
    fn add_bits_i16(self, acc: &mut [i16], bits: u32, w: i16);

    /// `acc[j] += w` into `i32` for every set bit `j` of `bits`, as [`Kernels::add_bits_i16`].
    fn add_bits_i32(self, acc: &mut [i32], bits: u32, w: i16);

    /// The leak-free [`crate::neuron::update_layer`] with an `i16` accumulator.
    fn update_i16(self, v: &mut [i32], acc: &mut [i16], mask: &mut [u64], bias: &[i32], th: i32);

    /// The leak-free [`crate::neuron::update_layer`] with an `i32` accumulator.
    fn update_i32(self, v: &mut [i32], acc: &mut [i32], mask: &mut [u64], bias: &[i32], th: i32);

    /// Run `task` compiled with this kernel set's instruction set.
    fn run<T: Task>(self, task: T) -> T::Output;
}

/// Plain Rust kernels: any processor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Portable;

impl Kernels for Portable {
    const NAME: &'static str = "portable";

    #[inline(always)]
    fn add_i16(self, acc: &mut [i16], w: &[i16]) {
        let acc = &mut acc[..w.len()];
        for (a, b) in acc.iter_mut().zip(w) {
            *a = a.wrapping_add(*b);
        }
    }

    #[inline(always)]
    fn add_i32(self, acc: &mut [i32], w: &[i16]) {
        let acc = &mut acc[..w.len()];
        for (a, b) in acc.iter_mut().zip(w) {
            *a = a.wrapping_add(*b as i32);
        }
    }

    #[inline(always)]
    fn sub_i16(self, acc: &mut [i16], w: &[i16]) {
        let acc = &mut acc[..w.len()];
        for (a, b) in acc.iter_mut().zip(w) {
            *a = a.wrapping_sub(*b);
        }
    }

    #[inline(always)]
    fn sub_i32(self, acc: &mut [i32], w: &[i16]) {
        let acc = &mut acc[..w.len()];
        for (a, b) in acc.iter_mut().zip(w) {
            *a = a.wrapping_sub(*b as i32);
        }
    }

    #[inline(always)]
    fn add_bits_i16(self, acc: &mut [i16], bits: u32, w: i16) {
        let mut bits = bits;
        while bits != 0 {
            let a = &mut acc[bits.trailing_zeros() as usize];
            *a = a.wrapping_add(w);
            bits &= bits - 1;
        }
    }

    #[inline(always)]
    fn add_bits_i32(self, acc: &mut [i32], bits: u32, w: i16) {
        let mut bits = bits;
        while bits != 0 {
            let a = &mut acc[bits.trailing_zeros() as usize];
            *a = a.wrapping_add(w as i32);
            bits &= bits - 1;
        }
    }

    #[inline(always)]
    fn update_i16(self, v: &mut [i32], acc: &mut [i16], mask: &mut [u64], bias: &[i32], th: i32) {
        crate::neuron::update_layer::<i16, false>(v, acc, mask, bias, th, 0)
    }

    #[inline(always)]
    fn update_i32(self, v: &mut [i32], acc: &mut [i32], mask: &mut [u64], bias: &[i32], th: i32) {
        crate::neuron::update_layer::<i32, false>(v, acc, mask, bias, th, 0)
    }

    #[inline(always)]
    fn run<T: Task>(self, task: T) -> T::Output {
        task.run(self)
    }
}

/// AVX2 kernels (with the BMI1, BMI2 and POPCNT bit instructions every AVX2 processor has). A
/// value of this type proves the processor supports them: the only way to
/// make one is [`Avx2::detect`].
#[derive(Debug, Clone, Copy)]
pub struct Avx2 {
    _detected: (),
}

impl Avx2 {
    /// The AVX2 kernels, if this processor has AVX2.
    pub fn detect() -> Option<Avx2> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("popcnt")
        {
            return Some(Avx2 { _detected: () });
        }
        None
    }
}

/// Implements [`Kernels`] for a detection token `$ty` whose intrinsics live in module `$m`: the
/// update kernels need `bias.len()` to be a multiple of `$lanes` (else `$fallback` runs).
/// Off x86-64 the token can never be made (its `detect` returns `None`); the impl there only
/// lets the engine name the type on every target.
macro_rules! vector_kernels {
    ($ty:ty, $name:literal, $m:ident, $lanes:literal, |$k:ident| $fallback:expr) => {
        #[cfg(target_arch = "x86_64")]
        impl Kernels for $ty {
            const NAME: &'static str = $name;

            #[inline(always)]
            fn add_i16(self, acc: &mut [i16], w: &[i16]) {
                // SAFETY: `self` exists, so the processor has the instructions of module `$m`
                // (the only way to make the token is its `detect`).
                unsafe { $m::add_i16(acc, w) }
            }

            #[inline(always)]
            fn add_i32(self, acc: &mut [i32], w: &[i16]) {
                // SAFETY: as in `add_i16`.
                unsafe { $m::add_i32(acc, w) }
            }

            #[inline(always)]
            fn sub_i16(self, acc: &mut [i16], w: &[i16]) {
                // SAFETY: as in `add_i16`.
                unsafe { $m::sub_i16(acc, w) }
            }

            #[inline(always)]
            fn sub_i32(self, acc: &mut [i32], w: &[i16]) {
                // SAFETY: as in `add_i16`.
                unsafe { $m::sub_i32(acc, w) }
            }

            #[inline(always)]
            fn add_bits_i16(self, acc: &mut [i16], bits: u32, w: i16) {
                let n = acc.len().min(32);
                assert!(n == 32 || bits >> n == 0, "bits beyond the accumulator");
                // SAFETY: as in `add_i16`; only lanes whose bit is set are read and written,
                // and those are inside `acc` (checked above).
                unsafe { $m::add_bits_i16(acc, bits, w) }
            }

            #[inline(always)]
            fn add_bits_i32(self, acc: &mut [i32], bits: u32, w: i16) {
                let n = acc.len().min(32);
                assert!(n == 32 || bits >> n == 0, "bits beyond the accumulator");
                // SAFETY: as in `add_bits_i16`.
                unsafe { $m::add_bits_i32(acc, bits, w) }
            }

            #[inline(always)]
            fn update_i16(
                self,
                v: &mut [i32],
                acc: &mut [i16],
                mask: &mut [u64],
                bias: &[i32],
                th: i32,
            ) {
                let $k = self;
                if bias.len().is_multiple_of($lanes) {
                    // SAFETY: as in `add_i16`; `bias.len()` is a multiple of the vector width
                    // as the kernel requires (it checks the other lengths itself).
                    unsafe { $m::update_i16(v, acc, mask, bias, th) }
                } else {
                    $fallback.update_i16(v, acc, mask, bias, th)
                }
            }

            #[inline(always)]
            fn update_i32(
                self,
                v: &mut [i32],
                acc: &mut [i32],
                mask: &mut [u64],
                bias: &[i32],
                th: i32,
            ) {
                let $k = self;
                if bias.len().is_multiple_of($lanes) {
                    // SAFETY: as in `update_i16`.
                    unsafe { $m::update_i32(v, acc, mask, bias, th) }
                } else {
                    $fallback.update_i32(v, acc, mask, bias, th)
                }
            }

            #[inline(always)]
            fn run<T: Task>(self, task: T) -> T::Output {
                // SAFETY: as in `add_i16`.
                unsafe { $m::run(self, task) }
            }
        }

        #[cfg(not(target_arch = "x86_64"))]
        impl Kernels for $ty {
            const NAME: &'static str = $name;
            fn add_i16(self, acc: &mut [i16], w: &[i16]) {
                Portable.add_i16(acc, w)
            }
            fn add_i32(self, acc: &mut [i32], w: &[i16]) {
                Portable.add_i32(acc, w)
            }
            fn sub_i16(self, acc: &mut [i16], w: &[i16]) {
                Portable.sub_i16(acc, w)
            }
            fn sub_i32(self, acc: &mut [i32], w: &[i16]) {
                Portable.sub_i32(acc, w)
            }
            fn add_bits_i16(self, acc: &mut [i16], bits: u32, w: i16) {
                Portable.add_bits_i16(acc, bits, w)
            }
            fn add_bits_i32(self, acc: &mut [i32], bits: u32, w: i16) {
                Portable.add_bits_i32(acc, bits, w)
            }
            fn update_i16(self, v: &mut [i32], a: &mut [i16], m: &mut [u64], b: &[i32], t: i32) {
                Portable.update_i16(v, a, m, b, t)
            }
            fn update_i32(self, v: &mut [i32], a: &mut [i32], m: &mut [u64], b: &[i32], t: i32) {
                Portable.update_i32(v, a, m, b, t)
            }
            fn run<T: Task>(self, task: T) -> T::Output {
                task.run(self)
            }
        }
    };
}

vector_kernels!(Avx2, "avx2", avx2, 8, |_k| Portable);

/// AVX-512 kernels (F, BW and VL, with AVX2). A value of this type proves the processor has
/// them: the only way to make one is [`Avx512::detect`].
#[derive(Debug, Clone, Copy)]
pub struct Avx512 {
    avx2: Avx2,
}

impl Avx512 {
    /// The AVX-512 kernels, if this processor has AVX-512 F, BW and VL (and AVX2).
    pub fn detect() -> Option<Avx512> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
        {
            return Avx2::detect().map(|avx2| Avx512 { avx2 });
        }
        None
    }
}

vector_kernels!(Avx512, "avx512", avx512, 16, |k| k.avx2);

/// Which kernel set a run uses.
#[derive(Debug, Clone, Copy)]
pub enum Choice {
    Portable(Portable),
    Avx2(Avx2),
    Avx512(Avx512),
}

impl Choice {
    /// The kernel set named `request` (`None`: the best this processor has).
    ///
    /// Errors (`Config`) for an unknown name or one this processor cannot run.
    pub fn resolve(request: Option<&str>) -> Result<Choice> {
        let (avx2, avx512) = (Avx2::detect(), Avx512::detect());
        let missing = |name: &str| {
            Error::config(format!(
                "{ENV}={name}, but this processor cannot run it; available: {}",
                available().join(", ")
            ))
        };
        match request.map(str::trim) {
            None | Some("") => Ok(match (avx512, avx2) {
                (Some(k), _) => Choice::Avx512(k),
                (None, Some(k)) => Choice::Avx2(k),
                (None, None) => Choice::Portable(Portable),
            }),
            Some("portable") => Ok(Choice::Portable(Portable)),
            Some("avx2") => avx2.map(Choice::Avx2).ok_or_else(|| missing("avx2")),
            Some("avx512") => avx512.map(Choice::Avx512).ok_or_else(|| missing("avx512")),
            Some(other) => Err(Error::config(format!(
                "{ENV} must be one of portable, avx2, avx512 (or unset for the best available), \
                 got {other:?}"
            ))),
        }
    }

    /// The kernel set `SNNFAST_KERNELS` asks for (the best available when it is unset).
    pub fn from_env() -> Result<Choice> {
        match std::env::var(ENV) {
            Ok(v) => Choice::resolve(Some(&v)),
            Err(std::env::VarError::NotPresent) => Choice::resolve(None),
            Err(std::env::VarError::NotUnicode(v)) => Err(Error::config(format!(
                "{ENV} must be one of portable, avx2, avx512, got {v:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Choice::Portable(_) => Portable::NAME,
            Choice::Avx2(_) => Avx2::NAME,
            Choice::Avx512(_) => Avx512::NAME,
        }
    }
}

/// Names of the kernel sets this processor can run, best last.
pub fn available() -> Vec<&'static str> {
    let mut out = vec![Portable::NAME];
    if Avx2::detect().is_some() {
        out.push(Avx2::NAME);
    }
    if Avx512::detect().is_some() {
        out.push(Avx512::NAME);
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 intrinsics. Every function here is `unsafe`: the caller guarantees AVX2 (and BMI1,
    //! BMI2, POPCNT).

    use std::arch::x86_64::*;

    use super::{Kernels, Portable, Task};

    /// Runs `task` inside a function compiled with AVX2 enabled.
    ///
    /// # Safety
    /// The processor must support AVX2, BMI1, BMI2 and POPCNT.
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
    pub unsafe fn run<T: Task>(k: super::Avx2, task: T) -> T::Output {
        task.run(k)
    }

    /// AVX2 `acc[j] op= w[j]` over a run, for i16 (`$op16`) and i32 accumulators (`$op32`).
    macro_rules! run_kernels {
        ($name16:ident, $name32:ident, $op16:ident, $op32:ident, $portable16:ident, $portable32:ident) => {
            /// AVX2 run kernel for i16 accumulators.
            ///
            /// # Safety
            /// The processor must support AVX2, BMI1, BMI2 and POPCNT.
            #[inline]
            #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
            pub unsafe fn $name16(acc: &mut [i16], w: &[i16]) {
                let n = w.len();
                assert!(acc.len() >= n);
                let (pa, pw) = (acc.as_mut_ptr(), w.as_ptr());
                let mut j = 0;
                while j + 16 <= n {
                    // SAFETY: j + 16 <= n <= the length of both slices; unaligned access.
                    unsafe {
                        let a = _mm256_loadu_si256(pa.add(j) as *const __m256i);
                        let b = _mm256_loadu_si256(pw.add(j) as *const __m256i);
                        _mm256_storeu_si256(pa.add(j) as *mut __m256i, $op16(a, b));
                    }
                    j += 16;
                }
                Portable.$portable16(&mut acc[j..n], &w[j..]);
            }

            /// AVX2 run kernel for i32 accumulators and i16 weights.
            ///
            /// # Safety
            /// The processor must support AVX2, BMI1, BMI2 and POPCNT.
            #[inline]
            #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
            pub unsafe fn $name32(acc: &mut [i32], w: &[i16]) {
                let n = w.len();
                assert!(acc.len() >= n);
                let (pa, pw) = (acc.as_mut_ptr(), w.as_ptr());
                let mut j = 0;
                while j + 8 <= n {
                    // SAFETY: j + 8 <= n <= the length of both slices; unaligned access.
                    unsafe {
                        let a = _mm256_loadu_si256(pa.add(j) as *const __m256i);
                        let b = _mm256_cvtepi16_epi32(_mm_loadu_si128(pw.add(j) as *const __m128i));
                        _mm256_storeu_si256(pa.add(j) as *mut __m256i, $op32(a, b));
                    }
                    j += 8;
                }
                Portable.$portable32(&mut acc[j..n], &w[j..]);
            }
        };
    }

    run_kernels!(
        add_i16,
        add_i32,
        _mm256_add_epi16,
        _mm256_add_epi32,
        add_i16,
        add_i32
    );
    run_kernels!(
        sub_i16,
        sub_i32,
        _mm256_sub_epi16,
        _mm256_sub_epi32,
        sub_i16,
        sub_i32
    );

    /// The lanes of 16 i16 (or 8 i32) whose bit is set in `bits`, as all-ones lanes.
    #[inline]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
    fn lanes16(bits: u32) -> __m256i {
        // Lane j holds 2^j; a lane is selected when its bit survives the AND.
        let sel = _mm256_setr_epi16(
            1,
            2,
            4,
            8,
            16,
            32,
            64,
            128,
            256,
            512,
            1024,
            2048,
            4096,
            8192,
            16384,
            i16::MIN,
        );
        let b = _mm256_set1_epi16(bits as u16 as i16);
        _mm256_cmpeq_epi16(_mm256_and_si256(b, sel), sel)
    }

    /// AVX2 `acc[j] += w` where bit `j` of `bits` is set, 16 lanes a vector where 16 lanes
    /// of `acc` exist (adding 0 to the lanes without a bit), one lane at a time elsewhere.
    ///
    /// # Safety
    /// The processor must support AVX2, BMI1, BMI2 and POPCNT.
    #[inline]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
    pub unsafe fn add_bits_i16(acc: &mut [i16], bits: u32, w: i16) {
        let wv = _mm256_set1_epi16(w);
        for half in 0..2 {
            let b = (bits >> (16 * half)) & 0xffff;
            if b == 0 {
                continue;
            }
            let lo = 16 * half;
            if acc.len() >= lo + 16 {
                let add = _mm256_and_si256(wv, lanes16(b));
                let p = acc[lo..lo + 16].as_mut_ptr() as *mut __m256i;
                // SAFETY: the 16 lanes from `lo` are inside `acc` (checked); unaligned access.
                unsafe { _mm256_storeu_si256(p, _mm256_add_epi16(_mm256_loadu_si256(p), add)) };
            } else {
                super::Portable.add_bits_i16(&mut acc[lo..], b, w);
            }
        }
    }

    /// AVX2 `acc[j] += w` into i32 where bit `j` of `bits` is set (one lane at a time).
    ///
    /// # Safety
    /// The processor must support AVX2, BMI1, BMI2 and POPCNT.
    #[inline]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
    pub unsafe fn add_bits_i32(acc: &mut [i32], bits: u32, w: i16) {
        super::Portable.add_bits_i32(acc, bits, w)
    }

    /// The leak-free neuron update of `crate::neuron::update_layer`, 8 neurons a vector, with
    /// the spike bits taken straight from the comparison and collected in a register: each
    /// mask word is written once (not read and rewritten eight times).
    macro_rules! update_kernel {
        ($name:ident, $acc:ty, $load:expr, $zero:expr) => {
            /// # Safety
            /// The processor must support AVX2, BMI1, BMI2 and POPCNT. Panics unless
            /// `bias.len() % 8 == 0`, `v.len() % bias.len() == 0`, `acc.len() == v.len()` and
            /// the mask is long enough.
            #[inline]
            #[target_feature(enable = "avx2,bmi1,bmi2,popcnt")]
            pub unsafe fn $name(
                v: &mut [i32],
                acc: &mut [$acc],
                mask: &mut [u64],
                bias: &[i32],
                threshold: i32,
            ) {
                let (n, c) = (v.len(), bias.len());
                assert!(c > 0 && c % 8 == 0 && n % c == 0);
                assert!(acc.len() == n && mask.len() * 64 >= n);
                let th_minus_1 = _mm256_set1_epi32(threshold - 1);
                let th = _mm256_set1_epi32(threshold);
                let lo = _mm256_set1_epi32(crate::neuron::V_MIN);
                let hi = _mm256_set1_epi32(crate::neuron::V_MAX);
                let (pv, pa, pb) = (v.as_mut_ptr(), acc.as_mut_ptr(), bias.as_ptr());
                let mut word = 0u64;
                let mut i = 0;
                while i < n {
                    for j in (0..c).step_by(8) {
                        let g = i + j;
                        // SAFETY: g + 8 <= n (c divides n, 8 divides c) and j + 8 <= c, so
                        // every load and store is inside `v`, `acc` and `bias` (checked above).
                        unsafe {
                            let pvi = pv.add(g) as *mut __m256i;
                            let z = _mm256_add_epi32(
                                _mm256_loadu_si256(pb.add(j) as *const __m256i),
                                $load(pa.add(g)),
                            );
                            let x = _mm256_add_epi32(_mm256_loadu_si256(pvi), z);
                            let x = _mm256_min_epi32(_mm256_max_epi32(x, lo), hi);
                            let spike = _mm256_cmpgt_epi32(x, th_minus_1);
                            _mm256_storeu_si256(
                                pvi,
                                _mm256_sub_epi32(x, _mm256_and_si256(spike, th)),
                            );
                            $zero(pa.add(g));
                            let bits = _mm256_movemask_ps(_mm256_castsi256_ps(spike)) as u64;
                            word |= bits << (g & 63);
                        }
                        // The word is complete after its last 8 neurons or the layer's last.
                        if g & 63 == 56 || g + 8 == n {
                            mask[g >> 6] = word;
                            word = 0;
                        }
                    }
                    i += c;
                }
            }
        };
    }

    update_kernel!(
        update_i16,
        i16,
        |p: *mut i16| _mm256_cvtepi16_epi32(_mm_loadu_si128(p as *const __m128i)),
        |p: *mut i16| _mm_storeu_si128(p as *mut __m128i, _mm_setzero_si128())
    );
    update_kernel!(
        update_i32,
        i32,
        |p: *mut i32| _mm256_loadu_si256(p as *const __m256i),
        |p: *mut i32| _mm256_storeu_si256(p as *mut __m256i, _mm256_setzero_si256())
    );
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The AVX-512 intrinsics. Every function here is `unsafe`: the caller guarantees AVX-512
    //! F, BW and VL, and AVX2. Tails shorter than a vector use masked loads and stores (masked-off
    //! lanes are neither read nor written).

    use std::arch::x86_64::*;

    use super::Task;

    /// Runs `task` inside a function compiled with AVX-512 (and AVX2) enabled.
    ///
    /// # Safety
    /// The processor must support AVX-512 F, BW, VL and AVX2.
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,avx512f,avx512bw,avx512vl")]
    pub unsafe fn run<T: Task>(k: super::Avx512, task: T) -> T::Output {
        task.run(k)
    }

    /// AVX-512 `acc[j] op= w[j]` over a run, for i16 (`$op16`, 32 lanes a vector) and i32
    /// accumulators (`$op32`, 16 lanes), masked tails.
    macro_rules! run_kernels {
        ($name16:ident, $name32:ident, $op16:ident, $op32:ident) => {
            /// AVX-512 run kernel for i16 accumulators.
            ///
            /// # Safety
            /// The processor must support AVX-512 F, BW and VL and the AVX2 set.
            #[inline]
            #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,avx512f,avx512bw,avx512vl")]
            pub unsafe fn $name16(acc: &mut [i16], w: &[i16]) {
                let n = w.len();
                assert!(acc.len() >= n);
                let (pa, pw) = (acc.as_mut_ptr(), w.as_ptr());
                let mut j = 0;
                while j + 32 <= n {
                    // SAFETY: j + 32 <= n <= the length of both slices; unaligned access.
                    unsafe {
                        let a = _mm512_loadu_si512(pa.add(j) as *const __m512i);
                        let b = _mm512_loadu_si512(pw.add(j) as *const __m512i);
                        _mm512_storeu_si512(pa.add(j) as *mut __m512i, $op16(a, b));
                    }
                    j += 32;
                }
                if j < n {
                    // n − j < 32 lanes remain.
                    let m: __mmask32 = (1u32 << (n - j)) - 1;
                    // SAFETY: only the first n − j lanes are read and written (the mask), and
                    // those lie inside both slices.
                    unsafe {
                        let a = _mm512_maskz_loadu_epi16(m, pa.add(j));
                        let b = _mm512_maskz_loadu_epi16(m, pw.add(j));
                        _mm512_mask_storeu_epi16(pa.add(j), m, $op16(a, b));
                    }
                }
            }

            /// AVX-512 run kernel for i32 accumulators and i16 weights.
            ///
            /// # Safety
            /// The processor must support AVX-512 F, BW and VL and the AVX2 set.
            #[inline]
            #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,avx512f,avx512bw,avx512vl")]
            pub unsafe fn $name32(acc: &mut [i32], w: &[i16]) {
                let n = w.len();
                assert!(acc.len() >= n);
                let (pa, pw) = (acc.as_mut_ptr(), w.as_ptr());
                let mut j = 0;
                while j + 16 <= n {
                    // SAFETY: j + 16 <= n <= the length of both slices; unaligned access.
                    unsafe {
                        let a = _mm512_loadu_si512(pa.add(j) as *const __m512i);
                        let b =
                            _mm512_cvtepi16_epi32(_mm256_loadu_si256(pw.add(j) as *const __m256i));
                        _mm512_storeu_si512(pa.add(j) as *mut __m512i, $op32(a, b));
                    }
                    j += 16;
                }
                if j < n {
                    // n − j < 16 lanes remain.
                    let m: __mmask16 = ((1u32 << (n - j)) - 1) as u16;
                    // SAFETY: only the first n − j lanes are read and written (the mask), and
                    // those lie inside both slices.
                    unsafe {
                        let a = _mm512_maskz_loadu_epi32(m, pa.add(j));
                        let b = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, pw.add(j)));
                        _mm512_mask_storeu_epi32(pa.add(j), m, $op32(a, b));
                    }
                }
            }
        };
    }

    run_kernels!(add_i16, add_i32, _mm512_add_epi16, _mm512_add_epi32);
    run_kernels!(sub_i16, sub_i32, _mm512_sub_epi16, _mm512_sub_epi32);

    /// AVX-512 `acc[j] += w` where bit `j` of `bits` is set (a masked load, add and store: lanes
    /// without a bit are neither read nor written).
    ///
    /// # Safety
    /// The processor must support AVX-512 F, BW and VL and the AVX2 set; `bits` selects only
    /// lanes inside `acc`.
    #[inline]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,avx512f,avx512bw,avx512vl")]
    pub unsafe fn add_bits_i16(acc: &mut [i16], bits: u32, w: i16) {
        let acc = acc.as_mut_ptr();
        // SAFETY: only the lanes selected by `bits` are accessed (the caller's guarantee).
        unsafe {
            let a = _mm512_maskz_loadu_epi16(bits, acc);
            _mm512_mask_storeu_epi16(acc, bits, _mm512_add_epi16(a, _mm512_set1_epi16(w)));
        }
    }

    /// AVX-512 `acc[j] += w` into i32 where bit `j` of `bits` is set, 16 lanes at a time.
    ///
    /// # Safety
    /// As [`add_bits_i16`].
    #[inline]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,avx512f,avx512bw,avx512vl")]
    pub unsafe fn add_bits_i32(acc: &mut [i32], bits: u32, w: i16) {
        let acc = acc.as_mut_ptr();
        let wv = _mm512_set1_epi32(w as i32);
        for half in 0..2 {
            let b = ((bits >> (16 * half)) & 0xffff) as __mmask16;
            if b != 0 {
                let p = acc.wrapping_add(16 * half);
                // SAFETY: only the lanes selected by `b` are accessed (the caller's guarantee).
                unsafe {
                    let a = _mm512_maskz_loadu_epi32(b, p);
                    _mm512_mask_storeu_epi32(p, b, _mm512_add_epi32(a, wv));
                }
            }
        }
    }

    /// The leak-free neuron update of `crate::neuron::update_layer`, 16 neurons a vector, the
    /// spike bits straight from the comparison mask, collected in a register so that each mask
    /// word is written once.
    macro_rules! update_kernel {
        ($name:ident, $acc:ty, $load:expr, $zero:expr) => {
            /// # Safety
            /// The processor must support AVX-512 F, BW and VL and the AVX2 set. Panics unless
            /// `bias.len() % 16 == 0`, `v.len() % bias.len() == 0`, `acc.len() == v.len()` and
            /// the mask is long enough.
            #[inline]
            #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,avx512f,avx512bw,avx512vl")]
            pub unsafe fn $name(
                v: &mut [i32],
                acc: &mut [$acc],
                mask: &mut [u64],
                bias: &[i32],
                threshold: i32,
            ) {
                let (n, c) = (v.len(), bias.len());
                assert!(c > 0 && c % 16 == 0 && n % c == 0);
                assert!(acc.len() == n && mask.len() * 64 >= n);
                let th = _mm512_set1_epi32(threshold);
                let lo = _mm512_set1_epi32(crate::neuron::V_MIN);
                let hi = _mm512_set1_epi32(crate::neuron::V_MAX);
                let (pv, pa, pb) = (v.as_mut_ptr(), acc.as_mut_ptr(), bias.as_ptr());
                // 16 neurons: the new potentials stored, the input cleared, the spike bits
                // returned.
                let lanes = |g: usize, j: usize| -> __mmask16 {
                    // SAFETY: the callers keep g + 16 <= n and j + 16 <= c (below), so every
                    // load and store is inside `v`, `acc` and `bias`.
                    unsafe {
                        let pvi = pv.add(g) as *mut __m512i;
                        let z = _mm512_add_epi32(
                            _mm512_loadu_si512(pb.add(j) as *const __m512i),
                            $load(pa.add(g)),
                        );
                        let x = _mm512_add_epi32(_mm512_loadu_si512(pvi), z);
                        let x = _mm512_min_epi32(_mm512_max_epi32(x, lo), hi);
                        let spike: __mmask16 = _mm512_cmpge_epi32_mask(x, th);
                        _mm512_storeu_si512(pvi, _mm512_mask_sub_epi32(x, spike, x, th));
                        $zero(pa.add(g));
                        spike
                    }
                };
                if c % 64 == 0 {
                    // Whole mask words: 64 neurons (c divides n, 64 divides c), one store.
                    let mut i = 0;
                    while i < n {
                        for j in (0..c).step_by(64) {
                            let g = i + j;
                            let word = (lanes(g, j) as u64)
                                | (lanes(g + 16, j + 16) as u64) << 16
                                | (lanes(g + 32, j + 32) as u64) << 32
                                | (lanes(g + 48, j + 48) as u64) << 48;
                            mask[g >> 6] = word;
                        }
                        i += c;
                    }
                    return;
                }
                let mut word = 0u64;
                let mut i = 0;
                while i < n {
                    for j in (0..c).step_by(16) {
                        // g + 16 <= n (c divides n, 16 divides c) and j + 16 <= c.
                        let g = i + j;
                        // g is a multiple of 16: the 16 bits stay inside one word.
                        word |= (lanes(g, j) as u64) << (g & 63);
                        // The word is complete after its last 16 neurons or the layer's last.
                        if g & 63 == 48 || g + 16 == n {
                            mask[g >> 6] = word;
                            word = 0;
                        }
                    }
                    i += c;
                }
            }
        };
    }

    update_kernel!(
        update_i16,
        i16,
        |p: *mut i16| _mm512_cvtepi16_epi32(_mm256_loadu_si256(p as *const __m256i)),
        |p: *mut i16| _mm256_storeu_si256(p as *mut __m256i, _mm256_setzero_si256())
    );
    update_kernel!(
        update_i32,
        i32,
        |p: *mut i32| _mm512_loadu_si512(p as *const __m512i),
        |p: *mut i32| _mm512_storeu_si512(p as *mut __m512i, _mm512_setzero_si512())
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neuron::{V_MAX, V_MIN};

    /// Checks one kernel set against the portable one on awkward lengths and values.
    fn matches_portable<K: Kernels>(k: K) {
        let w: Vec<i16> = (0..53).map(|i| (i * 977 % 6000) as i16 - 3000).collect();
        for len in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 53] {
            let mut a16: Vec<i16> = (0..60).map(|i| (i * 31) as i16 - 900).collect();
            let mut b16 = a16.clone();
            Portable.add_i16(&mut a16, &w[..len]);
            k.add_i16(&mut b16, &w[..len]);
            assert_eq!(a16, b16);
            let mut a32: Vec<i32> = (0..60).map(|i| i * 100_003 - 2_000_000).collect();
            let mut b32 = a32.clone();
            Portable.add_i32(&mut a32, &w[..len]);
            k.add_i32(&mut b32, &w[..len]);
            assert_eq!(a32, b32);
            Portable.sub_i16(&mut a16, &w[..len]);
            k.sub_i16(&mut b16, &w[..len]);
            assert_eq!(a16, b16);
            Portable.sub_i32(&mut a32, &w[..len]);
            k.sub_i32(&mut b32, &w[..len]);
            assert_eq!(a32, b32);
        }
        for c in [8usize, 16, 3, 32, 48, 64, 128, 192] {
            let n = c * 13;
            let mut v0: Vec<i32> = (0..n as i64)
                .map(|i| ((i * 7919) % 4001 - 2000) as i32)
                .collect();
            v0[3] = V_MAX;
            v0[4] = V_MIN;
            let bias: Vec<i32> = (0..c as i32).map(|j| j * 37 - 200).collect();
            let a16: Vec<i16> = (0..n).map(|i| ((i * 131) % 3001) as i16 - 1500).collect();
            let a32: Vec<i32> = a16.iter().map(|&a| a as i32 * 1000).collect();
            let words = crate::neuron::mask_words(n);
            for threshold in [1, 250, 1 << 22] {
                let (mut va, mut vb) = (v0.clone(), v0.clone());
                let (mut aa, mut ab) = (a16.clone(), a16.clone());
                let (mut ma, mut mb) = (vec![0u64; words], vec![u64::MAX; words]);
                Portable.update_i16(&mut va, &mut aa, &mut ma, &bias, threshold);
                k.update_i16(&mut vb, &mut ab, &mut mb, &bias, threshold);
                assert_eq!((va, aa, ma), (vb, ab, mb));
                let (mut va, mut vb) = (v0.clone(), v0.clone());
                let (mut aa, mut ab) = (a32.clone(), a32.clone());
                let (mut ma, mut mb) = (vec![0u64; words], vec![0u64; words]);
                Portable.update_i32(&mut va, &mut aa, &mut ma, &bias, threshold);
                k.update_i32(&mut vb, &mut ab, &mut mb, &bias, threshold);
                assert_eq!((va, aa, ma), (vb, ab, mb));
            }
        }
    }

    #[test]
    fn every_available_kernel_set_matches_portable() {
        matches_portable(Portable);
        if let Some(k) = Avx2::detect() {
            matches_portable(k);
        }
        if let Some(k) = Avx512::detect() {
            matches_portable(k);
        }
    }

    #[test]
    fn choice_follows_the_request() {
        assert_eq!(
            Choice::resolve(Some("portable")).unwrap().name(),
            "portable"
        );
        assert!(Choice::resolve(Some("avx9")).is_err());
        let best = Choice::resolve(None).unwrap().name();
        assert_eq!(best, *available().last().unwrap());
        match Avx2::detect() {
            Some(_) => assert_eq!(Choice::resolve(Some("avx2")).unwrap().name(), "avx2"),
            None => assert!(Choice::resolve(Some("avx2")).is_err()),
        }
        match Avx512::detect() {
            Some(_) => assert_eq!(Choice::resolve(Some("avx512")).unwrap().name(), "avx512"),
            None => assert!(Choice::resolve(Some("avx512")).is_err()),
        }
    }
}
