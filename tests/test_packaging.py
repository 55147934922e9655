"""The package as pip installs it: every family, every page file, nothing named `server` at the top.

Each install goes into a throwaway virtual environment that borrows this one's dependencies
(a path file, so nothing is downloaded), from a copy of the checkout that gained a new package
folder: a family's folder is installed with no line written in pyproject.toml or setup.py.
Why the package is laid out this way: docs/architecture.md, "Type checking and editors".
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import site
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def package_dir() -> dict[str, str]:
    """setup.py's mapping of import names onto folders, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PACKAGE_DIR":
            value: dict[str, str] = ast.literal_eval(node.value)
            return value
    raise AssertionError("setup.py has no PACKAGE_DIR")


def source_copy(dest: Path) -> Path:
    """What a clean clone holds for the build, plus a package folder that no file names."""
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    for folder in package_dir().values():
        shutil.copytree(ROOT / folder, dest / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    new = dest / "trainer" / "families" / "newfamily"
    new.mkdir()
    (new / "__init__.py").write_text('"""A family folder that no file names."""\nNAME = "new"\n')
    return dest


# run inside the throwaway environment, from outside any checkout
CHECK = """
import importlib, json, pkgutil, sys
from pathlib import Path
import collapse_lab, collapse_lab.tracking, collapse_lab.trainer, collapse_lab.server
import collapse_lab.trainer.families.newfamily
from collapse_lab.trainer import families
from collapse_lab.server import app, lessons
mods = [m.name for pkg in (collapse_lab.trainer, collapse_lab.server)
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for m in mods:
    importlib.import_module(m)
front = app.frontend_dir()
print(json.dumps(dict(
    modules=sorted(mods), families=sorted(families.FAMILIES),
    trainer=collapse_lab.trainer.__file__, frontend=str(front),
    pages=sorted(str(p.relative_to(front)) for p in front.rglob("*") if p.is_file()),
    lessons=sorted(p.name for p in lessons.lesson_dir().iterdir()),
    top=sorted(p.name for p in Path(collapse_lab.__file__).parents[1].iterdir()))))
"""


def install(tmp_path: Path, *pip_args: str) -> dict:
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    # this environment's packages (pip, setuptools, torch, ...) without its own collapse_lab:
    # a bare path in a .pth file is added as it is, its own .pth files are not read
    Path(purelib, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    src = source_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", *pip_args, str(src)],
                   check=True, capture_output=True, text=True, env=env, timeout=300)
    out = subprocess.run([py, "-c", CHECK], cwd=tmp_path / "env", capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info: dict = json.loads(out.stdout.strip().splitlines()[-1])
    info["src"] = src
    return info


def expected_modules(src: Path) -> set[str]:
    out = set()
    for name in ("trainer", "server"):
        for p in (src / name).rglob("*.py"):
            rel = p.relative_to(src).with_suffix("")
            out.add("collapse_lab." + ".".join(x for x in rel.parts if x != "__init__"))
    return out - {"collapse_lab.trainer", "collapse_lab.server"}


def check(info: dict) -> None:
    from collapse_lab.trainer import families

    src = info["src"]
    assert set(info["modules"]) == expected_modules(src)
    assert "collapse_lab.trainer.families.newfamily" in info["modules"]
    assert info["families"] == sorted(families.FAMILIES)
    pages = {str(p.relative_to(src / "frontend")) for p in (src / "frontend").rglob("*")
             if p.is_file() and p.suffix in (".html", ".js", ".css", ".svg")}
    assert pages and pages <= set(info["pages"]), sorted(pages - set(info["pages"]))
    assert {p.name for p in (src / "server" / "lesson_files").iterdir()} == set(info["lessons"])


def test_a_wheel_install_holds_every_module_family_and_page_file(tmp_path):
    info = install(tmp_path)
    check(info)
    assert "site-packages" in info["trainer"] and "site-packages" in info["frontend"]
    # one import package: nothing named `server`, `trainer` or `frontend` at the top
    assert not {"server", "trainer", "frontend"} & set(info["top"])


def test_a_strict_editable_install_serves_the_checkout_itself(tmp_path):
    info = install(tmp_path, "--config-settings", "editable_mode=strict", "-e")
    check(info)
    # modules through setuptools' link tree (what mypy and editors follow), the page's files
    # from the folder itself, so an edit shows without reinstalling
    assert "__editable__" in info["trainer"]
    assert Path(info["frontend"]) == info["src"] / "frontend"


def test_the_image_copies_every_folder_the_package_maps():
    copied = {src for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") for src in line.split()[1:-1]}
    assert {"setup.py", "pyproject.toml", *package_dir().values()} <= copied, copied
