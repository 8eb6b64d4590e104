//! The JSON access log: one line per request, written by a background thread so
//! that a slow terminal or disk never stalls a request.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

/// Lines waiting for the writer; past this, lines are dropped and counted
/// rather than blocking the proxy.
const QUEUE: usize = 16 * 1024;

/// How long the writer lets lines gather after emptying the queue.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

pub struct AccessLog {
    tx: Option<SyncSender<String>>,
    pub dropped: AtomicU64,
    /// Lines handed to the writer and lines it has written, for `flush`.
    queued: AtomicU64,
    written: Arc<AtomicU64>,
}

impl AccessLog {
    /// `"stdout"`, `"off"` or a file path (appended to).
    pub fn open(target: &str) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = match target {
            "off" => {
                return Ok(AccessLog {
                    tx: None,
                    dropped: AtomicU64::new(0),
                    queued: AtomicU64::new(0),
                    written: Arc::new(AtomicU64::new(0)),
                })
            }
            "stdout" => Box::new(std::io::stdout()),
            path => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let (tx, rx) = sync_channel::<String>(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let done = written.clone();
        std::thread::Builder::new().name("access-log".into()).spawn(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Ok(line) = rx.recv() {
                let mut n = 1;
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                // Batch whatever else is already queued into one write.
                let mut drained = true;
                while let Ok(line) = rx.try_recv() {
                    n += 1;
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                    if buf.len() > 60 * 1024 {
                        drained = false;
                        break;
                    }
                }
                let _ = out.write_all(&buf);
                let _ = out.flush();
                buf.clear();
                done.fetch_add(n, Ordering::Release);
                // With the queue drained, let lines gather for a moment
                // rather than park on it: a parked writer must be woken
                // by every request (a futex call each, and a context
                // switch per line), which cost a tenth of the process's
                // CPU under load. Lines reach the log at most this late.
                if drained {
                    std::thread::sleep(GATHER);
                }
            }
        })?;
        Ok(AccessLog { tx: Some(tx), dropped: AtomicU64::new(0), queued: AtomicU64::new(0), written })
    }

    /// Whether lines are written at all (`false` for `"off"`): callers skip
    /// building a line nobody reads.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Waits (up to `max`) until every queued line is written, before an exit.
    pub fn flush(&self, max: std::time::Duration) {
        let deadline = std::time::Instant::now() + max;
        while self.written.load(Ordering::Acquire) < self.queued.load(Ordering::Relaxed)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    pub fn write(&self, line: String) {
        if let Some(tx) = &self.tx {
            match tx.try_send(line) {
                Ok(()) => {
                    self.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}
