"""Maps the repository's top-level folders onto the `fairalign` import namespace.

align/ -> fairalign.align, decoding/ -> fairalign.decoding, eval/ -> fairalign.eval,
scripts/ -> fairalign.scripts (the CLI). `fairalign` itself is a PEP 420 namespace (no __init__.py).
Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

ROOTS = ["align", "decoding", "eval", "scripts"]
packages, package_dir = [], {}
for root in ROOTS:
    package_dir[f"fairalign.{root}"] = root
    packages.append(f"fairalign.{root}")
    packages += [f"fairalign.{root}.{sub}" for sub in find_packages(root)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.yaml", "*.json", "*.jsonl", "*.csv", "*.md", "*.txt", "*.html"],
                  # a data folder (splits by file name, as `datasets` reads a folder), not a package
                  "fairalign.align.resources": ["preferences_demo/*.jsonl"]},
)
