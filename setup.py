"""The one import package, `collapse_lab`, laid out over the repository's top-level folders.

pyproject.toml holds everything else; this file holds only what pyproject.toml cannot say: the
package list is *discovered* under each mapped folder, so a new package folder (a family's
trainer/families/NAME/) is installed with no line written anywhere. Nothing named `server`,
`trainer` or `frontend` lands in site-packages. Why the folders stay at the top level, and how
editors and mypy follow the mapping: docs/architecture.md, "Type checking and editors".
"""

from setuptools import find_packages, setup

# import name -> folder; `collapse_lab` itself (collapse_lab/) is the tracking client
PACKAGE_DIR = {
    "collapse_lab": "collapse_lab",
    "collapse_lab.trainer": "trainer",
    "collapse_lab.server": "server",
    "collapse_lab.frontend": "frontend",
}


def packages() -> list[str]:
    """Every folder with an `__init__.py` under a mapped folder, named as it is imported."""
    out = []
    for name, folder in PACKAGE_DIR.items():
        out.append(name)
        out += [f"{name}.{sub}" for sub in find_packages(folder)]
    return sorted(out)


setup(package_dir=PACKAGE_DIR, packages=packages())
