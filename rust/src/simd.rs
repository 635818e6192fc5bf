//! Vector kernels of the synaptic scatter: `acc[j] += w[j]` over a run of output channels.
//!
//! Written with explicit AVX2 intrinsics because the compiler cannot always prove that the
//! accumulator and the weights do not overlap once the scatter is inlined; the portable
//! versions are plain loops. Both compute the same integers.

/// `acc[j] = acc[j] + w[j]` (wrapping) for i16 accumulators.
#[inline(always)]
pub fn add_i16(acc: &mut [i16], w: &[i16]) {
    let acc = &mut acc[..w.len()];
    for (a, b) in acc.iter_mut().zip(w) {
        *a = a.wrapping_add(*b);
    }
}

/// `acc[j] = acc[j] + w[j]` (wrapping) for i32 accumulators and i16 weights.
#[inline(always)]
pub fn add_i32(acc: &mut [i32], w: &[i16]) {
    let acc = &mut acc[..w.len()];
    for (a, b) in acc.iter_mut().zip(w) {
        *a = a.wrapping_add(*b as i32);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// AVX2 version of [`super::add_i16`].
    ///
    /// # Safety
    /// The processor must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_i16(acc: &mut [i16], w: &[i16]) {
        let n = w.len();
        assert!(acc.len() >= n);
        let (pa, pw) = (acc.as_mut_ptr(), w.as_ptr());
        let mut j = 0;
        while j + 16 <= n {
            // SAFETY: j + 16 <= n <= len of both slices.
            unsafe {
                let a = _mm256_loadu_si256(pa.add(j) as *const __m256i);
                let b = _mm256_loadu_si256(pw.add(j) as *const __m256i);
                _mm256_storeu_si256(pa.add(j) as *mut __m256i, _mm256_add_epi16(a, b));
            }
            j += 16;
        }
        super::add_i16(&mut acc[j..n], &w[j..]);
    }

    /// AVX2 version of [`super::add_i32`].
    ///
    /// # Safety
    /// The processor must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_i32(acc: &mut [i32], w: &[i16]) {
        let n = w.len();
        assert!(acc.len() >= n);
        let (pa, pw) = (acc.as_mut_ptr(), w.as_ptr());
        let mut j = 0;
        while j + 8 <= n {
            // SAFETY: j + 8 <= n <= len of both slices.
            unsafe {
                let a = _mm256_loadu_si256(pa.add(j) as *const __m256i);
                let b = _mm256_cvtepi16_epi32(_mm_loadu_si128(pw.add(j) as *const __m128i));
                _mm256_storeu_si256(pa.add(j) as *mut __m256i, _mm256_add_epi32(a, b));
            }
            j += 8;
        }
        super::add_i32(&mut acc[j..n], &w[j..]);
    }

    /// The leak-free neuron update of `crate::neuron::update_layer`, 8 neurons a vector, with
    /// the spike bits taken straight from the comparison. Needs `bias.len() % 8 == 0`.
    macro_rules! update_kernel {
        ($name:ident, $acc:ty, $load:expr, $zero:expr) => {
            /// # Safety
            /// The processor must support AVX2.
            #[inline]
            #[target_feature(enable = "avx2")]
            pub unsafe fn $name(
                v: &mut [i32],
                acc: &mut [$acc],
                mask: &mut [u64],
                bias: &[i32],
                threshold: i32,
            ) {
                let (n, c) = (v.len(), bias.len());
                assert!(c % 8 == 0 && n % c == 0 && acc.len() == n && mask.len() * 64 >= n);
                mask.fill(0);
                let th_minus_1 = _mm256_set1_epi32(threshold - 1);
                let th = _mm256_set1_epi32(threshold);
                let lo = _mm256_set1_epi32(crate::neuron::V_MIN);
                let hi = _mm256_set1_epi32(crate::neuron::V_MAX);
                let (pv, pa, pb, pm) = (v.as_mut_ptr(), acc.as_mut_ptr(), bias.as_ptr(), mask);
                let mut i = 0;
                while i < n {
                    for j in (0..c).step_by(8) {
                        // SAFETY: i + j + 8 <= n (c divides n, 8 divides c), j + 8 <= c.
                        unsafe {
                            let pvi = pv.add(i + j) as *mut __m256i;
                            let z = _mm256_add_epi32(
                                _mm256_loadu_si256(pb.add(j) as *const __m256i),
                                $load(pa.add(i + j)),
                            );
                            let x = _mm256_add_epi32(_mm256_loadu_si256(pvi), z);
                            let x = _mm256_min_epi32(_mm256_max_epi32(x, lo), hi);
                            let spike = _mm256_cmpgt_epi32(x, th_minus_1);
                            _mm256_storeu_si256(
                                pvi,
                                _mm256_sub_epi32(x, _mm256_and_si256(spike, th)),
                            );
                            $zero(pa.add(i + j));
                            let bits = _mm256_movemask_ps(_mm256_castsi256_ps(spike)) as u64;
                            pm[(i + j) >> 6] |= bits << ((i + j) & 63);
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
pub use avx2::{
    add_i16 as add_i16_avx2, add_i32 as add_i32_avx2, update_i16 as update_i16_avx2,
    update_i32 as update_i32_avx2,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_matches_portable() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let w: Vec<i16> = (0..53).map(|i| (i * 977 % 6000) as i16 - 3000).collect();
        let mut a16: Vec<i16> = (0..60).map(|i| (i * 31) as i16 - 900).collect();
        let mut b16 = a16.clone();
        add_i16(&mut a16, &w);
        unsafe { add_i16_avx2(&mut b16, &w) };
        assert_eq!(a16, b16);
        let mut a32: Vec<i32> = (0..60).map(|i| i * 100_003 - 2_000_000).collect();
        let mut b32 = a32.clone();
        add_i32(&mut a32, &w);
        unsafe { add_i32_avx2(&mut b32, &w) };
        assert_eq!(a32, b32);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_update_matches_portable() {
        use crate::neuron::{update_layer, V_MAX, V_MIN};
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let (n, c) = (16 * 13usize, 16usize);
        let v0: Vec<i32> = (0..n as i64)
            .map(|i| ((i * 7919) % 4001 - 2000) as i32)
            .collect();
        let mut v0 = v0;
        v0[3] = V_MAX;
        v0[4] = V_MIN;
        let bias: Vec<i32> = (0..c as i32).map(|j| j * 37 - 200).collect();
        let a16: Vec<i16> = (0..n).map(|i| ((i * 131) % 3001) as i16 - 1500).collect();
        let a32: Vec<i32> = a16.iter().map(|&a| a as i32 * 1000).collect();
        for threshold in [1, 250, 1 << 22] {
            let (mut va, mut vb) = (v0.clone(), v0.clone());
            let (mut aa, mut ab) = (a16.clone(), a16.clone());
            let (mut ma, mut mb) = (vec![0u64; 4], vec![u64::MAX; 4]);
            update_layer::<i16, false>(&mut va, &mut aa, &mut ma, &bias, threshold, 0);
            unsafe { update_i16_avx2(&mut vb, &mut ab, &mut mb, &bias, threshold) };
            assert_eq!((va, aa, ma), (vb, ab, mb));
            let (mut va, mut vb) = (v0.clone(), v0.clone());
            let (mut aa, mut ab) = (a32.clone(), a32.clone());
            let (mut ma, mut mb) = (vec![0u64; 4], vec![0u64; 4]);
            update_layer::<i32, false>(&mut va, &mut aa, &mut ma, &bias, threshold, 0);
            unsafe { update_i32_avx2(&mut vb, &mut ab, &mut mb, &bias, threshold) };
            assert_eq!((va, aa, ma), (vb, ab, mb));
        }
    }
}
