"""Semantic balancing: the prompt is embedded and the request goes to the
target whose description is closest, else to the CATCHALL target. The mock's
vectors come from a hash of the text (not from its meaning), so these tests
use a prompt equal to a description for a match (similarity 1) and a strict
threshold for a miss; what they prove is the plumbing: descriptions embedded
once, the prompt embedded per request, the choice honoured, failures survived."""

from conftest import chat
from configs import ALICE_KEY, PROVIDER_KEY

MATH = "What is 1+1?"


def semantic_config(chat_mock, embed_url: str, threshold: float = 0.99) -> str:
    def target(model: str, description: str) -> str:
        return f"""
[[plugins.config.targets]]
description = "{description}"
auth = {{ header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}" }}
[plugins.config.targets.model]
provider = "openai"
name = "{model}"
options = {{ upstream_url = "{chat_mock.chat_url}" }}
"""

    return f"""
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[plugins]]
name = "key-auth"
service = "llm"

[[plugins]]
name = "ai-proxy-advanced"
service = "llm"
[plugins.config.balancer]
algorithm = "semantic"
[plugins.config.embeddings]
auth = {{ header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}" }}
model = {{ provider = "openai", name = "text-embedding-3-small", options = {{ upstream_url = "{embed_url}" }} }}
[plugins.config.vectordb]
threshold = {threshold}
{target("math-model", MATH)}
{target("poetry-model", "Write a poem about the sea")}
{target("general-model", "CATCHALL")}
"""


def served_by(gw, content: str) -> str:
    r = gw.http.post("/chat", json=chat(content), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    return r.headers["x-tollgate-llm-model"]


def test_prompts_go_to_the_closest_description_else_the_catchall(mock, gateway_factory):
    gw = gateway_factory(semantic_config(mock, f"{mock.url}/v1/embeddings"))
    assert served_by(gw, MATH) == "openai/math-model"
    assert served_by(gw, "Write a poem about the sea") == "openai/poetry-model"
    assert served_by(gw, "Tell me a joke") == "openai/general-model"
    assert served_by(gw, MATH) == "openai/math-model"
    embeds = [r for r in mock.requests() if r["path"] == "/v1/embeddings"]
    # Descriptions once (the catch-all is not embedded), then one per prompt.
    assert embeds[0]["body"]["input"] == [MATH, "Write a poem about the sea"]
    assert [e["body"]["input"] for e in embeds[1:]] == [[MATH], ["Write a poem about the sea"], ["Tell me a joke"], [MATH]]
    assert all(e["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}" for e in embeds)


def test_requests_are_still_served_when_the_embeddings_model_fails(mock, gateway_factory):
    gw = gateway_factory(semantic_config(mock, "http://127.0.0.1:9/v1/embeddings"))
    # No embeddings: balanced as if there were no semantics, never an error.
    for _ in range(3):
        assert served_by(gw, MATH).startswith("openai/")
