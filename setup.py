"""Only what pyproject.toml cannot say: ship the top-level ``boilerplate/`` folder (methods-text
fragments and references) inside the wheel as ``bidsmrs/boilerplate``."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["bidsmrs", "bidsmrs.*"]) + ["bidsmrs.boilerplate"],
    package_dir={"bidsmrs.boilerplate": "boilerplate"},
    package_data={"bidsmrs.boilerplate": ["*.md", "*.bib"], "bidsmrs.report": ["templates/*"]},
)
