"""PerspectiveScorer against a fake Perspective server on 127.0.0.1 (never the real API).

Injected `sleep`/`clock` make the back-off and rate limit deterministic and instant.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from fairalign.eval.toxicity import PerspectiveScorer


class FakePerspective(BaseHTTPRequestHandler):
    """Text "flaky": 429 twice (the second with Retry-After: 7), then 200. "down": always 503.
    "bad": 400. "weird": 200 with a malformed body. Anything else: 200, score = len(text) / 100."""

    hits: dict = {}
    log: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = parse_qs(urlparse(self.path).query).get("key", [None])[0]
        text = body["comment"]["text"]
        FakePerspective.log.append((text, key, body["requestedAttributes"], body["doNotStore"]))
        n = FakePerspective.hits[text] = FakePerspective.hits.get(text, 0) + 1
        headers = {}
        if text == "flaky" and n <= 2:
            status, payload = 429, {"error": "quota"}
            if n == 2:
                headers["Retry-After"] = "7"
        elif text == "down":
            status, payload = 503, {"error": "unavailable"}
        elif text == "bad":
            status, payload = 400, {"error": "language not supported"}
        elif text == "weird":
            status, payload = 200, {"attributeScores": {}}
        else:
            status, payload = 200, {"attributeScores": {"TOXICITY": {"summaryScore": {"value": len(text) / 100}}}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FakePerspective.hits, FakePerspective.log = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakePerspective)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1alpha1/comments:analyze"
    httpd.shutdown()
    httpd.server_close()


class FakeTime:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def clock(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


def make_scorer(url, t, **kwargs):
    session = requests.Session()
    session.trust_env = False  # no proxy for 127.0.0.1
    return PerspectiveScorer(api_key="k3y", url=url, session=session, sleep=t.sleep, clock=t.clock, progress=False, **kwargs)


def test_scores_retries_and_failures(server):
    t = FakeTime()
    scorer = make_scorer(server, t, qps=1000, max_retries=3, backoff=1.0, max_backoff=64)
    scores = scorer(["hello", "flaky", "bad", "down", "", "weird"])
    assert scores == [0.05, 0.05, None, None, 0.0, None]
    assert FakePerspective.hits == {"hello": 1, "flaky": 3, "bad": 1, "down": 4, "weird": 1}  # "" never sent
    assert all(key == "k3y" and attrs == {"TOXICITY": {}} and dns for _, key, attrs, dns in FakePerspective.log)
    backoffs = [s for s in t.sleeps if s >= 0.5]
    # flaky: 1 s, then max(2 s, Retry-After 7 s); down: 1, 2, 4 s, then give up after max_retries = 3.
    assert backoffs == [1.0, 7.0, 1.0, 2.0, 4.0]
    reasons = {f["text"]: f["reason"] for f in scorer.failures}
    assert reasons == {"bad": "HTTP 400", "down": "HTTP 503", "weird": reasons["weird"]} and "malformed" in reasons["weird"]
    assert scorer.describe()["num_failures"] == 3


def test_rate_limit_spaces_request_starts(server):
    t = FakeTime()
    starts = []
    scorer = make_scorer(server, t, qps=2.0)
    post = scorer.session.post

    def timed_post(*args, **kwargs):
        starts.append(t.now)
        return post(*args, **kwargs)

    scorer.session.post = timed_post
    assert scorer(["a", "bb", "ccc", "dddd"]) == [0.01, 0.02, 0.03, 0.04]
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([0.5, 0.5, 0.5])


def test_connection_errors_become_none():
    t = FakeTime()
    # Nothing listens on this port (bound then closed), so every attempt fails to connect.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    scorer = make_scorer(f"http://127.0.0.1:{port}/x", t, qps=1000, max_retries=2, backoff=0.5, timeout=2)
    assert scorer(["hello"]) == [None]
    assert scorer.num_requests == 3 and "ConnectionError" in scorer.failures[0]["reason"]


def test_needs_a_key(monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="PERSPECTIVE_API_KEY"):
        PerspectiveScorer()
