//! The hasher of the cache's maps keyed by guest addresses and page
//! numbers. The standard one (SipHash, resistant to chosen keys) was ~2%
//! of a large program's start-up, spent on lookups of the guest's own
//! addresses, which can only slow down the guest that chose them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// One 64x64->128-bit multiply by an odd constant, folded (high half xor
/// low half): every bit of the key reaches both the low bits (the bucket)
/// and the high bits (hashbrown's tag), also for aligned addresses.
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(x: u64) -> u64 {
    let m = u128::from(x) * u128::from(K);
    (m as u64) ^ ((m >> 64) as u64)
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = fold(self.0 ^ x);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by addresses or page numbers.
pub type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// 16-aligned addresses (jump targets) spread over the low bits, which
    /// pick the bucket: 4096 of them fill nearly every one of 4096 values
    /// of the low 12 bits (a plain multiply would leave 15 of 16 empty).
    #[test]
    fn aligned_addresses_spread_over_the_low_bits() {
        let b = BuildHasherDefault::<AddrHasher>::default();
        let mut seen = std::collections::HashSet::new();
        for k in 0..4096u64 {
            seen.insert(b.hash_one(0x40_1000 + 16 * k) & 0xfff);
        }
        assert!(seen.len() > 2400, "{} distinct bucket values", seen.len());
    }
}
