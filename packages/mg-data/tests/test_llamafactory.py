"""Reading LLaMA-Factory datasets through `DIR/dataset_info.json#NAME`, from the API and every command."""

import json

import lf_data
import numpy as np
import pytest
from conftest import mg_data, read_jsonl, write_jsonl
from lf_data import EXPECTED, INFO, entry_line, make_dataset_dir, write_info, write_rows

import mg_data as api
from mg_data.errors import DataError
from mg_data.llamafactory import dataset_ref, split_ref
from mg_data.llamafactory.sampling import sample_indices
from mg_data.pipeline import InvalidRows


@pytest.fixture
def info(tmp_path):
    return make_dataset_dir(tmp_path / "data")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_layout_reads_as_llamafactory_reads_it(info, name):
    task, expected = EXPECTED[name]
    assert list(api.iter_examples(dataset_ref(info.parent, name), task)) == expected


def test_reference_is_the_folder_and_the_name(info):
    assert dataset_ref(info.parent, "dpo") == f"{info}#dpo"
    rows = list(api.iter_rows(f"{info}#dpo"))
    starts = [
        n for n, text in enumerate((info.parent / "dpo.json").read_text().splitlines(), 1) if text == "  {"
    ]
    assert [line for line, _, _ in rows] == starts == [2, 18]  # where each row starts in dpo.json
    assert rows[0][1]["chosen"] == {"from": "gpt", "value": "7"}


def test_rows_name_their_real_file_and_line(info):
    folder = info.parent / "parts"
    items = [(file, line) for file, line, _, _ in api.iter_source_rows(f"{info}#folder")]
    assert items == [
        (str(folder / "part-1.jsonl"), 1),
        (str(folder / "part-2.jsonl"), 1),
        (str(folder / "part-2.jsonl"), 2),
    ]
    csv_lines = [line for _, line, _, _ in api.iter_source_rows(f"{info}#csv")]
    assert csv_lines == [2, 3]  # the second record spans lines 3-4


def test_blank_text_lines_are_no_texts_but_count_for_the_split(info):
    write_info(
        info.parent, {"wiki": {"file_name": "wiki.txt", "columns": {"prompt": "text"}, "split": "train[1:]"}}
    )
    # LLaMA-Factory's rows are the three lines; [1:] drops the first, the blank one is no text.
    assert list(api.iter_examples(f"{info}#wiki", "pt")) == [
        {"text": "Autism is a neurodevelopmental condition."}
    ]


def test_num_samples_draws_the_rows_llamafactory_draws(info):
    # The rows numpy's legacy generator picks after np.random.seed(42), as LLaMA-Factory's loader does.
    for total, count, seed in [(10, 4, 42), (4, 7, 42), (1000, 999, 7), (1, 3, 42), (300, 1000, 1234)]:
        np.random.seed(seed)
        expected = list(np.random.permutation(total)[:count])
        if count > total:
            expected += list(np.random.choice(total, count - total))
        assert sample_indices(total, count, seed) == [int(i) for i in expected], (total, count, seed)
    for seed in (42, 7):  # 42: LLaMA-Factory's default training seed, and mg-data's default
        np.random.seed(seed)
        picked = [1 + int(i) for i in np.random.permutation(4)] + [1 + int(i) for i in np.random.choice(4, 3)]
        sampled = api.iter_examples(
            f"{info}#sampled", "sft", seed=seed
        )  # split train[1:-1] of 6 rows, 7 samples
        assert [ex["messages"][0]["content"] for ex in sampled] == [f"q{i}" for i in picked]


def test_split_slices_as_datasets_slices(info):
    sliced = [ex["messages"][0]["content"] for ex in api.iter_examples(f"{info}#sliced", "sft")]
    assert sliced == ["q3", "q4", "q5"]  # train[50%:] of 6 rows
    for split, expected in [
        ("train[:2]", ["q0", "q1"]),
        ("train[-2:]", ["q4", "q5"]),
        ("train[10%:50%]", ["q1", "q2"]),
    ]:
        write_info(info.parent, {"many": {"file_name": "many.jsonl", "split": split}})
        got = [ex["messages"][0]["content"] for ex in api.iter_examples(f"{info}#many", "sft")]
        assert got == expected, split


