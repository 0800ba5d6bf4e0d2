"""Maps the top-level folders into the import package `fieldctl` and finds every package below
them, so a new protocol package is shipped in the wheel without being listed anywhere."""

from setuptools import find_packages, setup

FOLDERS = {"cli": "fieldctl.cli", "protocols": "fieldctl.protocols", "profiles": "fieldctl.profiles"}

packages = ["fieldctl"]
package_dir = {"fieldctl": "."}
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
