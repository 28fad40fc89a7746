"""Which library the package loads: its own copy, or `PURPLE_RAIN_LIB`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import purple_rain


def run_import(env_lib: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PURPLE_RAIN_LIB=env_lib)
    return subprocess.run(
        [sys.executable, "-c", "import purple_rain; print(purple_rain.LIBRARY_PATH)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_purple_rain_lib_overrides_the_packaged_library(tmp_path: Path) -> None:
    copy = tmp_path / "libpurple_rain.so"
    shutil.copyfile(purple_rain.LIBRARY_PATH, copy)
    out = run_import(str(copy), tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(copy)


def test_a_missing_library_fails_the_import_naming_it(tmp_path: Path) -> None:
    out = run_import(str(tmp_path / "nope.so"), tmp_path)
    assert out.returncode != 0 and "nope.so" in out.stderr


def test_version_and_abi_match_the_header() -> None:
    from purple_rain import ffi, lib

    assert lib.pr_abi_version() == lib.PR_ABI_VERSION
    assert purple_rain.__version__ == ffi.string(lib.pr_version()).decode()
