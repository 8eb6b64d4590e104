"""Small config builders shared by the end-to-end tests (the harness is in conftest.py).

Every builder returns TOML text without a [server] table (the harness adds one)
unless `server` is given; then it writes its own with the harness's port placeholders.
"""

import json
import time

PROVIDER_KEY = "sk-provider-e2e"
ALICE_KEY = "alice-key"
BOB_KEY = "bob-key"


def server_table(**settings) -> str:
    """A [server] table on the harness's ports plus `settings` (TOML values)."""
    lines = [
        "[server]",
        'listen = ["127.0.0.1:@PORT@"]',
        'admin_listen = "127.0.0.1:@ADMIN_PORT@"',
    ]
    for k, v in settings.items():
        lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def passthrough_block(url: str, *, path: str = "/passthrough", service_extra: str = "") -> str:
    """A passthrough service `pt` at `url` with route `passthrough` on `path`,
    for a config's `extra`."""
    return f"""
[[services]]
name = "pt"
url = "{url}"
{service_extra}

[[routes]]
name = "passthrough"
service = "pt"
paths = ["{path}"]
"""


def llm_config(
    mock,
    *,
    path: str = "/chat",
    model_name: str | None = "gpt-4o",
    auth: str = f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
    options: str = "",
    logging: str = "log_statistics = true",
    key_auth: str | None = "",
    consumers: str | None = None,
    extra: str = "",
    server: str = "",
    upstream_url: str | None = None,
    provider: str = "openai",
    route_type: str = "llm/v1/chat",
    llm_format: str | None = None,
    methods: str = '["POST"]',
) -> str:
    """One LLM service `llm` with route `chat` on `path`, key-auth (unless
    key_auth is None), consumers alice (groups dev) and bob (groups contractors),
    and an ai-proxy of `route_type` pointed at the mock. `extra` is appended at
    the end and must start with a table or array-of-tables header."""
    if consumers is None:
        consumers = f"""
[[consumers]]
username = "alice"
custom_id = "alice-id"
groups = ["dev"]
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[consumers]]
username = "bob"
groups = ["contractors"]
keyauth_credentials = [{{ key = "{BOB_KEY}" }}]
"""
    key_auth_block = ""
    if key_auth is not None:
        key_auth_block = f"""
[[plugins]]
name = "key-auth"
service = "llm"
[plugins.config]
{key_auth}
"""
    model_line = f'name = "{model_name}"' if model_name is not None else ""
    url = upstream_url or mock.chat_url
    return f"""{server}
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["{path}"]
methods = {methods}
{consumers}
{key_auth_block}
[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
route_type = "{route_type}"
{f'llm_format = "{llm_format}"' if llm_format else ""}
auth = {{ {auth} }}
logging = {{ {logging} }}
[plugins.config.model]
provider = "{provider}"
{model_line}
[plugins.config.model.options]
upstream_url = "{url}"
{options}
{extra}
"""


def sse_events(lines) -> list:
    """The `data:` payloads of an SSE stream, from an iterator of text lines."""
    out = []
    for line in lines:
        if line.startswith("data:"):
            out.append(line[len("data:"):].strip())
    return out


def poll(fn, timeout: float = 5.0, interval: float = 0.02):
    """Calls fn until it returns something truthy or the timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def closed_port_url() -> str:
    """A loopback URL on a port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/chat/completions"
