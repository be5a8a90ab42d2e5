"""Packaging for synthtrial, read from settings.ini (the nbdev 2 convention).
Dependencies are not declared here on purpose: the environment is the lock file, installed with
`pip install --no-deps -r requirements-lock.txt` (see README), so pip never resolves a CUDA torch."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]
setuptools.setup(
    name=cfg["lib_name"], version=cfg["version"], description=cfg["description"],
    author=cfg["author"], license="Apache-2.0", url=cfg["git_url"],
    packages=setuptools.find_packages(include=["synthtrial", "synthtrial.*"]),
    include_package_data=True, package_data={"synthtrial": ["rules/*.yaml", "schemas/*.yaml", "configs/*.yaml"]},
    python_requires=">=" + cfg["min_python"], zip_safe=False,
    entry_points={"console_scripts": ["synthtrial=synthtrial.cli:main"], "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
