//! Geometry of layers and of the windows (convolution and pooling) that connect them.
//!
//! Neurons are stored position-major with the channel innermost (H, W, C), so that the synapses
//! of one spike land on contiguous runs of output channels. Sizes are `usize`; validation keeps
//! every layer below [`MAX_NEURONS`] neurons so that a neuron index fits `u32`.

use crate::error::{Bytes, Error, Result};

/// Most neurons one layer may have: a neuron index (a spike) is a `u32`, and `u32::MAX` marks
/// "no target" in pooling tables.
pub const MAX_NEURONS: usize = u32::MAX as usize - 1;

/// Shape of a layer's neurons: channels × height × width (a dense layer is `O × 1 × 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    /// Neurons in the layer. Only call on validated shapes (see [`Shape::checked_size`]).
    pub fn size(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Neurons in the layer, or `None` if the product overflows.
    pub fn checked_size(&self) -> Option<usize> {
        self.c.checked_mul(self.h)?.checked_mul(self.w)
    }

    /// The input shape `(C, H, W)` as given, checked: each entry at least 1.
    pub fn checked((c, h, w): (i64, i64, i64)) -> Result<Shape> {
        if c < 1 || h < 1 || w < 1 {
            return Err(Error::shape(format!(
                "input_shape must be (C, H, W) with positive sizes, got ({c}, {h}, {w})"
            )));
        }
        let dim = |v: i64| {
            usize::try_from(v).map_err(|_| Error::shape(format!("input_shape entry {v} too large")))
        };
        Ok(Shape {
            c: dim(c)?,
            h: dim(h)?,
            w: dim(w)?,
        })
    }

    /// `"CxHxW"`.
    pub fn text(&self) -> String {
        format!("{}x{}x{}", self.c, self.h, self.w)
    }
}

/// A window along one axis: kernel size, stride and the zero padding before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    pub kernel: usize,
    pub stride: usize,
    pub before: usize,
    pub after: usize,
}

impl Axis {
    /// Input length with its padding.
    pub fn padded(&self, input: usize) -> usize {
        input + self.before + self.after
    }

    /// Output length as PyTorch computes it (floor mode): `(padded − kernel) / stride + 1`,
    /// or `None` if the kernel does not fit the padded input.
    pub fn out_len(&self, input: usize) -> Option<usize> {
        let padded = self.padded(input);
        (padded >= self.kernel).then(|| (padded - self.kernel) / self.stride + 1)
    }

    /// Upper bound of the bytes of this axis's [`Reach`] table.
    pub fn reach_bytes(&self, input: usize, out: usize) -> Bytes {
        Bytes::of(input + 1, 8).plus(Bytes::of(out, 8).times(self.kernel))
    }
}

/// For each input coordinate along one axis, the `(kernel offset, output coordinate)` pairs
/// its synapses reach, stored flat with offsets.
#[derive(Debug, Clone)]
pub struct Reach {
    start: Vec<usize>,
    pairs: Vec<(u32, u32)>,
}

impl Reach {
    /// Input coordinate `i` reaches output `o` through kernel offset `k` when
    /// `o·stride + k − before = i`, `0 ≤ k < kernel`, `0 ≤ o < out`.
    pub fn new(input: usize, out: usize, a: Axis) -> Result<Reach> {
        let mut start = Vec::new();
        start
            .try_reserve_exact(input + 1)
            .map_err(|_| Error::allocation("a window table", Bytes::of(input + 1, 8).0))?;
        let mut pairs = Vec::new();
        for i in 0..input {
            start.push(pairs.len());
            let pos = i + a.before; // o·stride + k = pos
                                    // Smallest k ≥ 0 with (pos − k) divisible by stride and (pos − k) / stride < out.
            let mut k = pos % a.stride;
            let o_max = out - 1;
            if pos > o_max * a.stride + k {
                k = pos - o_max * a.stride;
            }
            while k < a.kernel && k <= pos {
                pairs.push((k as u32, ((pos - k) / a.stride) as u32));
                k += a.stride;
            }
        }
        start.push(pairs.len());
        Ok(Reach { start, pairs })
    }

    #[inline(always)]
    pub fn of(&self, i: usize) -> &[(u32, u32)] {
        &self.pairs[self.start[i]..self.start[i + 1]]
    }
}

/// `(y, x, c)` of every neuron of a layer, in its H, W, C order, so that a spike costs a load
/// instead of divisions. Packed into one `u32` per neuron (`y`, `x`, `c` in bit fields as wide
/// as the shape needs) when that fits, which keeps the table small enough to stay in cache;
/// otherwise three `u32`s.
#[derive(Debug, Clone)]
pub struct Coords {
    packed: Vec<u32>,
    wide: Vec<[u32; 3]>,
    /// Bit offsets of `y` and `x` in a packed entry, and the masks of `x` and `c`.
    shift_y: u32,
    shift_x: u32,
    mask_x: u32,
    mask_c: u32,
}