def test_max_samples_cuts_each_source_after_sampling(info, tmp_path):
    two = list(api.iter_examples(f"{info}#folder", "sft", max_samples=2))
    assert two == EXPECTED["folder"][1][:2]
    sampled = list(api.iter_examples(f"{info}#sampled", "sft"))
    assert list(api.iter_examples(f"{info}#sampled", "sft", max_samples=3)) == sampled[:3]
    plain = write_jsonl(tmp_path / "plain.jsonl", [*lf_data.MANY[:2], {"broken": True}])
    assert len(list(api.iter_examples(plain, "sft", max_samples=2))) == 2  # the bad third row is never read
    with pytest.raises(DataError, match="max_samples must be at least 1, got 0"):
        list(api.iter_examples(plain, "sft", max_samples=0))


def test_an_undeclared_column_is_not_read_and_says_so(info):
    r = mg_data("validate", f"{info}#alpaca_sft", "--task", "sft")
    assert r.returncode == 0, r.stderr
    warning = (
        f"{info}#alpaca_sft: warning: column 'system' is not read: the entry's columns do not name it "
        f"(LLaMA-Factory ignores it too); dataset 'alpaca_sft' in {info}"
    )
    assert r.stderr.splitlines()[0] == warning
    assert r.stderr.count("warning") == 1


def test_a_hub_entry_with_a_local_file_reads_the_file(info):
    write_info(
        info.parent, {"both": {"hf_hub_url": "llamafactory/alpaca_en", "file_name": "alpaca_sft.json"}}
    )
    assert list(api.iter_examples(f"{info}#both", "sft")) == EXPECTED["alpaca_sft"][1]


def test_json_lines_in_a_json_file_read_as_datasets_reads_them(info):
    write_rows(info.parent / "lines.json", lf_data.PT, lines=True)
    write_info(info.parent, {"lines": {"file_name": "lines.json", "columns": {"prompt": "text"}}})
    assert list(api.iter_examples(f"{info}#lines", "pt")) == EXPECTED["pt"][1]


def _entry_error(info, entry, task="sft", name="bad"):
    write_info(info.parent, {"ok": INFO["alpaca_sft"], name: entry})
    with pytest.raises(DataError) as e:
        list(api.iter_examples(f"{info}#{name}", task))
    return str(e.value)


