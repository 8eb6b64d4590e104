"""acl (allow/deny by consumer group) and key-auth's anonymous consumer."""

from conftest import chat
from configs import ALICE_KEY, BOB_KEY, llm_config, passthrough_block

FORBIDDEN = "You cannot consume this service"

ACL = """
[[plugins]]
name = "acl"
service = "llm"
[plugins.config]
{rule}
"""

CAROL = """
[[consumers]]
username = "carol"
keyauth_credentials = [{ key = "carol-key" }]
"""


def post(gw, key=None, path="/chat"):
    return gw.http.post(path, json=chat(), headers={"apikey": key} if key else {})


def assert_forbidden_llm(r):
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["message"] == FORBIDDEN
    assert err["type"] == "permission_error"


def test_denied_group_gets_403(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, extra=ACL.format(rule='deny = ["contractors"]')))
    assert_forbidden_llm(post(gw, BOB_KEY))
    assert mock.requests() == [], "a refused request must not reach the provider"
    r = post(gw, ALICE_KEY)
    assert r.status_code == 200, r.text
    assert len(mock.requests()) == 1


def test_allow_list_admits_members_only(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, extra=CAROL + ACL.format(rule='allow = ["dev"]')))
    assert post(gw, ALICE_KEY).status_code == 200
    assert_forbidden_llm(post(gw, BOB_KEY))
    assert_forbidden_llm(post(gw, "carol-key"))  # a consumer without groups
    assert len(mock.requests()) == 1
    lines = gw.access_log(wait_for=3)
    assert [(l["consumer"], l["status"]) for l in lines] == [("alice", 200), ("bob", 403), ("carol", 403)]


def test_authentication_comes_before_authorisation(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, extra=ACL.format(rule='allow = ["dev"]')))
    r = post(gw, "unknown-key")
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "Unauthorized"


def test_anonymous_serves_requests_without_a_key(mock, gateway_factory):
    guest = """
[[consumers]]
username = "guest"
groups = ["public"]
"""
    gw = gateway_factory(llm_config(mock, key_auth='anonymous = "guest"', extra=guest))
    r = post(gw)
    assert r.status_code == 200, r.text
    r = post(gw, ALICE_KEY)
    assert r.status_code == 200, r.text
    r = post(gw, "wrong-key")
    assert r.status_code == 200, "with anonymous set, a failed authentication falls back to it"
    lines = gw.access_log(wait_for=3)
    assert [l["consumer"] for l in lines] == ["guest", "alice", "guest"]
    # The provider still never sees a client key.
    assert all("apikey" not in s["headers"] for s in mock.requests())
    assert 'consumer="guest"' in gw.metrics()


def test_anonymous_is_subject_to_acl(mock, gateway_factory):
    guest = """
[[consumers]]
username = "guest"
groups = ["public"]
"""
    gw = gateway_factory(
        llm_config(mock, key_auth='anonymous = "guest"', extra=guest + ACL.format(rule='deny = ["public"]'))
    )
    assert_forbidden_llm(post(gw))
    assert post(gw, ALICE_KEY).status_code == 200
    (first, second) = gw.access_log(wait_for=2)
    assert (first["consumer"], first["status"]) == ("guest", 403)
    assert (second["consumer"], second["status"]) == ("alice", 200)


def test_anonymous_by_custom_id_gets_its_own_model(mock, gateway_factory):
    """A consumer-scoped ai-proxy replaces the service's for that consumer, the
    anonymous one included."""
    guest = """
[[consumers]]
custom_id = "anon-visitor"

[[plugins]]
name = "ai-proxy"
consumer = "anon-visitor"
[plugins.config]
route_type = "llm/v1/chat"
[plugins.config.model]
provider = "openai"
name = "gpt-4o-mini"
[plugins.config.model.options]
upstream_url = "{url}"
""".format(url=mock.chat_url)
    gw = gateway_factory(llm_config(mock, key_auth='anonymous = "anon-visitor"', extra=guest))
    r = post(gw)
    assert r.status_code == 200, r.text
    assert r.headers["x-tollgate-llm-model"] == "openai/gpt-4o-mini"
    r = post(gw, ALICE_KEY)
    assert r.status_code == 200, r.text
    assert r.headers["x-tollgate-llm-model"] == "openai/gpt-4o"
    anon, alice = mock.requests()
    assert anon["body"]["model"] == "gpt-4o-mini"
    assert "authorization" not in anon["headers"]
    assert alice["body"]["model"] == "gpt-4o"
    assert [l["consumer"] for l in gw.access_log(wait_for=2)] == ["anon-visitor", "alice"]


def test_acl_on_a_passthrough_route_answers_in_kong_shape(mock, gateway_factory):
    extra = passthrough_block(mock.url) + f"""
[[plugins]]
name = "key-auth"
service = "pt"

[[plugins]]
name = "acl"
service = "pt"
[plugins.config]
allow = ["dev"]
"""
    gw = gateway_factory(llm_config(mock, extra=extra))
    r = post(gw, BOB_KEY, path="/passthrough/v1/chat/completions")
    assert r.status_code == 403
    assert r.json() == {"message": FORBIDDEN}
    r = post(gw, path="/passthrough/v1/chat/completions")
    assert r.status_code == 401
    assert r.json() == {"message": "No API key found in request"}
    assert mock.requests() == []
    r = post(gw, ALICE_KEY, path="/passthrough/v1/chat/completions")
    assert r.status_code == 200, r.text
