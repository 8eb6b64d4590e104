//! `pingora-bare`: Pingora's own proxy path and nothing else, the floor the
//! benchmark measures tollgate against (bench/README.md). One upstream peer,
//! no filters, no metrics, no logging: every phase of `ProxyHttp` keeps
//! Pingora's default. Built with tollgate's release profile and allocator.

use std::net::SocketAddr;
use std::process::ExitCode;

use async_trait::async_trait;
use clap::Parser;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_proxy::{ProxyHttp, Session};

/// As in tollgate: allocation is a visible share of Pingora's own CPU per
/// request, so the floor must use the same allocator.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "pingora-bare", version, about = "Pingora's plain proxy to one upstream (a benchmark baseline)")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The one upstream, `ip:port` (plain HTTP/1.1, pooled).
    #[arg(long)]
    upstream: SocketAddr,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Read buffer of each client connection in bytes; 0 keeps Pingora's
    /// default (64 KiB). The benchmark passes tollgate's 16 KiB so the two
    /// listeners are set alike.
    #[arg(long, default_value_t = 0)]
    read_buffer: usize,
}

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let conf = ServerConf { threads: cli.threads.max(1), ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service(&server.configuration, Bare { upstream: cli.upstream });
    let listener = ListenerConfig::tcp(cli.listen.as_str());
    let listener = if cli.read_buffer > 0 {
        listener.l4_buffer(L4BufferSettings { read: Some(cli.read_buffer), write: None })
    } else {
        listener
    };
    proxy.add_listener(listener);
    server.add_service(proxy);
    eprintln!("pingora-bare listening on {} -> {}", cli.listen, cli.upstream);
    server.run_forever()
}
