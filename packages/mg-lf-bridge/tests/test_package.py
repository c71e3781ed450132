from importlib.metadata import version

import mg_lf_bridge


def test_version_matches_distribution_metadata():
    # The version lives in two places (pyproject and __init__); a release that bumps one must bump both.
    assert mg_lf_bridge.__version__ == version("mg-lf-bridge")
