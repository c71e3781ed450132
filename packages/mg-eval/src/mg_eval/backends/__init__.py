"""Where predictions come from: a local HF model folder (torch) or a served model (HTTP).

Both offer the same methods, so every task evaluator runs unchanged against either:
  generate(prompts, max_new_tokens) -> list[str]           prompts are message lists
  classify(inputs) -> list[{"label", "probs"}]              inputs are str | (str, str) | message lists
  reward(inputs) -> list[float]
  embed(texts) -> list[list[float]]                          L2-normalized
  rerank(query, documents) -> list[float]
  score(text_1, text_2) -> list[float]                       one score per pair
"""
