"""Where stackc's packages are: `stackc` is compiler/ and `stackc.targets` is targets/, each
with every sub-package found below it, so a new target or engine folder needs no line here.
Everything else about the package is in pyproject.toml."""

from setuptools import find_packages, setup


def _packages(name: str, folder: str) -> list[str]:
    return [name, *(f"{name}.{sub}" for sub in find_packages(folder))]


setup(package_dir={"stackc": "compiler", "stackc.targets": "targets"},
      packages=_packages("stackc", "compiler") + _packages("stackc.targets", "targets"))