/// Bits needed to hold `0..n`.
fn bits(n: usize) -> u32 {
    usize::BITS - (n.max(1) - 1).leading_zeros()
}

impl Coords {
    /// The coordinates of every neuron of a layer shaped `s`.
    pub fn of(s: Shape) -> Result<Coords> {
        let (bc, bx, by) = (bits(s.c), bits(s.w), bits(s.h));
        let mut out = Coords {
            packed: Vec::new(),
            wide: Vec::new(),
            shift_y: bc + bx,
            shift_x: bc,
            mask_x: ((1u64 << bx) - 1) as u32,
            mask_c: ((1u64 << bc) - 1) as u32,
        };
        let fail = |size| Error::allocation("a coordinate table", Bytes::of(s.size(), size).0);
        if bc + bx + by <= 32 {
            out.packed
                .try_reserve_exact(s.size())
                .map_err(|_| fail(4))?;
            for y in 0..s.h {
                for x in 0..s.w {
                    for c in 0..s.c {
                        out.packed
                            .push(((y as u32) << out.shift_y) | ((x as u32) << bc) | c as u32);
                    }
                }
            }
        } else {
            out.wide.try_reserve_exact(s.size()).map_err(|_| fail(12))?;
            for y in 0..s.h {
                for x in 0..s.w {
                    for c in 0..s.c {
                        out.wide.push([y as u32, x as u32, c as u32]);
                    }
                }
            }
        }
        Ok(out)
    }

    /// `(y, x, c)` of neuron `i` (its H, W, C index).
    #[inline(always)]
    pub fn get(&self, i: usize) -> (usize, usize, usize) {
        if self.wide.is_empty() {
            let p = self.packed[i];
            (
                (p >> self.shift_y) as usize,
                ((p >> self.shift_x) & self.mask_x) as usize,
                (p & self.mask_c) as usize,
            )
        } else {
            let [y, x, c] = self.wide[i];
            (y as usize, x as usize, c as usize)
        }
    }

    /// Bytes a table for a layer shaped `s` takes (at most).
    pub fn bytes(s: Shape) -> Bytes {
        Bytes::of(s.size(), 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, by search.
    fn reach_slow(input: usize, out: usize, a: Axis) -> Vec<Vec<(u32, u32)>> {
        (0..input)
            .map(|i| {
                (0..a.kernel)
                    .filter_map(|k| {
                        let num = (i + a.before) as i64 - k as i64;
                        let ok = num >= 0
                            && num % a.stride as i64 == 0
                            && ((num / a.stride as i64) as usize) < out;
                        ok.then(|| (k as u32, (num / a.stride as i64) as u32))
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn reach_matches_its_definition() {
        for input in 1..9 {
            for kernel in 1..6 {
                for stride in 1..4 {
                    for before in 0..3 {
                        for after in 0..3 {
                            let a = Axis {
                                kernel,
                                stride,
                                before,
                                after,
                            };
                            let Some(out) = a.out_len(input) else {
                                continue;
                            };
                            let r = Reach::new(input, out, a).unwrap();
                            let want = reach_slow(input, out, a);
                            for (i, w) in want.iter().enumerate() {
                                assert_eq!(r.of(i), &w[..], "{a:?} input {input} at {i}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn coordinates_are_exact_packed_or_wide() {
        for s in [
            Shape {
                c: 1,
                h: 1,
                w: 65_540,
            },
            Shape { c: 3, h: 5, w: 7 },
            Shape { c: 1, h: 1, w: 1 },
            Shape {
                c: 2,
                h: 1,
                w: 1 << 31,
            },
        ] {
            let coords = Coords::of(Shape {
                w: s.w.min(70_000),
                ..s
            })
            .unwrap();
            let s = Shape {
                w: s.w.min(70_000),
                ..s
            };
            let mut i = 0;
            for y in 0..s.h {
                for x in 0..s.w {
                    for c in 0..s.c {
                        assert_eq!(coords.get(i), (y, x, c), "{s:?} at {i}");
                        i += 1;
                    }
                }
            }
        }
        // A shape whose fields need more than 32 bits uses the wide table.
        let s = Shape {
            c: 3,
            h: 3,
            w: 1 << 29,
        };
        assert!(bits(s.c) + bits(s.h) + bits(s.w) > 32);
    }
}
