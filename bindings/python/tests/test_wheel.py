"""The built wheel installs into a fresh virtualenv and runs the quickstart with no access to
this repository (the wheel carries the shared library)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "python" / "quickstart.py"


@pytest.mark.skipif(
    not os.environ.get("PURPLE_RAIN_WHEEL"), reason="set PURPLE_RAIN_WHEEL to the built wheel"
)
def test_wheel_installs_into_a_fresh_venv_and_runs_the_quickstart(tmp_path: Path) -> None:
    wheel = Path(os.environ["PURPLE_RAIN_WHEEL"]).resolve()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=300,
    )
    # Run from an empty folder, with nothing pointing at the repository or its library.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(QUICKSTART, run_dir / "quickstart.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PURPLE_RAIN", "PYTHON"))}
    env["LD_LIBRARY_PATH"] = ""
    out = subprocess.run(
        [str(python), "quickstart.py"],
        cwd=run_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "polled 100002 events" in out, out
    assert "events_dropped=0" in out, out
    location = subprocess.run(
        [str(python), "-c", "import purple_rain; print(purple_rain.LIBRARY_PATH)"],
        cwd=run_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert location.startswith(str(venv)), location
