//! A Ketama-style consistent-hash ring over target identities.
//!
//! Hand-written because `pingora-ketama` (and pingora-load-balancing's consistent
//! selection on top of it) hashes `SocketAddr`s, while a balancer target is a
//! provider/model pair, often behind the same address as its siblings, and gives every
//! weight unit 160 points, which for weights up to 65,535 is millions of points.
//!
//! Each target gets `POINTS_PER_UNIT` points per weight unit, where the unit is the
//! GCD of all weights (Kong's default weight is 100, so equal weights of 100 cost 160
//! points, not 16,000). When the ring would exceed [`MAX_POINTS`], every target's
//! share is scaled down proportionally. A point is `hash(identity, point number)`, so a
//! target's points depend only on its own identity: adding a target takes over only
//! the arcs its new points land on (about 1/N of the keys), and keys never move between
//! the old targets.
//!
//! The hash is FNV-1a 64 finished with MurmurHash3's `fmix64`: stable across
//! processes, versions and machines (every gateway replica maps a key to the same
//! target), cheap on short keys, and well mixed.

/// Ring points per weight unit (Ketama's 160: 40 MD5 digests of 4 points each).
pub const POINTS_PER_UNIT: u64 = 160;
/// Upper bound of points on one ring (about 320 KiB).
pub const MAX_POINTS: u64 = 40_960;

#[derive(Debug)]
pub(crate) struct Ring {
    /// (point hash, target index), sorted.
    points: Box<[(u32, u32)]>,
}

impl Ring {
    /// `identities[i]` and `weights[i]` describe target `i`; identities must be unique
    /// (the balancer disambiguates duplicates before calling this).
    pub(crate) fn new(identities: &[Vec<u8>], weights: &[u32]) -> Self {
        let unit = weights.iter().copied().filter(|&w| w > 0).reduce(gcd).unwrap_or(1);
        let mut counts: Vec<u64> =
            weights.iter().map(|&w| POINTS_PER_UNIT * u64::from(w.max(1) / unit).max(1)).collect();
        let total: u64 = counts.iter().sum();
        if total > MAX_POINTS {
            for c in &mut counts {
                *c = (*c * MAX_POINTS / total).max(1);
            }
        }
        let mut points = Vec::with_capacity(counts.iter().sum::<u64>() as usize);
        for (idx, (id, &count)) in identities.iter().zip(&counts).enumerate() {
            for j in 0..count {
                let h = hash32(&[id, &j.to_le_bytes()]);
                points.push((h, idx as u32));
            }
        }
        points.sort_unstable();
        Self { points: points.into_boxed_slice() }
    }

    /// The targets met walking the ring clockwise from `hash`, one entry per point
    /// (so a target repeats); the first is the key's owner.
    pub(crate) fn walk(&self, hash: u32) -> impl Iterator<Item = usize> + '_ {
        let n = self.points.len();
        let start = self.points.partition_point(|p| p.0 < hash);
        (0..n).map(move |k| self.points[(start + k) % n].1 as usize)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// FNV-1a 64 over the concatenation of `parts`, then `fmix64`.
pub(crate) fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

pub(crate) fn hash32(parts: &[&[u8]]) -> u32 {
    (hash64(parts) >> 32) as u32
}
