"""The launch: mg-train's torchrun flags as LLaMA-Factory's variables, and LLaMA-Factory's own error found in
its output under the tracebacks of the launchers around it (real processes failing as they fail there)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from mg_lf_bridge.launch import last_lines, launch_env, lf_error


def test_launch_flags_become_the_variables_llamafactory_reads():
    flags = {
        "nproc_per_node": "2",
        "nnodes": "2",
        "node_rank": "1",
        "master_addr": "10.0.0.1",
        "master_port": "29600",
    }
    assert launch_env(flags) == {
        "FORCE_TORCHRUN": "1",
        "NPROC_PER_NODE": "2",
        "NNODES": "2",
        "NODE_RANK": "1",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29600",
    }
    # none given: LLaMA-Factory decides (torchrun on several GPUs); DISABLE_VERSION_CHECK is never set
    assert launch_env({}) == {}


def output_of(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True)
    assert done.returncode != 0
    return done.stdout + done.stderr


def test_the_error_is_the_childs_not_the_launchers():
    """LLaMA-Factory's launcher runs torchrun with subprocess.run(check=True): the worker's exception comes
    first, the launcher's CalledProcessError last."""
    worker = "import sys; sys.stderr.write('[rank0]: Traceback (most recent call last):\\n'); " + (
        "sys.stderr.write('[rank0]:   File \"x.py\", line 1\\n[rank0]: ValueError: bad key\\n'); sys.exit(1)"
    )
    tail = output_of(
        f"""
        import subprocess, sys
        subprocess.run([sys.executable, "-c", {worker!r}], check=True)
        """
    )
    assert "CalledProcessError" in tail
    assert lf_error(tail) == "ValueError: bad key"


def test_a_chained_exception_gives_its_last_cause_line():
    tail = output_of(
        """
        try:
            open("/nonexistent/None/trainer_state.json")
        except OSError as e:
            raise RuntimeError("could not resume") from e
        """
    )
    assert lf_error(tail) == "RuntimeError: could not resume"


def test_no_traceback_gives_none_and_the_last_lines_instead():
    tail = "loading\n\nKilled\n"
    assert lf_error(tail) is None
    assert last_lines(tail) == ["loading", "Killed"]
