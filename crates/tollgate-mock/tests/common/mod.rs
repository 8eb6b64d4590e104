//! Helpers shared by the end-to-end test files: an in-process mock on port 0
//! and a plain hyper client.

#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_mock::{AppState, Config};

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub struct Mock {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub client: HttpClient,
}

pub async fn start() -> Mock {
    let (addr, state, _task) = tollgate_mock::spawn(([127, 0, 0, 1], 0).into(), Config::default()).await.expect("bind");
    Mock { addr, state, client: Client::builder(TokioExecutor::new()).build_http() }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Mock {
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::builder().method(method).uri(format!("http://{}{}", self.addr, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = req.header("content-type", "application/json").body(Full::new(Bytes::from(body))).expect("request");
        self.request(req).await
    }

    /// POST of exactly these body bytes.
    pub async fn post_bytes(&self, path: &str, body: &'static [u8], headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}{}", self.addr, path))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.request(req.body(Full::new(Bytes::from_static(body))).expect("request")).await
    }

    async fn request(&self, req: Request<Full<Bytes>>) -> Answer {
        let resp = self.client.request(req).await.expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn behave(&self, patch: Value) {
        let a = self.post("/_mock/behavior", patch).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    }

    pub async fn stats(&self) -> Value {
        self.get("/_mock/stats").await.json()
    }

    /// Raw chat completion request over a fresh TCP connection; returns
    /// everything received until EOF or error, and the error if the
    /// connection failed.
    pub async fn raw(&self, body: &Value) -> (Vec<u8>, Option<std::io::Error>) {
        self.raw_to("/v1/chat/completions", body).await
    }

    /// [`Mock::raw`] to any path.
    pub async fn raw_to(&self, path: &str, body: &Value) -> (Vec<u8>, Option<std::io::Error>) {
        let mut tcp = TcpStream::connect(self.addr).await.expect("connect");
        let body = body.to_string();
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            body.len(),
            body
        );
        tcp.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
                Err(_) => panic!("mock did not close the connection; got {:?}", String::from_utf8_lossy(&out)),
                Ok(Ok(0)) => return (out, None),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return (out, Some(e)),
            }
        }
    }
}
