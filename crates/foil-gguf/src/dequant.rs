//! Dequantisation of ggml tensor data to `f32`.
//!
//! Block layouts and formulas are those of `dequantize_row_*` in ggml's
//! `ggml-quants.c` and of `gguf.quants` in gguf-py, computed in the same `f32` order so
//! results agree bit for bit. All multi-byte fields are little-endian; `f16` is IEEE
//! half precision. In the formulas `y[i]` is the i-th element of the block.
//!
//! | type | block | bytes | layout | value |
//! |---|---|---|---|---|
//! | F32 | 1 | 4 | `f32` | `x` |
//! | F16 | 1 | 2 | `f16` | `x` |
//! | BF16 | 1 | 2 | high half of an `f32` | `bits << 16` |
//! | Q8_0 | 32 | 34 | `f16 d`, `i8 qs[32]` | `y[i] = qs[i]·d` |
//! | Q4_0 | 32 | 18 | `f16 d`, `u8 qs[16]` | `y[j] = (lo(qs[j])−8)·d`, `y[j+16] = (hi(qs[j])−8)·d` |
//! | Q4_1 | 32 | 20 | `f16 d`, `f16 m`, `u8 qs[16]` | `y[j] = lo(qs[j])·d + m`, `y[j+16] = hi(qs[j])·d + m` |
//! | Q4_K | 256 | 144 | `f16 d`, `f16 dmin`, `u8 scales[12]`, `u8 qs[128]` | see [`dequantize`] |
//! | Q6_K | 256 | 210 | `u8 ql[128]`, `u8 qh[64]`, `i8 scales[16]`, `f16 d` | see [`dequantize`] |
//!
//! (`lo(b) = b & 0xF`, `hi(b) = b >> 4`.) Spec:
//! <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

use anyhow::{bail, ensure};
use half::{bf16, f16};

use crate::ggml_type::{GgmlType, QK_K};

/// The types [`dequantize`] handles.
pub const SUPPORTED: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

/// Dequantises `data`, the raw bytes of `n_elements` elements of type `ty`, to `f32`.
///
/// `n_elements` must be a multiple of the type's block size and `data` exactly
/// `n_elements / block_size · type_size` bytes long.
///
/// **Q4_K** (super-block of 256 = 8 sub-blocks of 32): the 12 `scales` bytes pack eight
/// 6-bit scales `sc[k]` and eight 6-bit mins `m[k]` (`get_scale_min_k4`): for `k < 4`,
/// `sc[k] = s[k] & 63`, `m[k] = s[k+4] & 63`; for `k ≥ 4`,
/// `sc[k] = (s[k+4] & 0xF) | ((s[k−4] >> 6) << 4)`,
/// `m[k] = (s[k+4] >> 4) | ((s[k] >> 6) << 4)`. The 128 `qs` bytes hold four chunks of 32
/// bytes; chunk `c` gives sub-block `2c` from low nibbles and sub-block `2c+1` from high
/// nibbles: `y[64c + l] = (d·sc[2c])·lo(qs[32c+l]) − dmin·m[2c]` and
/// `y[64c + 32 + l] = (d·sc[2c+1])·hi(qs[32c+l]) − dmin·m[2c+1]`.
///
/// **Q6_K** (super-block of 256 = 16 groups of 16, each with an `i8` scale): each element
/// is a 6-bit `q` (4 bits from `ql`, 2 from `qh`) minus 32. For half `h ∈ {0,1}` (128
/// elements, `ql` bytes `64h..64h+64`, `qh` bytes `32h..32h+32`) and `l < 32`:
/// `q(h,l+0)  = lo(ql[64h+l])    | ((qh[32h+l] >> 0) & 3) << 4`,
/// `q(h,l+32) = lo(ql[64h+l+32]) | ((qh[32h+l] >> 2) & 3) << 4`,
/// `q(h,l+64) = hi(ql[64h+l])    | ((qh[32h+l] >> 4) & 3) << 4`,
/// `q(h,l+96) = hi(ql[64h+l+32]) | ((qh[32h+l] >> 6) & 3) << 4`,
/// and `y[i] = (d·scales[i/16])·(q(i) − 32)`.
pub fn dequantize(ty: GgmlType, data: &[u8], n_elements: usize) -> anyhow::Result<Vec<f32>> {
    let mut out = vec![0f32; n_elements];
    dequantize_into(ty, data, &mut out)?;
    Ok(out)
}

