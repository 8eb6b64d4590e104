"""server.ip_requests_per_second: a per-IP shield that refuses floods before
authentication costs anything."""

from configs import llm_config, server_table
from conftest import chat


def test_a_flooding_ip_is_refused_before_auth(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(ip_requests_per_second=5)))
    rs = [gw.http.post("/chat", json=chat()) for _ in range(30)]
    codes = [r.status_code for r in rs]
    # Unauthenticated requests get 401 while under the shield's rate, then 429.
    assert codes[:5] == [401] * 5, codes
    refused = [r for r in rs if r.status_code == 429]
    assert refused, codes
    assert refused[0].headers["retry-after"] == "1"
    assert "ip_requests_per_second" in refused[0].json()["message"]
