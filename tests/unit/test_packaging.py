"""The package list of pyproject.toml: an installed copy of the lab carries every subpackage."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {"mqlab": ROOT / "mqlab", **{name: ROOT / path for name, path in config["package-dir"].items()}}
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(folder).parts
            found.add(".".join((name, *relative)))
    assert sorted(config["packages"]) == sorted(found)