def test_entry_errors_are_one_line_at_the_entry(info):
    folder = info.parent
    at = f"{info}:5: dataset 'bad'"  # write_info puts "bad" on line 5, after "ok"
    cases = [
        ({"file_name": "gone.json"}, "sft", f"{at}: file_name 'gone.json': {folder / 'gone.json'} not found"),
        (
            {"hf_hub_url": "llamafactory/alpaca_en", "ms_hub_url": "llamafactory/alpaca_en"},
            "sft",
            f"{at}: is on the Hugging Face hub (hf_hub_url 'llamafactory/alpaca_en'), and mg-data reads local "
            "files only: download the data into the dataset folder and set file_name",
        ),
        (
            {"ms_hub_url": "AI-ModelScope/x"},
            "sft",
            f"{at}: is on the ModelScope hub (ms_hub_url 'AI-ModelScope/x'), and mg-data reads local files only: "
            "download the data into the dataset folder and set file_name",
        ),
        (
            {"script_url": "belle_multiturn"},
            "sft",
            f"{at}: is made by a loading script (script_url 'belle_multiturn'), and mg-data reads local files "
            "only: download the data into the dataset folder and set file_name",
        ),
        (
            {"cloud_file_name": "s3://bucket/data.json"},
            "sft",
            f"{at}: is in cloud storage (cloud_file_name 's3://bucket/data.json'), and mg-data reads local files "
            "only: download the data into the dataset folder and set file_name",
        ),
        ({"formatting": "alpaca"}, "sft", f"{at}: has no file_name"),
        (
            {"file_name": "alpaca_sft.json", "columns": {"promt": "instruction"}},
            "sft",
            f"{at}: columns.promt is not one LLaMA-Factory reads (it reads prompt, query, response, history, "
            "messages, system, tools, images, videos, audios, chosen, rejected, kto_tag)",
        ),
        (
            {"file_name": "alpaca_sft.json", "columns": {"prompt": ["instruction"]}},
            "sft",
            f"{at}: columns.prompt must be a name (a string), got a list ['instruction']",
        ),
        (
            {"file_name": "alpaca_sft.json", "columns": {"prompt": "instruction", "images": "images"}},
            "sft",
            f"{at}: columns.images: multimodal data is not supported (mg-data trains text models)",
        ),
        (
            {"file_name": "sharegpt.json", "formatting": "sharegpt", "columns": {"system": "system"}},
            "sft",
            f"{at}: formatting sharegpt needs columns.messages (the column of the messages)",
        ),
        (
            {"file_name": "sharegpt.json", "formatting": "sharegpt", "tags": {"role_tag": "from"}},
            "sft",
            f"{at}: formatting sharegpt needs tags.content_tag",
        ),
        (
            {"file_name": "dpo.json", "formatting": "sharegpt", "ranking": True},
            "dpo",
            f"{at}: ranking is true, so columns.chosen must name the column of the chosen answers",
        ),
        (
            {"file_name": "x.json", "formatting": "openai"},
            "sft",
            f"{at}: formatting 'openai': LLaMA-Factory's openai formatting is not read; use alpaca or sharegpt",
        ),
        (
            {"file_name": "alpaca_sft.json", "split": "validation"},
            "sft",
            f"{at}: split 'validation': a local file has one split, train (datasets puts every file of "
            "file_name in it); use train or a slice of it such as train[:100] or train[:10%]",
        ),
        (
            {"file_name": "alpaca_sft.json", "num_samples": "10"},
            "sft",
            f"{at}: num_samples must be a whole number of at least 1, got '10'",
        ),
        (
            {"file_name": "alpaca_sft.json"},
            "dpo",
            f"{at}: ranking is not true, and dpo reads pairwise rows (a chosen and a rejected answer); "
            "LLaMA-Factory refuses it too",
        ),
        (INFO["dpo"], "sft", f"{at}: ranking is true: a pairwise dataset is read by rm or dpo, not sft"),
        (
            INFO["sharegpt"],
            "kto",
            f"{at}: kto needs columns.kto_tag, the column that says whether each answer is desirable",
        ),
    ]
    for entry, task, message in cases:
        assert _entry_error(info, entry, task) == message, entry
        assert entry_line(info, "bad") == 5


def test_file_errors_name_the_file(info):
    folder = info.parent
    (folder / "mixed").mkdir()
    write_rows(folder / "mixed" / "a.jsonl", lf_data.PT, lines=True)
    (folder / "mixed" / "b.csv").write_text("text\nx\n", encoding="utf-8")
    a, b = folder / "mixed" / "a.jsonl", folder / "mixed" / "b.csv"
    assert _entry_error(info, {"file_name": "mixed"}) == (
        f"{info}:5: dataset 'bad': {a} and {b} are of different types; a dataset's files are of one type "
        "(LLaMA-Factory requires it too)"
    )
    (folder / "t.arrow").write_bytes(b"ARROW1")
    assert _entry_error(info, {"file_name": "t.arrow"}) == (
        f"{info}:5: dataset 'bad': {folder / 't.arrow'}: Arrow files are not read by mg-data; "
        "save the data as .parquet or .jsonl"
    )
    (folder / "empty").mkdir()
    assert _entry_error(info, {"file_name": "empty"}) == (
        f"{info}:5: dataset 'bad': file_name 'empty': the folder {folder / 'empty'} holds no data files"
    )


