//! Cosine similarity, and vectors as stored beside entries.

/// Cosine similarity of two vectors; NaN when they differ in length or one is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::NAN;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// The best of `candidates` within `max_distance` of `query`: its id and
/// cosine distance (1 − similarity). A distance, as Kong's `vectordb.threshold`
/// is with `distance_metric = "cosine"` (its examples use 0.1).
pub fn nearest<'a, I>(query: &[f32], candidates: I, max_distance: f64) -> Option<(&'a str, f64)>
where
    I: IntoIterator<Item = (&'a str, &'a [f32])>,
{
    candidates
        .into_iter()
        .map(|(id, v)| (id, 1.0 - cosine(query, v)))
        .filter(|(_, d)| d.is_finite() && *d <= max_distance)
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// A vector as little-endian f32 bytes (compact in Redis).
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of `to_bytes`; `None` for a length that is not whole floats.
pub fn from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_similarity() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-9);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0], &[1.0, 2.0]).is_nan());
        assert!(cosine(&[0.0, 0.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn nearest_takes_the_closest_within_the_distance() {
        let a = [1.0f32, 0.0];
        let b = [0.8f32, 0.6];
        let c = [0.0f32, 1.0];
        let all = [("a", &a[..]), ("b", &b[..]), ("c", &c[..])];
        let q = [0.9f32, 0.44];
        assert_eq!(nearest(&q, all, 0.5).map(|x| x.0), Some("b"));
        assert_eq!(nearest(&[0.0, 1.0], all, 0.01).map(|x| x.0), Some("c"));
        assert_eq!(nearest(&[-1.0, 0.0], all, 0.1), None);
        // b is 0.2 from a (cos 0.8): a 0.1 distance misses it, 0.25 finds it.
        assert_eq!(nearest(&a, [("b", &b[..])], 0.1), None);
        assert_eq!(nearest(&a, [("b", &b[..])], 0.25).map(|x| x.0), Some("b"));
    }

    #[test]
    fn vectors_round_trip_as_bytes() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(from_bytes(&to_bytes(&v)), Some(v));
        assert_eq!(from_bytes(&[1, 2, 3]), None);
    }
}
