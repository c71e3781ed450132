"""Pure metric functions (no model, no torch) over Python lists and numpy arrays.

Results are plain floats and dicts. BLEU, chrF and ROUGE are on 0-100; everything else on 0-1
(errors and margins in the units of the data).
"""

from mg_eval.metrics.classification import (
    accuracy,
    classification_metrics,
    classification_report,
    confusion_matrix,
    multilabel_metrics,
    precision_recall_f1,
    roc_auc,
)
from mg_eval.metrics.generation import (
    METRICS_STYLES,
    MetricsStyle,
    bleu,
    check_metrics_style,
    chrf,
    exact_match,
    generation_metrics,
    perplexity,
    rouge,
    rouge_tokenize,
)
from mg_eval.metrics.llamafactory_style import MissingMetricsExtra, llamafactory_metrics
from mg_eval.metrics.preference import mean_margin, pairwise_accuracy, preference_metrics
from mg_eval.metrics.regression import mae, mse, pearson, regression_metrics, spearman
from mg_eval.metrics.retrieval import (
    average_precision,
    dcg_at_k,
    ndcg_at_k,
    rank,
    recall_at_k,
    reciprocal_rank_at_k,
    retrieval_metrics,
)

__all__ = [
    "METRICS_STYLES",
    "MetricsStyle",
    "MissingMetricsExtra",
    "accuracy",
    "average_precision",
    "bleu",
    "check_metrics_style",
    "chrf",
    "classification_metrics",
    "classification_report",
    "confusion_matrix",
    "dcg_at_k",
    "exact_match",
    "generation_metrics",
    "llamafactory_metrics",
    "mae",
    "mean_margin",
    "mse",
    "multilabel_metrics",
    "ndcg_at_k",
    "pairwise_accuracy",
    "pearson",
    "perplexity",
    "precision_recall_f1",
    "preference_metrics",
    "rank",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "regression_metrics",
    "retrieval_metrics",
    "roc_auc",
    "rouge",
    "rouge_tokenize",
    "spearman",
]
