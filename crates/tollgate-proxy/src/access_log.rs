//! The JSON access log: one line per request, written by a background thread so
//! that a slow terminal or disk never stalls a request.

use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines waiting for the writer; past this, lines are dropped and counted
/// rather than blocking the proxy.
const QUEUE: usize = 16 * 1024;

pub struct AccessLog {
    tx: Option<SyncSender<String>>,
    pub dropped: AtomicU64,
}

impl AccessLog {
    /// `"stdout"`, `"off"` or a file path (appended to).
    pub fn open(target: &str) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = match target {
            "off" => return Ok(AccessLog { tx: None, dropped: AtomicU64::new(0) }),
            "stdout" => Box::new(std::io::stdout()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(64 * 1024);
                while let Ok(line) = rx.recv() {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                    // Batch whatever else is already queued into one write.
                    while let Ok(line) = rx.try_recv() {
                        buf.extend_from_slice(line.as_bytes());
                        buf.push(b'\n');
                        if buf.len() > 60 * 1024 {
                            break;
                        }
                    }
                    let _ = out.write_all(&buf);
                    let _ = out.flush();
                    buf.clear();
                }
            })?;
        Ok(AccessLog { tx: Some(tx), dropped: AtomicU64::new(0) })
    }

    /// Whether lines are written at all (`false` for `"off"`): callers skip
    /// building a line nobody reads.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub fn write(&self, line: String) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(line) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
