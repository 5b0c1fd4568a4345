//! RFC 6962 §2.1 Merkle tree hashing: leaf `SHA-256(0x00 ‖ entry)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`, the empty tree `SHA-256("")`. Proof generation follows the
//! RFC's recursive definitions; verification follows RFC 9162 §2.1.3.2 and §2.1.4.2.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Streaming root computation: push leaf hashes in order; `root()` at any point is the root of
/// the tree of the leaves pushed so far. Memory is O(log n).
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    // INVARIANT: levels strictly decrease from bottom to top of the stack; each entry is the
    // root of a perfect subtree of 2^level leaves, left to right.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl Accumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        while let Some((top_level, top)) = self.stack.last() {
            if *top_level != level {
                break;
            }
            hash = node_hash(top, &hash);
            level += 1;
            self.stack.pop();
        }
        self.stack.push((level, hash));
        self.size += 1;
    }

    /// The frontier, to continue later: size (8 bytes BE), then per perfect subtree its level
    /// (4 bytes BE) and root.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        for (level, hash) in &self.stack {
            out.extend_from_slice(&level.to_be_bytes());
            out.extend_from_slice(hash);
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let size = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let mut stack = Vec::new();
        for chunk in b.get(8..)?.chunks(36) {
            let level = u32::from_be_bytes(chunk.get(..4)?.try_into().ok()?);
            let hash: Hash = chunk.get(4..36)?.try_into().ok()?;
            stack.push((level, hash));
        }
        // The frontier of `size` leaves has one subtree per set bit of `size`.
        let expected: u64 = stack.iter().map(|(l, _)| 1u64.checked_shl(*l).unwrap_or(0)).sum();
        (expected == size).then_some(Self { stack, size })
    }

    /// The RFC 6962 root of the leaves pushed so far: the perfect subtrees folded right to left.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some((_, last)) = it.next() else { return empty_root() };
        it.fold(*last, |acc, (_, left)| node_hash(left, &acc))
    }
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut acc = Accumulator::new();
    for l in leaves {
        acc.push(*l);
    }
    acc.root()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// PATH(m, D[n]): the audit path of leaf `index` in the tree of `leaves`; `None` when out of range.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    if d.len() <= 1 {
        return;
    }
    let k = split(d.len());
    let (left, right) = d.split_at(k);
    if m < k {
        path(m, left, out);
        out.push(root(right));
    } else {
        path(m - k, right, out);
        out.push(root(left));
    }
}

/// PROOF(m, D[n]): a consistency proof from the tree of the first `m` leaves to the tree of
/// all of them; `None` unless 0 < m ≤ n.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    let (left, right) = d.split_at(k);
    if m <= k {
        subproof(m, left, complete, out);
        out.push(root(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(root(left));
    }
}

/// RFC 9162 §2.1.3.2: does `proof` show that `leaf` is at `index` in the tree of `size` with `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree of size `m` with `old_root` is a prefix of the
/// tree of size `n` with `new_root`?
pub fn verify_consistency(m: u64, n: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if m == 0 || m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    &fr == old_root && &sr == new_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    /// MTH straight from RFC 6962's recursive definition, as the reference.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n);
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn known_roots() {
        // The empty tree and a one-leaf tree, per RFC 6962.
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(root(&[leaf_hash(b"")]), leaf_hash(b""));
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        for n in 0..70 {
            assert_eq!(root(&leaves(n)), mth(&leaves(n)), "n = {n}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn inclusion_proofs_verify_and_altered_ones_do_not(n in 1usize..3000, i in 0usize..3000, flip in any::<(usize, u8)>()) {
            let d = leaves(n);
            let i = i % n;
            let r = root(&d);
            let proof = inclusion_proof(i, &d).unwrap();
            prop_assert!(verify_inclusion(i as u64, n as u64, &d[i], &proof, &r));
            // Another index, another leaf, or any altered proof hash fails.
            if n > 1 {
                prop_assert!(!verify_inclusion(((i + 1) % n) as u64, n as u64, &d[i], &proof, &r));
                prop_assert!(!verify_inclusion(i as u64, n as u64, &d[(i + 1) % n], &proof, &r));
            }
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let (at, bit) = flip;
                bad[at % proof.len()][at % 32] ^= 1 << (bit % 8);
                prop_assert!(!verify_inclusion(i as u64, n as u64, &d[i], &bad, &r));
                prop_assert!(!verify_inclusion(i as u64, n as u64, &d[i], &proof[..proof.len() - 1], &r));
            }
        }

        #[test]
        fn consistency_proofs_verify_and_altered_ones_do_not(n in 1usize..3000, m in 1usize..3000, flip in any::<(usize, u8)>()) {
            let d = leaves(n);
            let m = 1 + m % n;
            let (old, new) = (root(&d[..m]), root(&d));
            let proof = consistency_proof(m, &d).unwrap();
            prop_assert!(verify_consistency(m as u64, n as u64, &old, &new, &proof));
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let (at, bit) = flip;
                bad[at % proof.len()][at % 32] ^= 1 << (bit % 8);
                prop_assert!(!verify_consistency(m as u64, n as u64, &old, &new, &bad));
            }
            // A forked history (one earlier leaf different) is not consistent.
            let mut forked = d.clone();
            forked[(flip.0) % m] = leaf_hash(b"forged");
            prop_assert!(!verify_consistency(m as u64, n as u64, &root(&forked[..m]), &new, &proof));
        }
    }

    #[test]
    fn accumulator_roots_match_at_every_size() {
        let d = leaves(300);
        let mut acc = Accumulator::new();
        assert_eq!(acc.root(), empty_root());
        for (i, l) in d.iter().enumerate() {
            acc.push(*l);
            assert_eq!(acc.root(), mth(&d[..=i]));
            let resumed = Accumulator::from_bytes(&acc.to_bytes()).unwrap();
            assert_eq!((resumed.size(), resumed.root()), (acc.size(), acc.root()));
        }
        assert!(Accumulator::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 3]).is_none());
    }
}
