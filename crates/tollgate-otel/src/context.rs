//! W3C Trace Context (`traceparent: 00-<trace-id>-<parent-id>-<flags>`).

use crate::ids::{parse_hex, SpanId, TraceId};

/// A caller's trace context, or the one the gateway sends on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TraceParent {
    pub trace_id: TraceId,
    /// The span that made the request (the caller's, or the gateway's own
    /// when it sends one on).
    pub parent_id: SpanId,
    pub sampled: bool,
}

impl TraceParent {
    /// Reads a `traceparent` value as the W3C spec asks a version-00 reader to:
    /// lower-case hex, non-zero ids, version `ff` refused. A later version may
    /// add fields after the flags, which are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.split('-');
        let version = parse_hex::<1>(fields.next()?)?;
        let trace_id = parse_hex::<16>(fields.next()?)?;
        let parent_id = parse_hex::<8>(fields.next()?)?;
        let flags = parse_hex::<1>(fields.next()?)?;
        let rest = fields.next();
        let ok =
            version[0] != 0xff && (rest.is_none() || version[0] != 0) && trace_id != [0; 16] && parent_id != [0; 8];
        ok.then_some(TraceParent {
            trace_id: TraceId(trace_id),
            parent_id: SpanId(parent_id),
            sampled: flags[0] & 1 == 1,
        })
    }

    /// The version-00 header value.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.parent_id, if self.sampled { "01" } else { "00" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_and_writes_the_spec_example() {
        let t = TraceParent::parse(GOOD).expect("valid");
        assert!(t.sampled);
        assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.header(), GOOD);
        let unsampled = TraceParent::parse(&GOOD.replace("-01", "-00")).expect("valid");
        assert!(!unsampled.sampled);
    }

    #[test]
    fn refuses_what_the_spec_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A future version may carry more fields.
        assert!(TraceParent::parse(&format!("01{}-more", &GOOD[2..])).is_some());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any header value is read without panicking, and what is read is
        /// written back as the same version-00 context.
        #[test]
        fn any_value_parses_safely_and_round_trips(value in "\\PC{0,80}") {
            if let Some(t) = TraceParent::parse(&value) {
                prop_assert_eq!(TraceParent::parse(&t.header()), Some(t));
            }
        }

        #[test]
        fn well_formed_values_round_trip(trace in "[0-9a-f]{32}", span in "[0-9a-f]{16}", sampled: bool) {
            let value = format!("00-{trace}-{span}-{}", if sampled { "01" } else { "00" });
            match TraceParent::parse(&value) {
                Some(t) => prop_assert_eq!(t.header(), value),
                None => prop_assert!(trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0')),
            }
        }
    }
}
