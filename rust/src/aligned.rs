//! Zeroed buffers whose first value starts a cache line, for the engine's hot state and weight
//! tables. The vector kernels read and write 64 bytes at a time, at offsets from the start of
//! the buffer that are multiples of 64 bytes wherever the layer's channels allow; a buffer
//! that starts a cache line then never splits one access over two lines (the allocator itself
//! only promises 16 bytes). Safe code: the buffer is a `Vec` with a line's worth of spare
//! values in front, of which the first `off` are skipped.

use crate::error::{zeroed, Error, Result};

/// Bytes of a cache line.
const LINE: usize = 64;

/// `len` values starting at a cache line (where the allocator allows it; otherwise, and for
/// types larger than a line, wherever the allocation starts).
pub(crate) struct Aligned<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Clone + Default> Aligned<T> {
    /// `n` zeros, allocated fallibly (a `Memory` error, not an abort).
    pub(crate) fn zeroed(n: usize, what: &str) -> Result<Self> {
        let pad = if n == 0 {
            0
        } else {
            LINE / std::mem::size_of::<T>().max(1)
        };
        let total = n
            .checked_add(pad)
            .ok_or_else(|| Error::allocation(what, None))?;
        let buf: Vec<T> = zeroed(total, what)?;
        let off = start(&buf, pad);
        Ok(Aligned { buf, off, len: n })
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl<T> std::ops::DerefMut for Aligned<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

impl<T: Clone + Default> Clone for Aligned<T> {
    fn clone(&self) -> Self {
        // A new allocation starts elsewhere: align it afresh.
        let pad = self.buf.len() - self.len;
        let buf = vec![T::default(); self.buf.len()];
        let off = start(&buf, pad);
        let mut out = Aligned {
            buf,
            off,
            len: self.len,
        };
        out.clone_from_slice(self);
        out
    }
}

/// The first index of `buf` at a cache line, if one is among the first `pad + 1`; else 0.
fn start<T>(buf: &[T], pad: usize) -> usize {
    match buf.as_ptr().align_offset(LINE) {
        off if off <= pad => off,
        _ => 0,
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_a_line_and_holds_its_values() {
        for n in [0usize, 1, 15, 16, 17, 1000, 25088] {
            let mut a: Aligned<i16> = Aligned::zeroed(n, "test").unwrap();
            assert_eq!(a.len(), n);
            assert!(a.iter().all(|&x| x == 0));
            if n > 0 {
                assert_eq!(a.as_ptr() as usize % LINE, 0);
            }
            for (i, x) in a.iter_mut().enumerate() {
                *x = i as i16;
            }
            let b = a.clone();
            assert_eq!(&b[..], &a[..]);
            if n > 0 {
                assert_eq!(b.as_ptr() as usize % LINE, 0);
            }
        }
    }
}
