//! Hashing used to index templates: a fixed, seedless hash (FxHash's
//! multiply-rotate) so that hash maps are fast and the hashes stored in a
//! snapshot mean the same thing after a restart.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash: not DoS resistant, but deterministic and fast for short keys.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Bucket of templates a key can match: same token count and first token.
pub fn head_hash(len: usize, first: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(len);
    h.write(first.as_bytes());
    h.write_u8(0xff);
    h.finish()
}

/// Signature of a token sequence with position `skip` left out.
pub fn signature<'a>(len: usize, skip: usize, tokens: impl Iterator<Item = &'a str>) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(len);
    h.write_usize(skip);
    for (i, t) in tokens.enumerate() {
        if i != skip {
            h.write(t.as_bytes());
            h.write_u8(0xff);
        }
    }
    h.finish()
}

pub fn str_hash(s: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(s.as_bytes());
    h.write_u8(0xff);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_fixed_and_discriminate() {
        // values must never change: snapshots store them
        assert_eq!(str_hash("abc"), str_hash("abc"));
        assert_ne!(str_hash("abc"), str_hash("abd"));
        assert_ne!(str_hash("ab"), str_hash("ab\0"));
        let a = signature(3, 1, ["x", "y", "z"].into_iter());
        let b = signature(3, 1, ["x", "q", "z"].into_iter());
        let c = signature(3, 2, ["x", "y", "z"].into_iter());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(head_hash(2, "a"), head_hash(3, "a"));
        let stable = str_hash("sightline");
        assert_eq!(stable, str_hash("sightline"));
    }
}
