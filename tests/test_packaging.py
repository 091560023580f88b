"""The built wheel installs agent/, hub/ and shared/ under glimpser.* and nothing top-level.

setuptools silently drops a sub-package that pyproject.toml does not list; this test builds the
real wheel from a copy of the sources and compares it file by file with the tree.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("agent", "hub", "shared")
SHIPPED = ("*.py", "py.typed", "*.html", "*.css", "*.js")


def source_files() -> set[str]:
    """``glimpser/<side>/...`` path of every file the wheel must carry."""
    found: set[str] = set()
    for side in SIDES:
        for pattern in SHIPPED:
            for path in (ROOT / side).rglob(pattern):
                if "__pycache__" not in path.parts:
                    found.add(f"glimpser/{side}/{path.relative_to(ROOT / side).as_posix()}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Build the wheel from a clean copy of the project (the checkout is left untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    for side in SIDES:
        shutil.copytree(ROOT / side, src / side, ignore=ignore)
    out = work / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"wheel build failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("glimpser-*.whl"))
    assert len(wheels) == 1, wheels
    return zipfile.ZipFile(wheels[0])


def test_every_module_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    expected = source_files()
    assert any(name.startswith("glimpser/shared/") for name in expected)
    missing = sorted(expected - set(wheel.namelist()))
    assert not missing, (
        "files missing from the wheel (add their package to [tool.setuptools] packages in "
        f"pyproject.toml): {missing}"
    )


def test_every_package_has_py_typed(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for side in SIDES:
        assert f"glimpser/{side}/py.typed" in names


def test_no_generic_top_level_packages(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert not tops & {"agent", "hub", "shared", "tests", "bench"}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"glimpser"}
    # glimpser is a namespace of the three sides: nothing sits directly in it.
    assert not [n for n in wheel.namelist() if n.count("/") == 1 and n.startswith("glimpser/")]


def test_console_script_is_declared(wheel: zipfile.ZipFile) -> None:
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode())
    assert parser["console_scripts"]["glimpser"].strip() == "glimpser.shared.cli:main"
