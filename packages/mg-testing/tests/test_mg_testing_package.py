import subprocess
import sys
from importlib.metadata import entry_points, version

import mg_testing


def test_version_matches_distribution_metadata():
    # The version lives in two places (pyproject and __init__); a release that bumps one must bump both.
    assert mg_testing.__version__ == version("mg-testing")


def test_pytest_plugin_is_registered_as_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("mg_testing") == "mg_testing.pytest_plugin"


def test_importing_the_package_and_tokenizers_does_not_import_torch():
    # A fresh interpreter: in this one, other tests have long imported torch.
    code = (
        "import sys\n"
        "import mg_testing, mg_testing.tokenizers, mg_testing.cached, mg_testing.real_models\n"
        "import mg_testing.tiny_models, mg_testing.pytest_plugin\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_building_the_chatml_tokenizer_does_not_import_torch(tmp_path):
    # Torch-free packages build and use the tokenizer; that must work where torch is not installed.
    code = (
        "import sys\n"
        "from mg_testing.tokenizers import build_chatml_tokenizer\n"
        f"build_chatml_tokenizer({str(tmp_path)!r})\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert (tmp_path / "tokenizer.json").is_file()
