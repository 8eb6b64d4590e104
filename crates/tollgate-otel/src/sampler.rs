//! OpenTelemetry's `parentbased_traceidratio` sampler: a caller's sampling
//! decision is followed; a trace that starts here is kept with probability
//! `rate`, decided by its id so that every service sampling by ratio agrees.

use crate::context::TraceParent;
use crate::ids::TraceId;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    /// Trace ids whose low 8 bytes are below this are sampled.
    bound: u64,
    always: bool,
}

impl Sampler {
    /// `rate` in `[0, 1]` (values outside are clamped).
    pub fn ratio(rate: f64) -> Self {
        let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        Sampler { bound: (rate * u64::MAX as f64) as u64, always: rate >= 1.0 }
    }

    /// Whether a trace is recorded, given the caller's context if any.
    pub fn sampled(&self, parent: Option<&TraceParent>, trace_id: &TraceId) -> bool {
        match parent {
            Some(p) => p.sampled,
            None => self.always || trace_id.low_u64() < self.bound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SpanId;

    #[test]
    fn follows_the_parent_and_samples_new_traces_by_ratio() {
        let id = TraceId::random();
        let parent = |sampled| TraceParent { trace_id: id, parent_id: SpanId::random(), sampled };
        assert!(Sampler::ratio(0.0).sampled(Some(&parent(true)), &id));
        assert!(!Sampler::ratio(1.0).sampled(Some(&parent(false)), &id));
        assert!(Sampler::ratio(1.0).sampled(None, &id));
        assert!(!Sampler::ratio(0.0).sampled(None, &id));
        let half = Sampler::ratio(0.5);
        let kept = (0..10_000).filter(|_| half.sampled(None, &TraceId::random())).count();
        assert!((4_500..5_500).contains(&kept), "{kept} of 10000 at 0.5");
    }
}
