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
}

#[cfg(target_arch = "x86_64")]
pub use avx2::{add_i16 as add_i16_avx2, add_i32 as add_i32_avx2};

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
}
