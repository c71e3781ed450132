"""A served model behind the OpenAI/vLLM-compatible HTTP API (vLLM, or mg-serve).

Shapes follow vLLM (see vllm-compat.md): /v1/chat/completions, /v1/embeddings, /classify, /rerank,
/score, /v1/models. Plain stdlib HTTP: evaluating an endpoint needs no torch.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm


class EndpointError(RuntimeError):
    pass


class EndpointTimeout(EndpointError):
    """The server accepted the request but sent no answer within the timeout."""


class Endpoint:
    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        batch_size: int = 16,
        timeout: float = 60,
        workers: int = 4,
        api_key: str | None = None,
    ):
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[:-3]
        self.batch_size, self.timeout, self.workers, self.api_key = batch_size, timeout, workers, api_key
        self.model = model or self._first_model()

    def _request(self, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(
            self.url + path, data=data, headers=headers, method="GET" if body is None else "POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", errors="replace")
            try:
                parsed = json.loads(detail)
                err = parsed.get("error", parsed)
                detail = err.get("message", detail) if isinstance(err, dict) else str(err)
            except ValueError:
                pass
            raise EndpointError(f"{self.url}{path}: HTTP {e.code}: {detail.strip()[:500]}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError):  # urllib wraps a timeout while waiting for the headers
                raise EndpointTimeout(f"{self.url}{path}: no answer within {self.timeout:g} s") from None
            raise EndpointError(f"{self.url}{path}: cannot reach the endpoint ({reason})") from None

    def _first_model(self) -> str:
        models = self._request("/v1/models").get("data") or []
        if not models:
            raise EndpointError(f"{self.url}/v1/models lists no model")
        return models[0]["id"]

    def _chunks(self, items: list, desc: str):
        for start in tqdm(range(0, len(items), self.batch_size), desc=desc, leave=False, disable=None):
            yield items[start : start + self.batch_size]

    def generate(self, prompts: list[list[dict]], max_new_tokens: int = 64) -> list[str]:
        def one(messages):
            body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0}
            return self._request("/v1/chat/completions", body)["choices"][0]["message"]["content"] or ""

        with ThreadPoolExecutor(self.workers) as pool:
            answers = list(
                tqdm(pool.map(one, prompts), total=len(prompts), desc="generate", leave=False, disable=None)
            )
        return [a.strip() for a in answers]

    def classify(self, inputs: list) -> list[dict]:
        if any(isinstance(x, tuple) for x in inputs):
            raise EndpointError(
                "text-pair classification has no endpoint in the vLLM API; use --model, or the score task"
            )
        results: list[dict] = []
        texts = [x for x in inputs if isinstance(x, str)]
        if len(texts) == len(inputs):
            for batch in self._chunks(texts, "classify"):
                data = self._request("/classify", {"model": self.model, "input": batch})["data"]
                results += [
                    {"label": d.get("label"), "probs": d["probs"]}
                    for d in sorted(data, key=lambda d: d["index"])
                ]
            return results
        for messages in tqdm(
            inputs, desc="classify", leave=False, disable=None
        ):  # conversations: one request each
            d = self._request("/classify", {"model": self.model, "messages": messages})["data"][0]
            results.append({"label": d.get("label"), "probs": d["probs"]})
        return results

    def reward(self, inputs: list) -> list[float]:
        return [r["probs"][0] for r in self.classify(inputs)]

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in self._chunks(texts, "embed"):
            data = self._request("/v1/embeddings", {"model": self.model, "input": batch})["data"]
            vectors += [_normalize(d["embedding"]) for d in sorted(data, key=lambda d: d["index"])]
        return vectors

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        body = {"model": self.model, "query": query, "documents": documents, "top_n": len(documents)}
        scores = [0.0] * len(documents)
        for r in self._request("/rerank", body)["results"]:
            scores[r["index"]] = r["relevance_score"]
        return scores

    def score(self, text_1: list[str], text_2: list[str]) -> list[float]:
        out: list[float] = []
        pairs = list(zip(text_1, text_2, strict=True))
        for batch in self._chunks(pairs, "score"):
            body = {"model": self.model, "text_1": [a for a, _ in batch], "text_2": [b for _, b in batch]}
            data = self._request("/score", body)["data"]
            out += [d["score"] for d in sorted(data, key=lambda d: d["index"])]
        return out


def _normalize(v: list[float]) -> list[float]:
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v] if norm else v
