"""Small real tokenizers made from the built-in corpus: a Qwen-like ChatML BPE and a BERT-like WordPiece.

Only `tokenizers` is imported at module level; transformers is imported inside the builders, because
torch-free suites import this module and a transformers import can drag torch in when torch is installed.
"""

from importlib.resources import files
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from mg_testing.corpus import chinese_characters, sentences

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
CHATML_SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
CHATML_VOCAB_SIZE = 1536
# 4 is the least that keeps every token whole characters; 8 leaves room for a longer corpus.
CHARACTER_REPEATS = 8

WORDPIECE_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Longest input the tiny models take (their max_position_embeddings).
DECODER_MAX_LENGTH = 2048
ENCODER_MAX_LENGTH = 512

# Qwen2's pre-tokenizer split: letters run together (so a Chinese clause is one pre-token that BPE merges
# inside), digits stand alone, punctuation and newlines are kept apart from words.
QWEN2_SPLIT_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def chatml_template() -> str:
    """The Jinja ChatML template (with {% generation %} around assistant turns) saved with the tokenizer."""
    return files("mg_testing").joinpath("chatml.jinja").read_text(encoding="utf-8")


def train_chatml_bpe() -> Tokenizer:
    """A byte-level BPE laid out like Qwen2's tokenizer.json, trained on the built-in corpus."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=CHATML_VOCAB_SIZE,
        special_tokens=CHATML_SPECIAL_TOKENS,
        # All 256 bytes stay in the vocabulary, so any text (emoji, rare CJK) still encodes and round-trips.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Trained on the sentences alone, byte-level BPE leaves most Chinese characters without a token of
    # their own (~100 of ~300) and learns merges that glue one character to the first byte of the next.
    # Each character also given as a word of its own, several times over, makes every within-character
    # merge more frequent (so learnt earlier) than any merge across characters: every token is then whole
    # characters.
    characters = chinese_characters() * CHARACTER_REPEATS
    tokenizer.train_from_iterator(sentences() + characters, trainer=trainer)
    return tokenizer


def build_chatml_tokenizer(out_dir: str | Path) -> Path:
    """Train the ChatML BPE and save it as a Hugging Face tokenizer folder; returns the folder.

    pad is <|endoftext|> and eos is <|im_end|>, as in Qwen2-Instruct; there is no bos token.
    """
    from transformers import PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_chatml_bpe(),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        chat_template=chatml_template(),
        model_max_length=DECODER_MAX_LENGTH,
        # Cleanup would rewrite " ." to "." on decode and break decode(encode(x)) == x.
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(out_dir)
    return out_dir


def wordpiece_vocab() -> dict[str, int]:
    """A BERT vocabulary for the corpus: special tokens, every character, its ##-continuation, every word.

    Built by hand rather than with WordPieceTrainer, whose vocabulary changes from run to run (ties are
    broken in hash order); this one is the same on every machine. Words outside the corpus still encode,
    as characters and ##-pieces, and Chinese text is one token per character as in BERT.
    """
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = {
        word
        for sentence in sentences()
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(sentence))
    }
    characters = {char for word in words for char in word}
    continuations = {"##" + char for word in words for char in word[1:]}
    tokens = (
        WORDPIECE_SPECIAL_TOKENS + sorted(characters) + sorted(continuations) + sorted(words - characters)
    )
    return {token: index for index, token in enumerate(tokens)}


def build_wordpiece_tokenizer(out_dir: str | Path) -> Path:
    """Save a standard BERT tokenizer folder with the corpus WordPiece vocabulary; returns the folder."""
    from transformers import BertTokenizerFast

    out_dir = Path(out_dir)
    # BertTokenizerFast rebuilds BERT's own pipeline (normalizer, [CLS] ... [SEP] template) around our
    # vocabulary, so the folder is laid out like any BERT checkpoint's.
    tokenizer = BertTokenizerFast(
        vocab=wordpiece_vocab(), do_lower_case=True, model_max_length=ENCODER_MAX_LENGTH
    )
    tokenizer.save_pretrained(out_dir)
    return out_dir
