"""Perspective API scorer (Jigsaw/Google; the scorer of Gehman et al. 2020) with rate limiting and retries.

The public quota is about 1 query per second and 429 responses are frequent, so this scorer
- spaces request *starts* at least 1/qps seconds apart (retries included),
- retries 429, 5xx and network errors with exponential back-off, base * 2^attempt capped at
  max_backoff, honouring a `Retry-After` header when the server sends one,
- gives up on other 4xx (bad key, unsupported language) at once,
- returns None for a text it could not score, and keeps the reasons in `failures`.
Empty or whitespace-only texts get 0.0 without a request: the API rejects empty comments, and an empty
continuation contains nothing toxic.

Perspective is announced to shut down in 2026; the default scorer is a local classifier. Tests run against
a fake server on 127.0.0.1 (`url=`) with an injected `sleep`/`clock`: never the real API.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from fairalign.eval.toxicity.scorers import Scorer

PERSPECTIVE_URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
RETRY_STATUS = {429, 500, 502, 503, 504}


class PerspectiveScorer(Scorer):
    """TOXICITY summary score from the Perspective API, one request per text.

    api_key: key (default: $PERSPECTIVE_API_KEY). qps: max request starts per second. max_retries:
    retries after the first attempt. backoff / max_backoff: seconds. session: object with
    `post(url, params=, json=, timeout=)` returning a response with `status_code`, `headers`, `json()`
    (default `requests.Session()`); `sleep` / `clock` are injectable for tests.
    """

    name = "perspective"

    def __init__(
        self,
        api_key: str | None = None,
        qps: float = 1.0,
        max_retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 64.0,
        timeout: float = 30.0,
        attribute: str = "TOXICITY",
        languages: Sequence[str] = ("en",),
        url: str = PERSPECTIVE_URL,
        session=None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: bool = True,
    ):
        api_key = api_key or os.environ.get("PERSPECTIVE_API_KEY")
        if not api_key:
            raise ValueError("PerspectiveScorer needs an API key: pass api_key=... or set PERSPECTIVE_API_KEY")
        if qps <= 0 or max_retries < 0 or backoff < 0:
            raise ValueError(f"need qps > 0, max_retries >= 0, backoff >= 0 (got qps={qps}, max_retries={max_retries}, backoff={backoff})")
        if session is None:
            import requests

            session = requests.Session()
        self.api_key, self.qps, self.max_retries = api_key, qps, max_retries
        self.backoff, self.max_backoff, self.timeout = backoff, max_backoff, timeout
        self.attribute, self.languages, self.url = attribute, list(languages), url
        self.session, self.sleep, self.clock, self.progress = session, sleep, clock, progress
        self._next_start = 0.0
        self.failures: list[dict] = []
        self.num_requests = 0

    def describe(self) -> dict:
        return {"name": self.name, "attribute": self.attribute, "languages": self.languages, "qps": self.qps,
                "num_requests": self.num_requests, "num_failures": len(self.failures), "notice": self.notice}

    def _wait_for_slot(self) -> None:
        now = self.clock()
        if now < self._next_start:
            self.sleep(self._next_start - now)
            now = self._next_start
        self._next_start = now + 1.0 / self.qps

    def _delay(self, attempt: int, response) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        retry_after = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
        if retry_after is not None:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass  # an HTTP-date Retry-After: keep the exponential delay
        return delay

    def score_one(self, text: str, index: int = 0) -> float | None:
        if not text.strip():
            return 0.0
        body = {"comment": {"text": text}, "languages": self.languages,
                "requestedAttributes": {self.attribute: {}}, "doNotStore": True}
        reason = "no attempt"
        for attempt in range(self.max_retries + 1):
            self._wait_for_slot()
            self.num_requests += 1
            response = None
            try:
                response = self.session.post(self.url, params={"key": self.api_key}, json=body, timeout=self.timeout)
            except Exception as err:  # connection reset, timeout, DNS: all worth a retry
                reason = f"{type(err).__name__}: {err}"
            else:
                if response.status_code == 200:
                    try:
                        return float(response.json()["attributeScores"][self.attribute]["summaryScore"]["value"])
                    except (KeyError, TypeError, ValueError) as err:
                        reason = f"malformed response ({type(err).__name__}: {err})"
                        break
                reason = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUS:
                    break  # bad key, unsupported language, text too long: retrying cannot help
            if attempt < self.max_retries:
                self.sleep(self._delay(attempt, response))
        self.failures.append({"index": index, "reason": reason, "text": text[:80]})
        return None

    def __call__(self, texts: Sequence[str]) -> list[float | None]:
        from tqdm.auto import tqdm

        texts = list(texts)
        return [self.score_one(t, i) for i, t in enumerate(tqdm(texts, desc="perspective", unit="text",
                                                                disable=not self.progress or len(texts) < 2))]
