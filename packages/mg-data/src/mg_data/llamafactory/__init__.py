"""LLaMA-Factory's datasets: read an entry of a dataset_info.json as LLaMA-Factory 0.9.5 reads it, and write
a dataset folder (data file + entry) LLaMA-Factory reads back the same.

    ref = dataset_ref("data", "alpaca_en_demo")          # "data/dataset_info.json#alpaca_en_demo"
    examples = mg_data.iter_examples(ref, "sft", max_samples=1000)
    write_dataset("train.jsonl", "lf_data", "train", "sft")  # lf_data/train.jsonl + its entry

A reference works wherever mg-data takes a path (the API and every `mg-data` command). info.py reads the
entries, reader.py selects the rows (file or folder, split, num_samples, max_samples), rows.py reads each row
through the entry's columns and tags, writer.py writes.
"""

from mg_data.llamafactory.info import Entry, load_entry
from mg_data.llamafactory.reader import EntrySource, open_entry
from mg_data.llamafactory.writer import TASKS, default_name, entry_for, write_dataset
from mg_data.sources import dataset_ref, is_ref, split_ref

__all__ = [
    "TASKS",
    "Entry",
    "EntrySource",
    "dataset_ref",
    "default_name",
    "entry_for",
    "is_ref",
    "load_entry",
    "open_entry",
    "split_ref",
    "write_dataset",
]
