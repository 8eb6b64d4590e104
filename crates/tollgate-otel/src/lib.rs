//! Traces in OpenTelemetry's shapes, without the OpenTelemetry SDK.
//!
//! The gateway makes at most a handful of spans per request, all known when the
//! request ends, so it needs none of the SDK's machinery (context propagation
//! through tasks, processors, its own exporter runtime). What it needs is here:
//! - [`context`]: the W3C `traceparent` header, read and written;
//! - [`ids`]: trace and span ids, random and cheap;
//! - [`sampler`]: OpenTelemetry's parent-based trace-id-ratio sampler;
//! - [`span`]: a finished span with its attributes;
//! - [`otlp`]: a batch of spans as an OTLP/HTTP JSON body (`/v1/traces`).

pub mod context;
pub mod ids;
pub mod otlp;
pub mod sampler;
pub mod span;

pub use context::TraceParent;
pub use ids::{SpanId, TraceId};
pub use span::{AttrValue, Span, SpanKind, Status};
