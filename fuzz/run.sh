#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 600), one after the other,
# seeded from the adapters' test fixtures. Needs cargo-fuzz
# (`cargo install cargo-fuzz`); the stable toolchain runs it with
# RUSTC_BOOTSTRAP=1. Findings land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${SECS:-600}"
FIX=../crates/tollgate-llm/tests/fixtures

# Provider indices as in the targets' ALL arrays.
declare -A INDEX=([gemini]=3 [bedrock]=4 [cohere]=6 [ollama]=7)
mkdir -p corpus/provider_answer corpus/provider_stream corpus/chat_request corpus/config corpus/mcp_message
for provider in "${!INDEX[@]}"; do
    i="${INDEX[$provider]}"
    for f in "$FIX/$provider"/answer_*; do
        [ -e "$f" ] || continue
        { printf "\\x$(printf %02x "$i")"; cat "$f"; } > "corpus/provider_answer/$provider-$(basename "$f")"
    done
    for f in "$FIX/$provider"/stream_*; do
        [ -e "$f" ] || continue
        { printf "\\x$(printf %02x "$i")\\x07"; cat "$f"; } > "corpus/provider_stream/$provider-$(basename "$f")"
    done
done
printf '{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto","stream":true}' \
    > corpus/chat_request/seed.json
cp ../conf/tollgate.toml ../conf/examples/*.toml corpus/config/
printf '%s' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}' > corpus/mcp_message/call.json
printf '%s' '[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"delete_user"}],"nextCursor":"2"}}]' > corpus/mcp_message/list.json
printf 'event: endpoint
data: /messages/?session_id=abc

event: message
data: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"d"}]}}

' > corpus/mcp_message/stream.sse

for target in chat_request provider_answer provider_stream config mcp_message; do
    echo "== $target ($SECS s)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -15
done
