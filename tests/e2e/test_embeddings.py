"""route_type `llm/v1/embeddings` end to end for every provider: the official
OpenAI SDK asks tollgate for embeddings, tollgate calls the mock's native
embeddings endpoint (OpenAI, Azure and openai-compatible as sent, Mistral's
dialect, Gemini batchEmbedContents and Vertex AI predict, Bedrock InvokeModel
for Cohere Embed and Titan with SigV4, Cohere v2 embed, Ollama /api/embed),
and the SDK gets OpenAI's answer back. The mock's vectors depend only on the
text, so every provider must return the very same vectors."""

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Callable

import openai
import pytest
from openai import OpenAI

from configs import ALICE_KEY, PROVIDER_KEY, llm_config

INPUTS = ["What is 1+1?", "The capital of France is Paris."]
AWS_KEY_ID = "AKIDEXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CLIENT_KEY = "sk-client-should-never-travel"


def f32(x: float) -> float:
    """`x` rounded to the nearest 32-bit float, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def mock_vector(text: str, dimensions: int = 8) -> list[float]:
    """The mock's vector for `text` (crates/tollgate-mock/src/embedding.rs):
    8 values per SHA-256 block, each a big-endian u32 mapped onto [-1, 1]."""
    out: list[float] = []
    block = 0
    while len(out) < dimensions:
        digest = hashlib.sha256(text.encode() + (block.to_bytes(4, "little") if block else b"")).digest()
        for i in range(8):
            x = int.from_bytes(digest[4 * i : 4 * i + 4], "big")
            out.append(f32(x / 0xFFFFFFFF * 2.0 - 1.0))
        block += 1
    return out[:dimensions]


def bearer(headers: dict) -> bool:
    return headers.get("authorization") == f"Bearer {PROVIDER_KEY}"


def sigv4(headers: dict) -> bool:
    auth = headers.get("authorization", "")
    return (
        auth.startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")
        and "/us-east-1/bedrock/aws4_request" in auth
        and "Signature=" in auth
        and "x-amz-date" in headers
        and AWS_SECRET not in json.dumps(headers)
    )


@dataclass
class Provider:
    id: str
    name: str
    model: str
    url: Callable[[str], str]
    auth: str
    # The path (and query) the mock must have seen.
    path: str
    credential: Callable[[dict], bool]
    # The translated request body the mock must have seen for `texts` (the
    # SDK asks for base64 unless told otherwise).
    native: Callable[[list[str]], dict]
    options: str = ""
    # Titan embeds one text per call.
    single: bool = False
    # Where a `dimensions` request goes in the native body (None: refused).
    dimensions_at: Callable[[dict], object] | None = None


def openai_body(model: str) -> Callable[[list[str]], dict]:
    return lambda texts: {"model": model, "input": texts, "encoding_format": "base64"}


PROVIDERS = [
    Provider(
        id="openai",
        name="openai",
        model="text-embedding-3-small",
        url=lambda base: f"{base}/v1/embeddings",
        auth=f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
        path="/v1/embeddings",
        credential=bearer,
        native=openai_body("text-embedding-3-small"),
        dimensions_at=lambda b: b["dimensions"],
    ),
    Provider(
        id="azure",
        name="azure",
        model="text-embedding-3-small",
        url=lambda base: f"{base}/openai/deployments/prod-emb/embeddings?api-version=2024-10-21",
        auth=f'header_name = "api-key", header_value = "{PROVIDER_KEY}"',
        path="/openai/deployments/prod-emb/embeddings?api-version=2024-10-21",
        credential=lambda h: h.get("api-key") == PROVIDER_KEY and "authorization" not in h,
        native=openai_body("text-embedding-3-small"),
        dimensions_at=lambda b: b["dimensions"],
    ),
    Provider(
        id="openai-compatible",
        name="openai-compatible",
        model="bge-m3",
        url=lambda base: f"{base}/compat/v1/embeddings",
        auth=f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
        path="/compat/v1/embeddings",
        credential=bearer,
        native=openai_body("bge-m3"),
        dimensions_at=lambda b: b["dimensions"],
    ),
    Provider(
        id="mistral",
        name="mistral",
        model="mistral-embed",
        # The mock speaks Mistral's dialect under /mistral: it refuses fields
        # Mistral does not know (`dimensions`, `user`) with a 422.
        url=lambda base: f"{base}/mistral/v1/embeddings",
        auth=f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
        path="/mistral/v1/embeddings",
        credential=bearer,
        # base64 is encoded by the gateway: Mistral gets no encoding_format.
        native=lambda texts: {"model": "mistral-embed", "input": texts},
        dimensions_at=lambda b: b["output_dimension"],
    ),
    Provider(
        id="gemini",
        name="gemini",
        model="gemini-embedding-001",
        url=lambda base: base,
        auth=f'header_name = "x-goog-api-key", header_value = "{PROVIDER_KEY}"',
        path="/v1beta/models/gemini-embedding-001:batchEmbedContents",
        credential=lambda h: h.get("x-goog-api-key") == PROVIDER_KEY,
        native=lambda texts: {
            "requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}} for t in texts
            ]
        },
        dimensions_at=lambda b: b["requests"][0]["outputDimensionality"],
    ),
    Provider(
        id="vertex",
        name="gemini",
        model="text-embedding-005",
        url=lambda base: base,
        auth=f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
        options='gemini = { api_endpoint = "us-central1-aiplatform.googleapis.com", project_id = "proj", location_id = "us-central1" }',
        path="/v1/projects/proj/locations/us-central1/publishers/google/models/text-embedding-005:predict",
        credential=bearer,
        native=lambda texts: {"instances": [{"content": t} for t in texts]},
        dimensions_at=lambda b: b["parameters"]["outputDimensionality"],
    ),
    Provider(
        id="bedrock-cohere",
        name="bedrock",
        model="cohere.embed-english-v3",
        url=lambda base: base,
        auth=f'aws_access_key_id = "{AWS_KEY_ID}", aws_secret_access_key = "{AWS_SECRET}"',
        options='bedrock = { aws_region = "us-east-1" }',
        path="/model/cohere.embed-english-v3/invoke",
        credential=sigv4,
        native=lambda texts: {"texts": texts, "input_type": "search_document"},
        # Embed v3 has no output dimension: the gateway refuses `dimensions`.
        dimensions_at=None,
    ),
    Provider(
        id="bedrock-titan",
        name="bedrock",
        model="amazon.titan-embed-text-v2:0",
        url=lambda base: base,
        auth=f'aws_access_key_id = "{AWS_KEY_ID}", aws_secret_access_key = "{AWS_SECRET}"',
        options='bedrock = { aws_region = "us-east-1" }',
        path="/model/amazon.titan-embed-text-v2%3A0/invoke",
        credential=sigv4,
        native=lambda texts: {"inputText": texts[0]},
        single=True,
        dimensions_at=lambda b: b["dimensions"],
    ),
    Provider(
        id="cohere",
        name="cohere",
        model="embed-v4.0",
        url=lambda base: f"{base}/v2/embed",
        auth=f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
        path="/v2/embed",
        credential=bearer,
        native=lambda texts: {
            "model": "embed-v4.0",
            "texts": texts,
            "input_type": "search_document",
            "embedding_types": ["float"],
        },
        dimensions_at=lambda b: b["output_dimension"],
    ),
    Provider(
        id="ollama",
        name="ollama",
        model="all-minilm",
        url=lambda base: f"{base}/api/embed",
        auth=f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"',
        path="/api/embed",
        credential=bearer,
        native=lambda texts: {"model": "all-minilm", "input": texts},
        dimensions_at=lambda b: b["dimensions"],
    ),
]


def start(mock, gateway_factory, p: Provider) -> OpenAI:
    gw = gateway_factory(
        llm_config(
            mock,
            path="/openai",
            provider=p.name,
            model_name=p.model,
            auth=p.auth,
            upstream_url=p.url(mock.url),
            options=p.options,
            route_type="llm/v1/embeddings",
        )
    )
    return OpenAI(
        base_url=gw.url + "/openai",
        api_key=CLIENT_KEY,
        default_headers={"apikey": ALICE_KEY},
        max_retries=0,
        timeout=30,
    )


@pytest.fixture(params=PROVIDERS, ids=lambda p: p.id)
def setup(request, mock, gateway_factory):
    p: Provider = request.param
    client = start(mock, gateway_factory, p)
    yield p, client, mock
    client.close()


def texts_for(p: Provider) -> list[str]:
    return INPUTS[:1] if p.single else INPUTS


def full_path(req: dict) -> str:
    q = req.get("query")
    return req["path"] + (f"?{q}" if q else "")


def only_request(mock) -> dict:
    (seen,) = mock.requests()
    return seen


def test_one_vector_per_input_the_same_from_every_provider(setup):
    p, client, mock = setup
    texts = texts_for(p)
    # No encoding_format: the SDK asks for base64 and decodes it itself.
    raw = client.embeddings.with_raw_response.create(model=p.model, input=texts)
    resp = raw.parse()
    assert raw.headers["x-tollgate-llm-model"] == f"{p.name}/{p.model}"
    assert resp.object == "list"
    assert resp.model == p.model
    assert [d.index for d in resp.data] == list(range(len(texts)))
    assert all(d.object == "embedding" for d in resp.data)
    # base64 of little-endian f32 on the wire, decoded by the SDK: exactly the
    # mock's values.
    assert all(isinstance(d["embedding"], str) for d in raw.http_response.json()["data"])
    assert [d.embedding for d in resp.data] == [mock_vector(t) for t in texts]
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens

    seen = only_request(mock)
    assert full_path(seen) == p.path
    assert p.credential(seen["headers"]), seen["headers"]
    assert seen["body"] == p.native(texts)
    # The caller's own credentials never reach the provider.
    dumped = json.dumps(seen)
    assert ALICE_KEY not in dumped and CLIENT_KEY not in dumped


def test_float_encoding_and_a_single_string(setup):
    p, client, mock = setup
    resp = client.embeddings.create(model=p.model, input=INPUTS[1], encoding_format="float")
    (d,) = resp.data
    assert isinstance(d.embedding, list)
    # JSON carries each f32 in its shortest form: equal once read as f32.
    assert [f32(v) for v in d.embedding] == mock_vector(INPUTS[1])
    # OpenAI's format (Mistral's too) carries the encoding; the others have none.
    body = only_request(mock)["body"]
    openai_format = p.name in ("openai", "azure", "openai-compatible", "mistral")
    assert body.get("encoding_format") == ("float" if openai_format else None)


def test_dimensions_reach_the_native_field(setup):
    p, client, mock = setup
    texts = texts_for(p)
    if p.dimensions_at is None:
        with pytest.raises(openai.BadRequestError) as err:
            client.embeddings.create(model=p.model, input=texts, dimensions=16)
        assert "'dimensions'" in err.value.response.json()["error"]["message"]
        assert mock.requests() == []
        return
    resp = client.embeddings.create(model=p.model, input=texts, dimensions=16)
    assert [d.embedding for d in resp.data] == [mock_vector(t, 16) for t in texts]
    assert p.dimensions_at(only_request(mock)["body"]) == 16


def test_provider_errors_come_back_in_openai_shape(setup):
    p, client, mock = setup
    mock.behave(status=429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as err:
        client.embeddings.create(model=p.model, input=texts_for(p))
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "7"
    body = err.value.response.json()
    assert body["error"]["type"] == "rate_limit_error"
    # The provider's own message, read from its native error body.
    assert body["error"]["message"] == "mock error 429"

    mock.behave(status=503, retry_after=None)
    with pytest.raises(openai.InternalServerError) as err:
        client.embeddings.create(model=p.model, input=texts_for(p))
    assert err.value.status_code == 503
    assert err.value.response.json()["error"]["message"] == "mock error 503"


def test_an_answer_that_is_not_embeddings_is_a_502_naming_the_provider(setup):
    p, client, mock = setup
    mock.behave(fault="garbage")
    with pytest.raises(openai.APIStatusError) as err:
        client.embeddings.create(model=p.model, input=texts_for(p))
    assert err.value.status_code == 502
    assert f"provider {p.name}" in err.value.response.json()["error"]["message"]


def provider(id: str) -> Provider:
    (p,) = [p for p in PROVIDERS if p.id == id]
    return p


def test_titan_takes_one_input_and_refuses_two_by_name(mock, gateway_factory):
    client = start(mock, gateway_factory, provider("bedrock-titan"))
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="amazon.titan-embed-text-v2:0", input=INPUTS)
    assert err.value.status_code == 400
    message = err.value.response.json()["error"]["message"]
    assert "'input'" in message, message
    # Refused by the gateway: Bedrock was never called.
    assert mock.requests() == []
    client.close()


def test_a_native_refusal_keeps_its_status_and_message(mock, gateway_factory):
    """Vertex AI's gemini-embedding models take one instance per predict call;
    the mock refuses more with Google's 400, which reaches the caller in
    OpenAI's shape."""
    p = provider("vertex")
    p = Provider(**{**p.__dict__, "model": "gemini-embedding-001"})
    client = start(mock, gateway_factory, p)
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=p.model, input=INPUTS)
    body = err.value.response.json()
    assert err.value.status_code == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"]
    # One input is fine.
    resp = client.embeddings.create(model=p.model, input=INPUTS[:1])
    assert resp.data[0].embedding == mock_vector(INPUTS[0])
    client.close()


def test_a_body_credential_reaches_the_provider_on_embeddings(mock, gateway_factory):
    cfg = llm_config(
        mock,
        path="/openai",
        route_type="llm/v1/embeddings",
        model_name="text-embedding-3-small",
        auth='param_name = "api_key", param_value = "sk-in-body", param_location = "body"',
        upstream_url=f"{mock.url}/v1/embeddings",
    )
    gw = gateway_factory(cfg)
    r = gw.http.post("/openai", json={"input": ["hello"]}, headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    assert only_request(mock)["body"]["api_key"] == "sk-in-body"
