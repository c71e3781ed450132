"""Small separable datasets in Chinese and English for training tests: a few epochs on them must
bring the loss down and the metrics above chance."""

from __future__ import annotations

import json
import random
from pathlib import Path

# Chinese and English queries per intent. all-MiniLM-L6-v2's vocabulary reads most Chinese characters as
# [UNK], so tests on MiniLM pass english=True; the tiny models' tokenizers cover both.
INTENTS = {
    "退货": [
        "我要退货",
        "这个商品怎么退",
        "申请退款退货",
        "质量有问题想退货",
        "return this item please",
        "I want a refund",
        "how do I send it back",
        "refund my money",
    ],
    "物流": [
        "快递到哪了",
        "物流信息不更新",
        "什么时候发货",
        "包裹还没到",
        "where is my parcel",
        "track my delivery",
        "when will it ship",
        "my package has not arrived",
    ],
    "发票": [
        "怎么开发票",
        "发票抬头写错了",
        "需要增值税发票",
        "补开发票",
        "I need an invoice",
        "invoice for my order",
        "send me a receipt with tax",
        "fix the billing name on my invoice",
    ],
}
DOCS = {
    "退货": "Returns and refunds 退货政策: send items back within seven days from the order page for a full refund.",
    "物流": "Shipping and delivery 物流说明: parcels ship within 48 hours; track the package on the order page.",
    "发票": "Invoices and billing 发票说明: request a tax invoice or receipt from your account after ordering.",
}


def _texts(label: str, english: bool) -> list[str]:
    return [t for t in INTENTS[label] if not english or t.isascii()]


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def classify_rows(seed: int = 0, copies: int = 3, *, english: bool = False) -> list[dict]:
    rng = random.Random(seed)
    rows = [
        {"text": t, "label": label}
        for label in INTENTS
        for t in _texts(label, english)
        for _ in range(copies)
    ]
    rng.shuffle(rows)
    return rows


def pair_rows() -> list[dict]:
    """Preference pairs where the chosen answer is polite and helpful, the rejected one rude."""
    prompts = ["你好", "请问怎么退货？", "Where is my order?", "能开发票吗？", "Can you help me?", "谢谢"]
    good = [
        "您好，很高兴为您服务！",
        "您好，请在订单页申请退货。",
        "Your order ships tomorrow, thank you!",
        "可以的，请提供抬头。",
    ]
    bad = ["不知道", "自己查", "no", "别烦我"]
    return [
        {"prompt": p, "chosen": good[i % 4], "rejected": bad[(i + j) % 4]}
        for i, p in enumerate(prompts)
        for j in range(3)
    ]


def retrieval_rows(*, english: bool = False) -> list[dict]:
    rows = []
    for label in INTENTS:
        others = [d for k, d in DOCS.items() if k != label]
        for t in _texts(label, english):
            rows.append(
                {"query": t, "positive": DOCS[label], "negative_1": others[0], "negative_2": others[1]}
            )
    return rows


def score_rows(*, english: bool = False) -> list[dict]:
    rows = []
    labels = list(INTENTS)
    for n, label in enumerate(labels):
        texts = _texts(label, english)
        other = _texts(labels[(n + 1) % len(labels)], english)
        for i, t in enumerate(texts):
            rows.append({"sentence1": t, "sentence2": texts[(i + 1) % len(texts)], "score": 1.0})
            rows.append({"sentence1": t, "sentence2": other[i % len(other)], "score": 0.0})
    return rows


# Question -> its own answer: embedding rows where every positive is unique, so in-batch negatives are true
# negatives and the InfoNCE loss can really fall.
FAQ = [
    ("How do I reset my password?", "Click 'forgot password' on the sign-in page and follow the email link."),
    ("When will my parcel arrive?", "Standard delivery takes three to five business days."),
    ("Can I get a refund for a damaged item?", "Damaged goods are refunded in full once we receive a photo."),
    ("Do you ship abroad?", "We deliver to over fifty countries, with customs fees paid on arrival."),
    ("How do I change my email address?", "Update the email in account settings under profile details."),
    ("Is there a student discount?", "Students get ten percent off with a valid university ID."),
    ("What are your opening hours?", "Stores open from nine in the morning to nine in the evening."),
    ("How can I cancel my order?", "Orders can be cancelled from the order page until they are shipped."),
    ("Which payment methods do you accept?", "We accept credit cards, PayPal and bank transfer."),
    ("How do I contact customer support?", "Chat with an agent in the app or call our hotline."),
    (
        "Can I change the delivery address?",
        "The address can be edited before the parcel leaves the warehouse.",
    ),
    ("Do gift cards expire?", "Gift cards stay valid for three years from purchase."),
    ("如何修改收货地址？", "发货前可以在订单详情页修改收货地址。"),
    ("会员积分怎么用？", "积分可以在结算时抵扣现金，一百积分抵一元。"),
    ("可以开增值税专用发票吗？", "企业用户可在个人中心申请增值税专用发票。"),
    ("退款多久到账？", "退款一般在三个工作日内原路返回。"),
    ("快递丢了怎么办？", "包裹丢失请联系客服，我们会补发或全额退款。"),
    ("商品有质量问题怎么处理？", "质量问题七天内可免费退换，运费由我们承担。"),
]


def embed_rows(*, english: bool = False) -> list[dict]:
    """Each question with its own answer as the positive and another answer as a hard negative."""
    pairs = [(q, a) for q, a in FAQ if not english or q.isascii()]
    return [
        {"query": q, "positive": a, "negative": pairs[(i + 1) % len(pairs)][1]}
        for i, (q, a) in enumerate(pairs)
    ]
