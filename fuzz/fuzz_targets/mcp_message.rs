//! What MCP traffic puts in front of the gateway: a client's JSON-RPC body,
//! a server's answer or SSE stream (tool lists filtered, legacy endpoint
//! events rewritten), and client-sent session ids to open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_mcp::{filter, jsonrpc, legacy, Sealer};
use tollgate_sse::{event_data, event_name, with_data, EventSplitter};

fuzz_target!(|data: &[u8]| {
    if let Ok(inbound) = jsonrpc::parse(data) {
        let _ = inbound.lists_tools();
        let _ = inbound.tool_calls().count();
    } else if let Err(e) = jsonrpc::parse(data) {
        let _ = e.body();
    }
    let permits = |name: &str| !name.starts_with('d');
    let _ = filter::filter_tools(data, &permits);

    // The same bytes as a server's stream, cut in two at a data-chosen point.
    let cut = data.first().map(|b| *b as usize % (data.len() + 1)).unwrap_or(0);
    let mut split = EventSplitter::new();
    for piece in [&data[..cut], &data[cut..]] {
        split.push(piece);
        while let Some(event) = split.next_event() {
            if event_name(&event) == b"endpoint" {
                if let Some(d) = event_data(&event).and_then(|d| String::from_utf8(d).ok()) {
                    let out = legacy::rewrite_endpoint(&d, &|p| format!("/gw{p}"), &|id| Some(id.to_string()));
                    let _ = with_data(&event, out.as_bytes());
                }
            } else if let Some(d) = event_data(&event) {
                if let Some(new) = filter::filter_tools(&d, &permits) {
                    let _ = with_data(&event, &new);
                }
            }
        }
    }
    let _ = split.take_rest();

    if let Ok(text) = std::str::from_utf8(data) {
        let sealer = Sealer::new(b"fuzzing-secret-0123456789");
        let _ = sealer.open(text);
        let _ = legacy::query_param(text, "session_id");
    }
});
