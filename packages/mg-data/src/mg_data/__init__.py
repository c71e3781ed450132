"""mg-data: training data formats (alpaca, sharegpt, messages), task schemas, conversion and validation.

Pure Python: installs and runs without torch. Every function that takes a path also takes a LLaMA-Factory
dataset reference, `DIR/dataset_info.json#NAME` (`dataset_ref`); mg_data.llamafactory writes such datasets.
"""

from mg_data.errors import DataError, Rejected, RowError
from mg_data.formats import FORMATS, detect
from mg_data.io import AtomicWriter, iter_rows, write_rows
from mg_data.pipeline import InvalidRows, Report, convert_file, iter_examples, validate_file
from mg_data.sources import dataset_ref, iter_source_rows, open_source
from mg_data.tasks import TASKS

__version__ = "0.1.0"


def convert_row(row, *, to: str, from_: str | None = None) -> dict:
    """Convert one row between conversation formats (format detected from its keys unless given)."""
    from mg_data import formats

    source = formats.get(from_ or detect(row) or "messages")
    return formats.get(to).from_conversation(source.to_conversation(row))


__all__ = [
    "FORMATS",
    "TASKS",
    "AtomicWriter",
    "DataError",
    "InvalidRows",
    "Rejected",
    "Report",
    "RowError",
    "convert_file",
    "convert_row",
    "dataset_ref",
    "detect",
    "iter_examples",
    "iter_rows",
    "iter_source_rows",
    "open_source",
    "validate_file",
    "write_rows",
]
