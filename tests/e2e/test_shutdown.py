"""SIGTERM: stop accepting, let in-flight streams finish, exit 0 without
waiting out the whole grace period."""

import signal
import socket
import time

from configs import ALICE_KEY, llm_config
from conftest import chat


def test_sigterm_lets_a_stream_finish_then_exits(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(chunks=20, chunk_delay_ms=100)
    started = time.monotonic()
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": ALICE_KEY}) as r:
        lines = r.iter_lines()
        assert next(l for l in lines if l.startswith("data:"))
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # New connections are refused while the stream drains.
        try:
            with socket.create_connection(("127.0.0.1", gw.port), timeout=1):
                refused = False
        except OSError:
            refused = True
        assert refused, "the listener still accepts after SIGTERM"
        rest = [l for l in lines if l.startswith("data:")]
    assert rest[-1] == "data: [DONE]", "the in-flight stream was cut"
    code = gw.proc.wait(timeout=15)
    assert code == 0
    # The default grace period is 30 s: exiting when idle must not wait it out.
    assert time.monotonic() - started < 15
    (line,) = [l for l in gw.access_log() if l["path"] == "/chat"]
    assert line["status"] == 200, "the access-log line of the drained stream was lost"