/// [`dequantize`] into a caller's buffer of exactly `n_elements` floats.
pub fn dequantize_into(ty: GgmlType, data: &[u8], out: &mut [f32]) -> anyhow::Result<()> {
    if !SUPPORTED.contains(&ty) {
        bail!(
            "dequantising ggml type {ty} (id {}) is not supported (supported: {})",
            ty.id(),
            SUPPORTED
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (block, size) = (ty.block_size(), ty.type_size());
    ensure!(
        out.len().is_multiple_of(block),
        "{} elements of {ty} are not a whole number of {block}-element blocks",
        out.len()
    );
    let n_blocks = out.len() / block;
    ensure!(
        n_blocks.checked_mul(size) == Some(data.len()),
        "{} elements of {ty} take {n_blocks} × {size} bytes, got {} bytes",
        out.len(),
        data.len()
    );
    let blocks = data.chunks_exact(size).zip(out.chunks_exact_mut(block));
    match ty {
        GgmlType::F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes(arr(b))),
        GgmlType::F16 => blocks.for_each(|(b, y)| y[0] = half(b)),
        GgmlType::BF16 => {
            blocks.for_each(|(b, y)| y[0] = bf16::from_bits(u16::from_le_bytes(arr(b))).to_f32())
        }
        GgmlType::Q8_0 => blocks.for_each(|(b, y)| q8_0(b, y)),
        GgmlType::Q4_0 => blocks.for_each(|(b, y)| q4_0(b, y)),
        GgmlType::Q4_1 => blocks.for_each(|(b, y)| q4_1(b, y)),
        GgmlType::Q4_K => blocks.for_each(|(b, y)| q4_k(b, y)),
        GgmlType::Q6_K => blocks.for_each(|(b, y)| q6_k(b, y)),
        _ => unreachable!("checked against SUPPORTED"),
    }
    Ok(())
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    b[..N].try_into().expect("slice of N bytes")
}

/// The little-endian `f16` at the start of `b`, widened.
fn half(b: &[u8]) -> f32 {
    f16::from_bits(u16::from_le_bytes(arr(b))).to_f32()
}

/// `block_q8_0 { f16 d; i8 qs[32]; }`: `y[i] = qs[i]·d`.
fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = half(b);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = (q as i8) as f32 * d;
    }
}

