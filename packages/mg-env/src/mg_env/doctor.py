"""`mg-env doctor`: what this machine offers the backends, and the state of every built env.

torch and the GPU libraries are probed in a subprocess of this interpreter: importing torch here would
tie mg-env to it, and a library that crashes on import (a flash-attn built for another torch) must not
take doctor down with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mg_env import __version__, gpu, locks, profiles, sources, store, uvtool
from mg_env.envs import list_envs

LOW_DISK_GIB = 20  # a CUDA env is 6-10 GB when uv cannot hardlink from its cache
LIBRARIES = {
    "flash_attn": "flash-attn",
    "liger_kernel": "liger-kernel",
    "deepspeed": "deepspeed",
    "bitsandbytes": "bitsandbytes",
}

_PROBE = r"""
import importlib, importlib.metadata as md, json, sys
def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None
out = {"torch": {"installed": version("torch")}, "libraries": {}}
if out["torch"]["installed"]:
    try:
        import torch
        cuda = torch.cuda.is_available()
        out["torch"].update(
            version=torch.__version__, cuda=torch.version.cuda, cuda_available=cuda,
            devices=[{"name": torch.cuda.get_device_name(i),
                      "memory_mib": torch.cuda.get_device_properties(i).total_memory // 2**20}
                     for i in range(torch.cuda.device_count())] if cuda else [])
    except Exception as e:
        out["torch"]["error"] = f"{type(e).__name__}: {e}"
for module, dist in json.loads(sys.argv[1]).items():
    entry = {"installed": version(dist), "importable": None}
    if entry["installed"]:
        try:
            importlib.import_module(module)
            entry["importable"] = True
        except BaseException as e:
            entry.update(importable=False, error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    out["libraries"][dist] = entry
print("MG_ENV_PROBE " + json.dumps(out))
"""


def probe(python: str = sys.executable, timeout: float = 300) -> dict:
    try:
        done = subprocess.run(
            [python, "-c", _PROBE, json.dumps(LIBRARIES)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"probing torch and the GPU libraries took over {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("MG_ENV_PROBE "):
            return json.loads(line[len("MG_ENV_PROBE ") :])
    return {"error": (done.stderr.strip().splitlines() or ["probe printed nothing"])[-1]}


def report(home: Path | str | None = None) -> dict:
    st = store.Store(home)
    problems: list[str] = []
    probed = probe()
    if "error" in probed:
        problems.append(f"probe failed: {probed['error']}")
    torch = probed.get("torch", {})
    if torch.get("error"):
        problems.append(f"torch is installed but does not import: {torch['error']}")
    gpus = [{"name": g.name, "memory_mib": g.memory_mib} for g in gpu.cuda_gpus()] or torch.get("devices", [])

    envs = []
    for env in list_envs(st.home):
        status = env.lock_status()
        if status != "ok":
            problems.append(
                f"{env.name}: built from a lock that is no longer the committed one ({status}); "
                f"rebuild with: mg-env build {env.record.profile} --version {env.version}"
            )
        envs.append(
            {
                "name": env.name,
                "profile": env.record.profile,
                "version": env.version,
                "python": env.record.python,
                "path": str(env.path),
                "built_at": env.record.built_at,
                "lock": env.record.lock,
                "lock_sha256": env.record.lock_sha256,
                "lock_status": status,
                "packages": env.key_versions(),
            }
        )

    try:
        uv = uvtool.find(st.home, install=False)
        uv_info = {"path": str(uv), "version": uvtool.version(uv)}
    except Exception:  # doctor reports; it never installs
        uv_info = {"path": None, "version": None}
        problems.append("uv not found: `mg-env build` installs it into mg-env's folder, or `pip install uv`")

    probe_dir = st.home if st.home.exists() else next(p for p in st.home.parents if p.exists())
    usage = shutil.disk_usage(probe_dir)
    free_gib = round(usage.free / 2**30, 1)
    if free_gib < LOW_DISK_GIB:
        problems.append(f"only {free_gib} GiB free at {probe_dir}; a backend env takes several GB")

    vllm, _ = profiles.choose("vllm")
    index = sources.resolve(os.environ).describe()
    # Profiles add their own index only when nobody configured sources (see sources.py).
    index["profile_indexes"] = (
        {p.name: p.torch_index for p in profiles.PROFILES.values() if p.torch_index}
        if index["origin"] == "default"
        else {}
    )
    for name, entry in probed.get("libraries", {}).items():
        if entry.get("importable") is False:
            problems.append(
                f"{name} {entry['installed']} is installed but does not import: {entry.get('error')}"
            )
    return {
        "mg_env": __version__,
        "python": {
            "version": ".".join(map(str, sys.version_info[:3])),
            "executable": sys.executable,
            "platform": locks.platform_tag(),
        },
        "torch": torch,
        "gpus": gpus,
        "vllm_profile": vllm.name,
        "libraries": probed.get("libraries", {}),
        "index": index,
        "uv": uv_info,
        "home": str(st.home),
        "disk": {"path": str(probe_dir), "free_gib": free_gib, "total_gib": round(usage.total / 2**30, 1)},
        "envs": envs,
        "problems": problems,
    }


def _torch_line(torch: dict) -> str:
    if not torch.get("installed"):
        return "not installed in this Python"
    if torch.get("error"):
        return f"{torch['installed']} (does not import: {torch['error']})"
    cuda = f"CUDA {torch['cuda']}" if torch.get("cuda") else "CPU build"
    usable = "CUDA available" if torch.get("cuda_available") else "no CUDA device"
    return f"{torch['version']} ({cuda}, {usable})"


def _library_line(entry: dict) -> str:
    if not entry.get("installed"):
        return "not installed"
    if entry.get("importable"):
        return f"{entry['installed']} (imports)"
    return f"{entry['installed']} (does not import: {entry.get('error')})"


def render(rep: dict) -> str:
    rows = [
        ("python", f"{rep['python']['version']} {rep['python']['executable']} ({rep['python']['platform']})"),
        ("torch", _torch_line(rep["torch"])),
        (
            "gpu",
            ", ".join(f"{g['name']} {g['memory_mib'] / 1024:.0f} GiB" for g in rep["gpus"]) or "no CUDA GPU",
        ),
        ("vllm profile", rep["vllm_profile"]),
        *((name, _library_line(entry)) for name, entry in rep["libraries"].items()),
    ]
    index = rep["index"]
    origin = {"uv": "uv's settings", "pip": "pip's settings, mapped for uv", "default": "default"}[
        index["origin"]
    ]
    where = f" from {', '.join(index['from'])}" if index["from"] else ""
    rows.append(("index", f"{index['index_url']} ({origin}{where})"))
    rows += [("", f"+ extra index {u}") for u in index["extra_index_urls"]]
    rows += [("", f"+ find-links {u}") for u in index["find_links"]]
    rows += [("", f"+ {url} (for {name}'s torch)") for name, url in index["profile_indexes"].items()]
    rows.append(("uv", f"{rep['uv']['version']} ({rep['uv']['path']})" if rep["uv"]["path"] else "not found"))
    rows.append(
        (
            "disk",
            f"{rep['disk']['free_gib']} GiB free of {rep['disk']['total_gib']} GiB at {rep['disk']['path']}",
        )
    )
    rows.append(("envs", f"{len(rep['envs'])} built in {rep['home']}/envs"))
    name_width = max((len(env["name"]) for env in rep["envs"]), default=0)
    for env in rep["envs"]:
        packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
        status = f"[{env['lock_status']}]"
        rows.append(("", f"{env['name']:<{name_width}}  {status:<9} python {env['python']}  {packages}"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("problems: none" if not rep["problems"] else "problems:")
    lines += [f"  - {p}" for p in rep["problems"]]
    return "\n".join(lines)
