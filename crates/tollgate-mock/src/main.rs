//! `tollgate-mock`: mock LLM provider binary. Prints exactly one line,
//! `tollgate-mock listening on ADDR`, so tests can start it on port 0 and read
//! the chosen port; nothing is logged per request (it is a benchmark upstream).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tollgate_mock::{Behavior, Config};

#[derive(Debug, Parser)]
#[command(name = "tollgate-mock", version, about = "Mock LLM provider (OpenAI and native provider wire formats)")]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: String,
    /// Delay before response headers.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Streaming: delay before the first event.
    #[arg(long, default_value_t = 0)]
    ttft_ms: u64,
    /// Streaming: number of content chunks.
    #[arg(long, default_value_t = 8)]
    chunks: usize,
    /// Streaming: delay before each content chunk.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Reported completion tokens (default: number of chunks).
    #[arg(long)]
    completion_tokens: Option<u64>,
    /// Do not record requests (benchmarks).
    #[arg(long)]
    no_record: bool,
    /// Tokio worker threads; 1 runs a single-threaded runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config {
        defaults: Behavior {
            latency_ms: cli.latency_ms,
            ttft_ms: cli.ttft_ms,
            chunks: cli.chunks,
            chunk_delay_ms: cli.chunk_delay_ms,
            completion_tokens: cli.completion_tokens,
            ..Behavior::default()
        },
        record: !cli.no_record,
    };
    // A current-thread runtime is the fastest for one core (no work stealing).
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate-mock: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&cli.listen).await?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "tollgate-mock listening on {addr}")?;
        out.flush()?;
        drop(out);
        tollgate_mock::serve(listener, config).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-mock: {e}");
            ExitCode::FAILURE
        }
    }
}
