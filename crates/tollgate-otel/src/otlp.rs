//! A batch of spans as the body of an OTLP/HTTP JSON export
//! (`POST /v1/traces`, `Content-Type: application/json`).
//!
//! OTLP/JSON is the protobuf message in proto3's JSON mapping, with two
//! exceptions the spec makes: trace and span ids are hex strings (not base64),
//! and enums are numbers. 64-bit integers are strings, as proto3 JSON asks.

use serde_json::{json, Map, Value};

use crate::span::{AttrValue, Span, Status};

/// The instrumentation scope named in every export.
pub const SCOPE_NAME: &str = "tollgate";

/// `resource` is the process's attributes (`service.name`, ...).
pub fn encode(resource: &[(String, AttrValue)], spans: &[Span]) -> Vec<u8> {
    let spans: Vec<Value> = spans.iter().map(span).collect();
    let body = json!({
        "resourceSpans": [{
            "resource": {
                "attributes": resource.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
            },
            "scopeSpans": [{
                "scope": {"name": SCOPE_NAME, "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    });
    body.to_string().into_bytes()
}

fn span(s: &Span) -> Value {
    let mut out = Map::new();
    out.insert("traceId".into(), s.trace_id.to_string().into());
    out.insert("spanId".into(), s.span_id.to_string().into());
    if let Some(p) = s.parent_id {
        out.insert("parentSpanId".into(), p.to_string().into());
    }
    out.insert("name".into(), s.name.as_str().into());
    out.insert("kind".into(), (s.kind as i64).into());
    out.insert("startTimeUnixNano".into(), s.start_unix_nanos.to_string().into());
    out.insert("endTimeUnixNano".into(), s.end_unix_nanos.to_string().into());
    out.insert("attributes".into(), s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>().into());
    out.insert(
        "status".into(),
        match &s.status {
            Status::Unset => json!({}),
            // STATUS_CODE_ERROR
            Status::Error(message) => json!({"code": 2, "message": message}),
        },
    );
    Value::Object(out)
}

fn attribute(key: &str, value: &AttrValue) -> Value {
    json!({"key": key, "value": any_value(value)})
}

fn any_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({"stringValue": s}),
        AttrValue::Int(n) => json!({"intValue": n.to_string()}),
        // JSON has no NaN or infinities; OTLP/JSON writes them as strings.
        AttrValue::Double(x) if x.is_finite() => json!({"doubleValue": x}),
        AttrValue::Double(x) => {
            json!({"doubleValue": if x.is_nan() { "NaN" } else if *x > 0.0 { "Infinity" } else { "-Infinity" }})
        }
        AttrValue::Bool(b) => json!({"boolValue": b}),
        AttrValue::StrArray(items) => {
            json!({"arrayValue": {"values": items.iter().map(|s| json!({"stringValue": s})).collect::<Vec<_>>()}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};
    use crate::span::SpanKind;

    #[test]
    fn encodes_ids_as_hex_times_as_strings_and_enums_as_numbers() {
        let mut s = Span {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([0x01; 8]),
            parent_id: Some(SpanId([0x02; 8])),
            name: "chat gpt-4o".into(),
            kind: SpanKind::Client,
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_500_000_000,
            attributes: Vec::new(),
            status: Status::Error("http_503".into()),
        };
        s.attr("gen_ai.usage.input_tokens", 12u64)
            .attr("gen_ai.request.temperature", 0.5)
            .attr("gen_ai.response.finish_reasons", AttrValue::StrArray(vec!["stop".into()]))
            .attr_opt::<bool>("absent", None);
        let resource = vec![("service.name".to_string(), AttrValue::from("tollgate"))];
        let v: Value = serde_json::from_slice(&encode(&resource, &[s])).expect("json");
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "tollgate"}})
        );
        let span = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["spanId"], "0101010101010101");
        assert_eq!(span["parentSpanId"], "0202020202020202");
        assert_eq!(span["kind"], 3);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["status"], json!({"code": 2, "message": "http_503"}));
        let attrs = span["attributes"].as_array().expect("array");
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0]["value"], json!({"intValue": "12"}));
        assert_eq!(attrs[1]["value"], json!({"doubleValue": 0.5}));
        assert_eq!(attrs[2]["value"]["arrayValue"]["values"][0], json!({"stringValue": "stop"}));
    }
}
