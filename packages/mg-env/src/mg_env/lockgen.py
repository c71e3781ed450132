"""Make the committed locks: `python -m mg_env.lockgen [PROFILE ...] [--version V] [--python X.Y] [--check]`.

Each lock is `uv pip compile --generate-hashes` of the profile's one requirement, for one Python and one
platform, against PyPI (plus the profile's torch index) as it was on EXCLUDE_NEWER (or the profile's
snapshot date for that version), so the same command gives the same file later. Move EXCLUDE_NEWER
forward to take newer dependency releases.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mg_env import locks, profiles, sources, uvtool
from mg_env.errors import EnvError

EXCLUDE_NEWER = "2026-11-28"
PYTHONS = ("3.11", "3.12")
# platform tag (as in lock names) -> uv's --python-platform. manylinux_2_28: glibc 2.28 and newer.
PLATFORMS = {"linux-x86_64": "x86_64-manylinux_2_28", "linux-aarch64": "aarch64-manylinux_2_28"}
DEFAULT_PLATFORMS = ("linux-x86_64",)


def lock_name(profile: profiles.Profile, version: str, platform: str, python: str) -> str:
    return f"{profile.name}-{version}-{platform}-py{python.replace('.', '')}.txt"


def compile_lock(
    profile: profiles.Profile,
    version: str,
    python: str,
    *,
    platform: str = "linux-x86_64",
    out_dir: Path | None = None,
    find_links: Sequence[str] = (),
    exclude_newer: str | None = EXCLUDE_NEWER,
    uv: Path | None = None,
) -> Path:
    """Write one lock into `out_dir` (default: the profile's lock folder); raise EnvError if uv fails.

    `find_links` replaces the profile's torch index, for a machine that cannot reach it but has the wheel.
    """
    uv = uv or uvtool.find()
    out_dir = out_dir or profile.lock_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / lock_name(profile, version, platform, python)
    command = [f"python -m mg_env.lockgen {profile.name} --version {version} --python {python}"]
    if platform not in DEFAULT_PLATFORMS:
        command.append(f"--platform {platform}")
    command += [f"--find-links {link}" for link in find_links]
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text(profile.requirement_for(version) + "\n")
        args = [
            "pip",
            "compile",
            str(req),
            "--output-file",
            str(Path(tmp) / out.name),
            "--python-version",
            python,
            "--python-platform",
            PLATFORMS[platform],
            "--generate-hashes",
            "--no-config",
            "--default-index",
            sources.PYPI,
            "--index-strategy",
            "unsafe-best-match",
            "--custom-compile-command",
            " ".join(command),
            "--quiet",
        ]
        if exclude_newer:
            args += ["--exclude-newer", profile.snapshot.get(version, exclude_newer)]
        if profile.drop:
            overrides = Path(tmp) / "overrides.txt"
            overrides.write_text("".join(f"{name}; sys_platform == 'never'\n" for name in profile.drop))
            args += ["--overrides", str(overrides)]
        if profile.constraints.get(version):
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("".join(f"{line}\n" for line in profile.constraints[version]))
            args += ["--constraint", str(constraints)]
        for name in profile.only_binary:
            args += ["--only-binary", name]
        for link in find_links:
            args += ["--find-links", link]
        if profile.torch_index and not find_links:
            args += ["--extra-index-url", profile.torch_index]
        # The lock must not depend on whoever runs this: no UV_* sources from the environment.
        env = {k: v for k, v in os.environ.items() if k not in sources.UV_VARS}
        log = Path(tmp) / "uv.log"
        if uvtool.run(uv, args, env=env, cwd=Path(tmp), log=log):
            lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
            why = next((ln for ln in lines if ln.startswith("error:")), lines[-1] if lines else "")
            detail = " ".join(ln.strip() for ln in lines[lines.index(why) :][:4]) if why in lines else why
            raise EnvError(f"uv could not lock {profile.name} {version} for Python {python}: {detail}")
        shutil.copyfile(Path(tmp) / out.name, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mg_env.lockgen", description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="*", help="profiles to lock (default: all)")
    parser.add_argument("--version", action="append", help="versions to lock (default: all of each profile)")
    parser.add_argument("--python", action="append", help=f"Python versions (default: {', '.join(PYTHONS)})")
    parser.add_argument(
        "--platform", action="append", choices=sorted(PLATFORMS), help="default: linux-x86_64"
    )
    parser.add_argument(
        "--find-links",
        action="append",
        default=[],
        help="wheel folder used instead of the profile's torch index",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed locks instead of writing"
    )
    args = parser.parse_args(argv)
    try:
        chosen = [profiles.get_profile(name) for name in args.profiles] or list(profiles.PROFILES.values())
    except EnvError as e:
        parser.error(str(e))
    uv = uvtool.find()
    failed = 0
    for prof in chosen:
        for version in args.version or prof.versions:
            if version not in prof.versions:
                print(f"skip {prof.name} {version}: not one of {', '.join(prof.versions)}", file=sys.stderr)
                continue
            for platform in args.platform or DEFAULT_PLATFORMS:
                for python in args.python or PYTHONS:
                    name = lock_name(prof, version, platform, python)
                    try:
                        if args.check:
                            with tempfile.TemporaryDirectory() as tmp:
                                new = compile_lock(
                                    prof,
                                    version,
                                    python,
                                    platform=platform,
                                    out_dir=Path(tmp),
                                    find_links=args.find_links,
                                    uv=uv,
                                )
                                old = prof.lock_dir / name
                                diff = list(
                                    difflib.unified_diff(
                                        old.read_text().splitlines() if old.exists() else [],
                                        new.read_text().splitlines(),
                                        str(old),
                                        "regenerated",
                                        lineterm="",
                                        n=0,
                                    )
                                )
                            if diff:
                                failed += 1
                                print(f"DIFFERS {name}:\n" + "\n".join(diff[:40]), file=sys.stderr)
                            else:
                                print(f"same    {name}")
                        else:
                            path = compile_lock(
                                prof, version, python, platform=platform, find_links=args.find_links, uv=uv
                            )
                            print(f"wrote   {path} ({len(locks.pinned(path))} packages)")
                    except EnvError as e:
                        failed += 1
                        print(f"FAILED  {name}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
