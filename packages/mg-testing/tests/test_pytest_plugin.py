import textwrap

pytest_plugins = ["pytester"]


def test_plugin_goes_offline_and_serves_the_tokenizer_without_torch(pytester, monkeypatch):
    # A separate pytest process: the plugin is found through its entry point, as in every other suite.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    pytester.makepyfile(
        test_uses_plugin=textwrap.dedent(
            """
            import os
            import sys

            def test_offline_and_tokenizer(chatml_tokenizer_dir):
                assert os.environ["HF_HUB_OFFLINE"] == "1"
                assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
                assert (chatml_tokenizer_dir / "tokenizer.json").is_file()
                # The plugin and the tokenizer fixture are used by torch-free suites.
                assert "torch" not in sys.modules
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
