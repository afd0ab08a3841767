//! Finding candidate templates for a key, and the hashing behind it: a fixed,
//! seedless hash (FxHash's multiply-rotate) so that hash maps are fast and the
//! hashes stored in a snapshot mean the same thing after a restart.
//!
//! A key can only match a template of its length with the same first token
//! (the first token is never generalised), and whose second token is the key's
//! or `<*>`. Templates are therefore listed by (length, first token) and by
//! (length, first, second token); each list is kept in ascending id order so
//! that the first match is always the oldest template, whatever the lists.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::mask::VAR;

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

fn head2_hash(len: usize, first: &str, second: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(len);
    h.write(first.as_bytes());
    h.write_u8(0xff);
    h.write(second.as_bytes());
    h.write_u8(0xfe);
    h.finish()
}

/// The first two tokens of a template or key (`""` where missing).
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub len: usize,
    pub first: &'a str,
    pub second: &'a str,
}

/// Template ids by (length, first token) and by (length, first, second token).
#[derive(Debug, Default)]
pub struct TemplateIndex {
    by_first: FxMap<u64, Vec<u64>>,
    by_two: FxMap<u64, Vec<u64>>,
}

fn insert_sorted(map: &mut FxMap<u64, Vec<u64>>, key: u64, id: u64) {
    let v = map.entry(key).or_default();
    if let Err(pos) = v.binary_search(&id) {
        v.insert(pos, id);
    }
}

fn remove_sorted(map: &mut FxMap<u64, Vec<u64>>, key: u64, id: u64) {
    if let Some(v) = map.get_mut(&key) {
        if let Ok(pos) = v.binary_search(&id) {
            v.remove(pos);
        }
        if v.is_empty() {
            map.remove(&key);
        }
    }
}

impl TemplateIndex {
    pub fn insert(&mut self, id: u64, h: Head<'_>) {
        insert_sorted(&mut self.by_first, head_hash(h.len, h.first), id);
        insert_sorted(&mut self.by_two, head2_hash(h.len, h.first, h.second), id);
    }

    pub fn remove(&mut self, id: u64, h: Head<'_>) {
        remove_sorted(&mut self.by_first, head_hash(h.len, h.first), id);
        remove_sorted(&mut self.by_two, head2_hash(h.len, h.first, h.second), id);
    }

    /// Templates that may take a key with this head, ascending ids, into `out`.
    pub fn for_key(&self, h: Head<'_>, out: &mut Vec<u64>) {
        out.clear();
        let own = self.by_two.get(&head2_hash(h.len, h.first, h.second));
        let wild = if h.second == VAR || h.len < 2 {
            None
        } else {
            self.by_two.get(&head2_hash(h.len, h.first, VAR))
        };
        match (own, wild) {
            (Some(a), Some(b)) => merge_sorted(a, b, out),
            (Some(a), None) | (None, Some(a)) => out.extend_from_slice(a),
            (None, None) => {}
        }
    }

    /// Templates that a template with this head may subsume, ascending ids.
    pub fn for_template(&self, h: Head<'_>, out: &mut Vec<u64>) {
        out.clear();
        let list = if h.second == VAR {
            self.by_first.get(&head_hash(h.len, h.first))
        } else {
            self.by_two.get(&head2_hash(h.len, h.first, h.second))
        };
        if let Some(v) = list {
            out.extend_from_slice(v);
        }
    }
}

fn merge_sorted(a: &[u64], b: &[u64], out: &mut Vec<u64>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
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
        assert_ne!(head2_hash(2, "a", "b"), head2_hash(2, "ab", ""));
        let stable = str_hash("sightline");
        assert_eq!(stable, str_hash("sightline"));
    }

    #[test]
    fn index_lists_candidates_in_id_order() {
        let h = |first, second| Head {
            len: 3,
            first,
            second,
        };
        let mut ix = TemplateIndex::default();
        ix.insert(5, h("a", "x"));
        ix.insert(2, h("a", VAR));
        ix.insert(9, h("a", VAR));
        ix.insert(7, h("a", "y"));
        ix.insert(3, h("b", "x"));
        let mut out = Vec::new();
        ix.for_key(h("a", "x"), &mut out);
        assert_eq!(out, vec![2, 5, 9]);
        ix.for_key(h("a", VAR), &mut out);
        assert_eq!(out, vec![2, 9]);
        ix.for_template(h("a", VAR), &mut out);
        assert_eq!(out, vec![2, 5, 7, 9]);
        ix.for_template(h("a", "y"), &mut out);
        assert_eq!(out, vec![7]);
        ix.remove(9, h("a", VAR));
        ix.remove(7, h("a", "y"));
        ix.for_template(h("a", VAR), &mut out);
        assert_eq!(out, vec![2, 5]);
        assert!(!ix.by_two.contains_key(&head2_hash(3, "a", "y")));
    }
}
