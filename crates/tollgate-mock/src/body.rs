//! Response body type. A two-variant enum instead of a boxed body so the hot
//! (non-streaming) path allocates nothing beyond the payload itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http_body::{Body, Frame, SizeHint};

use crate::state::StreamGuard;

/// Error a body yields to make hyper abort the connection mid-response
/// (the `reset_mid_*` faults).
#[derive(Debug)]
pub struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock fault: response aborted")
    }
}

impl std::error::Error for Aborted {}

pub type ChunkStream = BoxStream<'static, Result<Bytes, Aborted>>;

pub enum MockBody {
    /// Whole body known up front; hyper sends Content-Length.
    Full(Option<Bytes>),
    /// Chunked (or deliberately truncated) body. The guard, if any, tracks
    /// open/cancelled streams for `/_mock/stats`.
    Stream { inner: ChunkStream, guard: Option<StreamGuard> },
}

impl MockBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(bytes.into()))
    }

    pub fn empty() -> Self {
        MockBody::Full(None)
    }

    pub fn stream(inner: ChunkStream, guard: Option<StreamGuard>) -> Self {
        MockBody::Stream { inner, guard }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream { inner, guard } => {
                let next = inner.poll_next_unpin(cx);
                if let Poll::Ready(None | Some(Err(_))) = next {
                    // Ended by us (normally or by a deliberate fault): not a
                    // client cancellation.
                    if let Some(g) = guard {
                        g.finish();
                    }
                }
                next.map(|o| o.map(|r| r.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream { .. } => SizeHint::default(),
        }
    }
}
