//! SWAR ("SIMD within a register"): tests on the eight bytes of a `u64` at once, for the loops
//! that skip over bytes needing no attention (the CSV reader's unquoted fields, JSON string
//! escaping). Portable, no `unsafe`, and fast enough that neither loop is the bottleneck.
//!
//! Each mask has the high bit set in the lowest byte that matches; higher bytes may be false
//! positives (a borrow runs upward), so callers use `trailing_zeros() / 8` for the first match
//! and never read the other bits.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in the lowest byte of `x` equal to `b` (higher bits may be false positives,
/// the lowest never is).
#[inline(always)]
pub(crate) fn eq_mask(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * b as u64);
    y.wrapping_sub(LO) & !y & HI
}

/// Like [`eq_mask`] for bytes below `n` (`n` ≤ 128).
#[inline(always)]
pub(crate) fn lt_mask(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * n as u64) & !x & HI
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first match agrees with a byte-by-byte search for every byte value at every position.
    #[test]
    fn lowest_match_is_exact() {
        let first = |m: u64| (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
        let mut seed = 0x243F_6A88_85A3_08D3u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Bytes drawn from a small alphabet so that matches are frequent.
            let alphabet = [b'"', b'\\', b',', b'\n', b'\r', 0x00, 0x1f, 0x20, b'a', 0x80, 0xff, b'!'];
            let bytes: [u8; 8] = std::array::from_fn(|i| alphabet[((seed >> (i * 5)) % 12) as usize]);
            let x = u64::from_le_bytes(bytes);
            for b in [b'"', b'\\', b',', b'\n', b'\r', 0x00, 0xff] {
                assert_eq!(first(eq_mask(x, b)), bytes.iter().position(|&c| c == b), "{bytes:?} == {b}");
            }
            for n in [0x20u8, 1, 0x80] {
                assert_eq!(first(lt_mask(x, n)), bytes.iter().position(|&c| c < n), "{bytes:?} < {n}");
            }
        }
    }
}