/// `block_q4_0 { f16 d; u8 qs[16]; }`: `y[j] = (lo(qs[j])−8)·d`, `y[j+16] = (hi(qs[j])−8)·d`.
fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = half(b);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[2..18].iter().enumerate() {
        lo[j] = ((q & 0xF) as i32 - 8) as f32 * d;
        hi[j] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// `block_q4_1 { f16 d; f16 m; u8 qs[16]; }`: `y[j] = lo(qs[j])·d + m`, `y[j+16] = hi(qs[j])·d + m`.
fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half(b), half(&b[2..]));
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[4..20].iter().enumerate() {
        lo[j] = (q & 0xF) as f32 * d + m;
        hi[j] = (q >> 4) as f32 * d + m;
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `k` (0..8).
fn scale_min_k4(k: usize, s: &[u8]) -> (u8, u8) {
    if k < 4 {
        (s[k] & 63, s[k + 4] & 63)
    } else {
        (
            (s[k + 4] & 0xF) | ((s[k - 4] >> 6) << 4),
            (s[k + 4] >> 4) | ((s[k] >> 6) << 4),
        )
    }
}

/// `block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }` (see [`dequantize`]).
fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (half(b), half(&b[2..]));
    let scales = &b[4..16];
    let qs = &b[16..16 + QK_K / 2];
    for (c, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let (lo, hi) = y.split_at_mut(32);
        for l in 0..32 {
            lo[l] = d1 * (q[l] & 0xF) as f32 - m1;
            hi[l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// `block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }` (see [`dequantize`]).
fn q6_k(b: &[u8], y: &mut [f32]) {
    let ql = &b[..QK_K / 2];
    let qh = &b[QK_K / 2..QK_K / 2 + QK_K / 4];
    let sc = &b[QK_K / 2 + QK_K / 4..QK_K / 2 + QK_K / 4 + QK_K / 16];
    let d = half(&b[QK_K / 2 + QK_K / 4 + QK_K / 16..]);
    for h in 0..2 {
        let (ql, qh, y) = (&ql[64 * h..], &qh[32 * h..], &mut y[128 * h..]);
        for l in 0..32 {
            let q = [
                (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (k, q) in q.into_iter().enumerate() {
                let i = 32 * k + l;
                let scale = d * (sc[(128 * h + i) / 16] as i8) as f32;
                y[i] = scale * (q as i32 - 32) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // f16 bit patterns used below: 0x3800 = 0.5, 0x3C00 = 1.0, 0x4000 = 2.0,
    // 0x3400 = 0.25, 0xBC00 = -1.0, 0x0000 = 0.0.

    #[test]
    fn f32_f16_bf16_elements() {
        // f32 1.5 = 0x3FC00000; f16 -2.0 = 0xC000; bf16 0x3F80 = 1.0 (f32 0x3F800000)
        let y = dequantize(GgmlType::F32, &1.5f32.to_le_bytes(), 1).unwrap();
        assert_eq!(y, [1.5]);
        let y = dequantize(GgmlType::F16, &[0x00, 0xC0, 0x00, 0x38], 2).unwrap();
        assert_eq!(y, [-2.0, 0.5]);
        let y = dequantize(GgmlType::BF16, &[0x80, 0x3F, 0x40, 0xC0], 2).unwrap();
        // 0xC040 << 16 = 0xC0400000 = -3.0
        assert_eq!(y, [1.0, -3.0]);
    }

    #[test]
    fn q8_0_block_by_hand() {
        // d = 0.5 (f16 0x3800); qs[i] = i - 16 as i8, so y[i] = (i - 16) * 0.5:
        // y[0] = -16 * 0.5 = -8, y[16] = 0, y[31] = 15 * 0.5 = 7.5
        let mut b = vec![0x00, 0x38];
        b.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
        for (i, v) in y.iter().enumerate() {
            assert_eq!(*v, (i as f32 - 16.0) * 0.5, "element {i}");
        }
        assert_eq!((y[0], y[16], y[31]), (-8.0, 0.0, 7.5));
    }

    #[test]
    fn q4_0_block_by_hand() {
        // d = 0.5 (f16 0x3800); qs[j] = 0xA3 for every j: low nibble 3, high nibble 10.
        // Elements 0..16 take the low nibble: (3 - 8) * 0.5 = -2.5.
        // Elements 16..32 take the high nibble: (10 - 8) * 0.5 = 1.0.
        // qs[0] = 0x0F instead: y[0] = (15 - 8) * 0.5 = 3.5, y[16] = (0 - 8) * 0.5 = -4.0.
        let mut b = vec![0x00, 0x38];
        b.extend([0xA3u8; 16]);
        b[2] = 0x0F;
        let y = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
        assert_eq!(y[0], 3.5);
        assert_eq!(y[16], -4.0);
        assert!(y[1..16].iter().all(|&v| v == -2.5));
        assert!(y[17..32].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn q4_1_block_by_hand() {
        // d = 0.25 (f16 0x3400), m = -1.0 (f16 0xBC00); qs[j] = j | (15 - j) << 4.
        // y[j] = j * 0.25 - 1: y[0] = -1, y[4] = 0, y[15] = 2.75.
        // y[16 + j] = (15 - j) * 0.25 - 1: y[16] = 2.75, y[31] = -1.
        let mut b = vec![0x00, 0x34, 0x00, 0xBC];
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
        for j in 0..16 {
            assert_eq!(y[j], j as f32 * 0.25 - 1.0);
            assert_eq!(y[16 + j], (15 - j) as f32 * 0.25 - 1.0);
        }
        assert_eq!(
            (y[0], y[4], y[15], y[16], y[31]),
            (-1.0, 0.0, 2.75, 2.75, -1.0)
        );
    }

    #[test]
    fn q4_k_block_by_hand() {
        // d = 0.5 (0x3800), dmin = 1.0 (0x3C00).
        // scales bytes s[0..12]:
        //   s[0..4] = 2, 4, 6, 8 plus bit 6 set on s[0] (0x42): sc[0..4] = s[k] & 63 = 2,4,6,8
        //   s[4..8] = 1, 3, 5, 7 plus bit 6 set on s[4] (0x41): m[0..4] = s[k+4] & 63 = 1,3,5,7
        //   s[8..12] = 0x21, 0x43, 0x65, 0x07:
        //     sc[4] = (s[8] & 0xF) | ((s[0] >> 6) << 4) = 1 | 1 << 4 = 17
        //     m[4]  = (s[8] >> 4)  | ((s[4] >> 6) << 4) = 2 | 1 << 4 = 18
        //     sc[5] = 3, m[5] = 4;  sc[6] = 5, m[6] = 6;  sc[7] = 7, m[7] = 0
        // qs: every byte 0x5A (low nibble 10, high nibble 5).
        // Sub-block k uses the low nibble for even k, the high one for odd k:
        //   y in sub-block 0 = (0.5 * 2) * 10 - 1.0 * 1 = 9
        //   sub-block 1 = (0.5 * 4) * 5 - 3 = 7
        //   sub-block 2 = 3 * 10 - 5 = 25;   sub-block 3 = 4 * 5 - 7 = 13
        //   sub-block 4 = 8.5 * 10 - 18 = 67; sub-block 5 = 1.5 * 5 - 4 = 3.5
        //   sub-block 6 = 2.5 * 10 - 6 = 19; sub-block 7 = 3.5 * 5 - 0 = 17.5
        let mut b = vec![0x00, 0x38, 0x00, 0x3C];
        b.extend([0x42, 4, 6, 8, 0x41, 3, 5, 7, 0x21, 0x43, 0x65, 0x07]);
        b.extend([0x5Au8; 128]);
        assert_eq!(b.len(), 144);
        let y = dequantize(GgmlType::Q4_K, &b, 256).unwrap();
        let want = [9.0, 7.0, 25.0, 13.0, 67.0, 3.5, 19.0, 17.5];
        for (k, w) in want.iter().enumerate() {
            assert!(
                y[32 * k..32 * k + 32].iter().all(|v| v == w),
                "sub-block {k}: {:?}",
                &y[32 * k..32 * k + 32]
            );
        }
    }

    #[test]
    fn q6_k_block_by_hand() {
        // ql = 0x21 everywhere (low nibble 1, high nibble 2); qh = 0b11_10_01_00 = 0xE4
        // everywhere (2-bit fields 0, 1, 2, 3 from the bottom).
        // Per half, l < 32:
        //   elements l+0:  q = 1 | 0 << 4 = 1   → 1 - 32 = -31
        //   elements l+32: q = 1 | 1 << 4 = 17  → -15
        //   elements l+64: q = 2 | 2 << 4 = 34  → 2
        //   elements l+96: q = 2 | 3 << 4 = 50  → 18
        // scales[g] = g - 8 (i8) for group g = i / 16; d = 0.5 (0x3800).
        // y[i] = (0.5 * (i/16 - 8)) * q: y[0] = -4 * -31 = 124, y[40] = (0.5 * -6) * -15 = 45,
        // y[200] (half 1, offset 72 → q 2, group 12) = (0.5 * 4) * 2 = 4.
        let mut b = vec![0x21u8; 128];
        b.extend([0xE4u8; 64]);
        b.extend((0..16).map(|g| (g as i8 - 8) as u8));
        b.extend([0x00, 0x38]);
        assert_eq!(b.len(), 210);
        let y = dequantize(GgmlType::Q6_K, &b, 256).unwrap();
        for (i, v) in y.iter().enumerate() {
            let q = [-31.0, -15.0, 2.0, 18.0][(i % 128) / 32];
            assert_eq!(*v, 0.5 * ((i / 16) as f32 - 8.0) * q, "element {i}");
        }
        assert_eq!((y[0], y[40], y[200]), (124.0, 45.0, 4.0));
    }

    #[test]
    fn wrong_lengths_and_unsupported_types_are_errors() {
        let e = dequantize(GgmlType::Q5_K, &[0; 176], 256).unwrap_err();
        assert!(e.to_string().contains("Q5_K"), "{e}");
        assert!(dequantize(GgmlType::Q8_0, &[0; 34], 31).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0; 33], 32).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0; 68], 64).is_ok());
    }
}
