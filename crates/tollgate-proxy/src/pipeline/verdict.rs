//! What a step says: go on, or stop (answered, or a refusal to answer).

/// Why the pipeline stops before serving.
#[derive(Debug)]
pub enum Stop {
    /// A step answered the request itself (a metadata document).
    Answered,
    /// A refusal, to be answered in the route's error shape.
    Refuse(Refusal),
}

/// A refusal of the gateway's own.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    /// Headers the refusal adds (`WWW-Authenticate`, `Retry-After`...).
    pub headers: Vec<(String, String)>,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into(), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Stop::Refuse(r)
    }
}

/// A step's verdict: go on, or stop.
pub type Verdict<T = ()> = Result<T, Stop>;