def test_reference_errors(info, tmp_path):
    with pytest.raises(DataError) as e:
        list(api.iter_examples(f"{info}#nope", "sft"))
    assert str(e.value) == f"{info}: no dataset 'nope' (it has: {', '.join(INFO)})"
    missing = tmp_path / "elsewhere" / "dataset_info.json"
    with pytest.raises(DataError) as e:
        list(api.iter_examples(f"{missing}#x", "sft"))
    assert str(e.value) == f"{missing}: no such file"
    info.write_text('{\n  "a": {"file_name": "a.json"},\n  "b": \n}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        list(api.iter_examples(f"{info}#a", "sft"))
    assert str(e.value) == f"{info}:4: malformed JSON: Expecting value"  # where json finds the "}"


def test_row_errors_point_at_the_data_file(info):
    folder = info.parent
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]},
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ]
        },
        {"msgs": []},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "text": "a"}]},
        {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "label": "yes",
        },
    ]
    write_rows(folder / "bad.jsonl", rows, lines=True)
    entry = {**INFO["kto"], "file_name": "bad.jsonl"}
    write_info(folder, {"bad": entry})
    with pytest.raises(InvalidRows) as e:
        list(api.iter_examples(f"{info}#bad", "kto"))
    path = folder / "bad.jsonl"
    assert str(e.value).splitlines() == [
        f"{path}:1: messages[1].role is 'bot', none of the entry's tags (user 'user', assistant 'assistant')",
        f"{path}:2: messages[0].role is 'system', none of the entry's tags (user 'user', assistant 'assistant'); "
        "a system message needs tags.system_tag",
        f"{path}:3: missing column 'messages' (columns.messages)",
        f"{path}:4: messages[1] has no 'content' (tags.content_tag)",
        f"{path}:5: kto_tag must be true or false (or 1/0), got a string 'yes'",
        f"{info}#bad: 5 rows, 0 valid, 5 invalid",
    ]
    write_rows(folder / "bad.json", [{"question": 3, "answer": "a"}, {"answer": "b"}], lines=False)
    write_info(
        folder, {"bad": {"file_name": "bad.json", "columns": {"prompt": "question", "response": "answer"}}}
    )
    with pytest.raises(InvalidRows) as e:
        list(api.iter_examples(f"{info}#bad", "sft"))
    assert str(e.value).splitlines()[:2] == [
        f"{folder / 'bad.json'}:2: column 'question' (columns.prompt) must be text, got int",
        f"{folder / 'bad.json'}:6: no prompt: 'question' (columns.prompt) is empty or missing",
    ]


def test_every_command_takes_a_reference(info, tmp_path, chatml_tokenizer_dir):
    ref = f"{info}#sharegpt"
    r = mg_data("convert", ref, tmp_path / "m.jsonl", "--to", "messages")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"{ref}: 2 rows, 2 valid, 0 invalid; wrote 2 to {tmp_path / 'm.jsonl'}"
    assert read_jsonl(tmp_path / "m.jsonl") == EXPECTED["sharegpt"][1]
    r = mg_data("validate", f"{info}#dpo", "--task", "dpo", "-o", tmp_path / "d.jsonl")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "d.jsonl") == EXPECTED["dpo"][1]
    r = mg_data("stats", f"{info}#kto", "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert (stats["task"], stats["rows"], stats["valid"]) == ("kto", 2, 2)
    assert stats["labels"] == {"True": 1, "False": 1}
    r = mg_data("preview", f"{info}#role_content", "--tokenizer", chatml_tokenizer_dir, "-n", "1")
    assert r.returncode == 0, r.stderr
    assert f"── {info.parent / 'role_content.jsonl'}:1 " in r.stdout
    assert "<|im_start|>user\nCapital of France?<|im_end|>" in r.stdout and "⟦Paris.<|im_end|>⟧" in r.stdout
    r = mg_data("validate", f"{info}#dpo", "--task", "sft")
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {info}:{entry_line(info, 'dpo')}: dataset 'dpo': ranking is true: a pairwise dataset is read "
        "by rm or dpo, not sft\n",
    )


def test_an_output_may_not_be_a_file_the_reference_reads(info):
    r = mg_data("convert", f"{info}#pt", info.parent / "pt.jsonl", "--to", "messages")
    assert r.returncode == 2
    assert r.stderr == (
        f"error: OUTPUT {info.parent / 'pt.jsonl'} is the same file as INPUT file 2 {info.parent / 'pt.jsonl'}; "
        "nothing was written\n"
    )


