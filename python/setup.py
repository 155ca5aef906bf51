# SPDX-License-Identifier: Apache-2.0
"""Builds the extension fabricmq._fabric with the project's own CMake: the
fabric libraries alone (FABRIC_LIBRARY_ONLY: no test tools needed) and the
pybind11 module, straight into setuptools' build directory. The metadata is
in pyproject.toml.

Environment:
  FABRIC_CMAKE_ARGS  extra arguments for the CMake configure step
  FABRIC_BUILD_JOBS  parallel build jobs (default: the CPU count)
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the fabric source tree (CMakeLists.txt)


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not (ROOT / "CMakeLists.txt").exists():
            raise RuntimeError(f"fabric's sources are not at {ROOT}: build "
                               "from a checkout of the whole repository")
        # .../fabricmq/_fabric.*.so: CMake writes into the parent of the
        # package directory (FABRIC_PYTHON_OUTPUT_DIR/fabricmq).
        package_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_temp = Path(self.build_temp).resolve() / "cmake"
        build_temp.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_temp),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DFABRIC_LIBRARY_ONLY=ON",
            "-DFABRIC_BUILD_PYTHON=ON",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DFABRIC_PYTHON_OUTPUT_DIR={package_dir.parent}",
        ]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        configure += os.environ.get("FABRIC_CMAKE_ARGS", "").split()
        jobs = os.environ.get("FABRIC_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_temp), "--target",
                        "_fabric", "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("fabricmq._fabric")],
      cmdclass={"build_ext": CMakeBuild})
