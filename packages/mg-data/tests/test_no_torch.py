import subprocess
import sys


def test_converting_never_imports_torch(tmp_path):
    code = (
        "import sys, mg_data\n"
        "from mg_data.stats import file_stats\n"
        "from mg_data.preview import Segment\n"
        f"mg_data.write_rows({str(tmp_path / 'a.jsonl')!r}, [{{'prompt': '你好', 'response': '您好'}}])\n"
        f"mg_data.convert_file({str(tmp_path / 'a.jsonl')!r}, {str(tmp_path / 'b.jsonl')!r}, to='sharegpt')\n"
        f"file_stats({str(tmp_path / 'b.jsonl')!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