def test_skip_invalid_rejects_go_beside_the_dataset_info(info):
    write_rows(info.parent / "pt.jsonl", [*lf_data.PT, {"text": 5}], lines=True)
    r = mg_data("validate", f"{info}#pt", "--task", "pt", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    rejects = read_jsonl(info.parent / "pt.rejects.jsonl")
    assert rejects == [
        {"line": 3, "reason": "column 'text' (columns.prompt) must be text, got int", "row": {"text": 5}}
    ]


# The bug of issue 11: `mg-data convert` on LLaMA-Factory's pairwise sharegpt files rejected every row with
# "must end with an assistant reply".
def test_convert_reads_pairwise_sharegpt_rows_as_pairwise(tmp_path):
    src = tmp_path / "dpo.json"
    write_rows(src, lf_data.DPO, lines=False)
    r = mg_data("convert", src, tmp_path / "dpo_messages.jsonl", "--to", "messages")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "dpo_messages.jsonl") == EXPECTED["dpo"][1]
    r = mg_data("convert", tmp_path / "dpo_messages.jsonl", tmp_path / "back.json", "--to", "sharegpt")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "back.json").read_text(encoding="utf-8")) == lf_data.DPO
    r = mg_data("convert", src, tmp_path / "alpaca.jsonl", "--to", "alpaca")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "alpaca.jsonl") == [
        {"prompt": "Name a prime number.", "chosen": "7", "rejected": "8"},
        {
            "history": [["你好", "你好！"]],
            "prompt": "讲个笑话",
            "chosen": "为什么数学书很忧郁？因为它有太多问题。",
            "rejected": "不讲。",
        },
    ]
    r = mg_data("convert", tmp_path / "alpaca.jsonl", tmp_path / "again.json", "--to", "sharegpt")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "again.json").read_text(encoding="utf-8")) == lf_data.DPO


def test_pairwise_rows_that_are_wrong_say_why(tmp_path):
    good = lf_data.DPO[0]
    rows = [
        {**good, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
        {**good, "chosen": {"from": "human", "value": "7"}},
        {k: v for k, v in good.items() if k != "rejected"},
        {**good, "rejected": {"from": "gpt", "value": "  "}},
        {"conversations": [{"from": "human", "value": "q"}]},
    ]
    src = write_jsonl(tmp_path / "bad.jsonl", rows)
    r = mg_data("convert", src, tmp_path / "out.jsonl", "--to", "messages")
    assert r.returncode == 1
    assert r.stderr.splitlines()[:5] == [
        f"{src}:1: the prompt ends with an assistant message, but in a pairwise row it ends with the user's turn: "
        "chosen and rejected are the replies to it",
        f"{src}:2: chosen.from is 'human'; an answer is the assistant's turn (gpt or function_call)",
        f"{src}:3: missing field 'rejected'",
        f"{src}:4: rejected is empty",
        f"{src}:5: the conversation must end with an assistant reply, but ends with user",
    ]
    r = mg_data("validate", write_jsonl(tmp_path / "p.jsonl", [good]), "--task", "sft")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        f"{tmp_path / 'p.jsonl'}:1: a pairwise row (chosen and rejected answers) is read by the rm and dpo "
        "tasks, not sft"
    )


def test_csv_and_txt_files_read_by_path(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text(lf_data.CSV, encoding="utf-8")
    assert list(api.iter_examples(csv, "sft")) == EXPECTED["csv"][1]
    txt = tmp_path / "w.txt"
    txt.write_text(lf_data.TXT, encoding="utf-8")
    assert list(api.iter_examples(txt, "pt")) == EXPECTED["txt"][1]
    assert [line for line, _, _ in api.iter_rows(txt)] == [1, 3]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2,3\n", encoding="utf-8")
    assert list(api.iter_rows(bad)) == [(2, "1,2,3", "3 fields, but the header has 2")]
    twice = tmp_path / "twice.csv"
    twice.write_text("a,a\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"twice.csv:1: the header names column 'a' twice"):
        list(api.iter_rows(twice))


def test_pt_reads_llamafactory_alpaca_rows(tmp_path):
    src = write_jsonl(
        tmp_path / "pt.jsonl", [{"instruction": "标题", "input": "正文"}, {"instruction": "", "input": ""}]
    )
    with pytest.raises(InvalidRows) as e:
        list(api.iter_examples(src, "pt"))
    assert str(e.value).splitlines()[0] == f"{src}:2: instruction is empty"
    assert list(api.iter_examples(src, "pt", max_samples=1)) == [{"text": "标题\n正文"}]


def test_only_a_file_named_dataset_info_json_makes_a_reference(tmp_path):
    assert split_ref(f"{tmp_path}/dataset_info.json#a#b") == (f"{tmp_path}/dataset_info.json", "a#b")
    assert split_ref("dataset_info.json#x") == ("dataset_info.json", "x")
    assert split_ref(tmp_path / "my_dataset_info.json#x") is None
    assert split_ref(tmp_path / "dataset_info.json") is None
