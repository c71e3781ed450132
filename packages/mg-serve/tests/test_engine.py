"""The torch engine without HTTP: what it loads from each folder, and that its numbers are the peer
libraries' (sentence-transformers, transformers) for the same folder."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from conftest import LABELS, TEXTS
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mg_serve.engine import FolderError, InputError, TorchEngine, inspect_folder, load_engine


@pytest.fixture(scope="module")
def embedder(embed_export):
    engine = TorchEngine(embed_export)
    yield engine
    engine.close()


def reference_logits(folder, texts, pairs=None) -> torch.Tensor:
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**tok(texts, pairs, padding=True, return_tensors="pt")).logits


def test_inspect_folder_reads_the_task_from_the_export_or_the_files(
    embed_export, classify_export, rm_export, plain_classifier, minilm_dir, tiny_encoder_dir, tiny_decoder_dir
):
    assert inspect_folder(embed_export).task == "embed"
    assert inspect_folder(classify_export).kind == "seq_cls"
    assert inspect_folder(rm_export).task == "rm"
    assert inspect_folder(plain_classifier).task == "classify"  # *ForSequenceClassification
    assert inspect_folder(minilm_dir).task == "embed"  # modules.json
    assert inspect_folder(tiny_encoder_dir).task == "embed"  # a base BertModel
    assert inspect_folder(tiny_decoder_dir).kind == "generate"  # *ForCausalLM


def test_inspect_folder_says_what_is_wrong_in_one_line(tmp_path):
    with pytest.raises(FolderError, match="no such folder"):
        inspect_folder(tmp_path / "missing")
    with pytest.raises(FolderError, match=r"not a model folder \(no config.json\)"):
        inspect_folder(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["WhisperForAudioFrameClassification"]})
    )
    with pytest.raises(FolderError, match="neither an embedding model"):
        inspect_folder(tmp_path)


def test_embeddings_equal_sentence_transformers(embedder, embed_export):
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(str(embed_export), device="cpu").encode(TEXTS)
    got = np.array(embedder.embed(TEXTS))
    cosine = (got * expected).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(expected, axis=-1)
    assert cosine.min() > 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1, atol=1e-5)  # the export's Normalize module


def test_matryoshka_dimensions_cut_then_normalize(embedder):
    full = np.array(embedder.embed(TEXTS[:2]))
    cut = np.array(embedder.embed(TEXTS[:2], dimensions=64))
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=-1, keepdims=True)
    np.testing.assert_allclose(cut, expected, atol=1e-5)
    with pytest.raises(InputError, match="not one of the model's matryoshka dimensions"):
        embedder.embed(TEXTS[:1], dimensions=100)


def test_score_and_rerank_of_an_embedder_are_cosines(embedder):
    a, b = np.array(embedder.embed(["a cat", "a dog"]))
    assert embedder.score(["a cat"], ["a dog"]) == pytest.approx([float(a @ b)], abs=1e-5)
    scores = embedder.rerank("cat", ["car", "cat", "dog"])
    assert int(np.argmax(scores)) == 1


def test_classify_probabilities_equal_transformers(classify_export):
    engine = TorchEngine(classify_export)
    try:
        got = engine.classify(TEXTS)
    finally:
        engine.close()
    probs = torch.softmax(reference_logits(classify_export, TEXTS), -1)
    np.testing.assert_allclose([g["probs"] for g in got], probs.numpy(), atol=1e-5)
    assert [g["label"] for g in got] == [LABELS[i] for i in probs.argmax(-1).tolist()]


def test_rerank_export_scores_are_the_cross_encoders_sigmoid(rerank_export):
    from sentence_transformers import CrossEncoder

    docs = ["a cat on a mat", "hi there", "short", "深度学习"]
    engine = TorchEngine(rerank_export)
    try:
        got = engine.rerank("the cat sat on the mat", docs)
    finally:
        engine.close()
    expected = CrossEncoder(str(rerank_export), device="cpu").predict(
        [("the cat sat on the mat", d) for d in docs]
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert min(got) > 0 and max(got) < 1


def test_reward_model_scores_are_raw_and_equal_transformers(rm_export):
    engine = TorchEngine(rm_export)
    try:
        got = engine.classify(TEXTS)
    finally:
        engine.close()
    # Right padding here, left/right in transformers: the decoder scores the last real token either way.
    expected = reference_logits(rm_export, TEXTS)[:, 0]
    np.testing.assert_allclose([g["probs"][0] for g in got], expected.numpy(), atol=1e-4)


def test_plain_one_output_classifier_serves_score_and_rerank(plain_classifier):
    engine = load_engine(plain_classifier)
    try:
        assert engine.capabilities == {"classify", "pooling", "score", "rerank"}
        got = engine.score(["a", "b"], ["c", "d"])
    finally:
        engine.close()
    # No problem_type, one output: vLLM's sigmoid.
    expected = torch.sigmoid(reference_logits(plain_classifier, ["a", "b"], ["c", "d"])[:, 0])
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def test_over_long_inputs_fail_unless_truncation_is_asked(embedder):
    long = "word " * 300  # the export's max_length is 128
    with pytest.raises(InputError, match="maximum context length is 128"):
        embedder.pooled_embeddings([long])
    pooled = embedder.pooled_embeddings([long], truncate_prompt_tokens=16)
    assert pooled.prompt_tokens == 16
    assert embedder.pooled_embeddings([long], truncate_prompt_tokens=-1).prompt_tokens == 128


def test_token_id_inputs_equal_their_text(embedder):
    ids = embedder.tokenizer("the cat sat")["input_ids"]
    by_ids = embedder.pooled_embeddings([ids]).values
    by_text = embedder.pooled_embeddings(["the cat sat"]).values
    torch.testing.assert_close(by_ids, by_text)
    with pytest.raises(InputError, match="outside the vocabulary"):
        embedder.pooled_embeddings([[10**7]])


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(embedder):
    batches = []
    embedder.add_batch_observer(lambda rows, tokens: batches.append(rows))
    expected = {t: embedder.embed([t])[0] for t in TEXTS}
    results: dict[int, list] = {}

    def client(i: int) -> None:
        results[i] = embedder.embed([TEXTS[i % len(TEXTS)]])[0]

    batches.clear()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, vector in results.items():
        np.testing.assert_allclose(vector, expected[TEXTS[i % len(TEXTS)]], atol=1e-5)
    assert len(results) == 24
    assert max(batches) > 1, batches  # requests from different threads shared a forward


def test_a_mixed_length_request_runs_grouped_by_length_and_keeps_its_order(embed_export):
    """Short questions and long answers in one request: the forwards pad little (each to its own
    longest row), and every row is still the embedding of its own text."""
    from mg_testing.corpus import ENGLISH

    texts = [ENGLISH[i] if i % 2 else " ".join(ENGLISH[i : i + 4]) for i in range(16)]
    overhead = 4
    engine = TorchEngine(embed_export, overhead_tokens=overhead)
    forwards: list[tuple[int, int]] = []
    try:
        alone = np.array([engine.embed([t])[0] for t in texts])
        engine.add_batch_observer(lambda rows, tokens: forwards.append((rows, tokens)))
        together = np.array(engine.embed(texts))
    finally:
        engine.close()
    np.testing.assert_allclose(together, alone, atol=1e-5)
    lengths = [len(ids) for ids in engine.tokenizer(texts)["input_ids"]]
    real, padded = sum(lengths), sum(tokens for _, tokens in forwards)
    assert sum(rows for rows, _ in forwards) == len(texts)
    # No more than one forward per distinct length would cost (no padding, an overhead each), while one
    # forward of all would pad every row to the longest.
    assert padded <= real + overhead * (len(set(lengths)) - len(forwards))
    assert padded < len(texts) * max(lengths)


def test_mixed_inputs_in_one_forward_equal_each_alone(embedder):
    """Token-id inputs (no token_type_ids) and texts of different lengths padded into one forward."""
    ids = embedder.tokenizer("the cat sat")["input_ids"]
    inputs = [ids, "a dog sat on it", "hi", ids[1:-1]]
    forwards: list[int] = []
    embedder.add_batch_observer(lambda rows, tokens: forwards.append(rows))
    together = embedder.pooled_embeddings(inputs).values
    assert forwards == [4]  # a few padded tokens cost less than another forward
    for row, item in zip(together, inputs, strict=True):
        torch.testing.assert_close(row, embedder.pooled_embeddings([item]).values[0])
