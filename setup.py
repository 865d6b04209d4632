"""Build kmq's C extensions where a C compiler is available: the coders of codings 1 and 2
(codec/_ctx1.c, codec/_mix.c) and the palette mapping (codec/_remap.c: nearest-centre search and
error diffusion).

Everything else is in pyproject.toml. Without a compiler the build does not fail: it says so
in one line and kmq runs its plain-Python coders, kmq._ctx1_py and kmq._mix_py (the same files,
50 to 100 times slower; ``kmq --version`` names the coders in use) and numpy's nearest-centre
search (the same labels, slower); error diffusion (``--dither``) then says it needs the compiler.
Set KMQ_REQUIRE_C=1 to make a missing compiler an error instead, as the wheel builds (cibuildwheel) do.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

#: What a missing or broken compiler raises (PlatformError: no MSVC on Windows).
_NO_COMPILER = (CCompilerError, ExecError, PlatformError, OSError)
_REQUIRE_C = os.environ.get("KMQ_REQUIRE_C", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """build_ext that leaves the C coder out, with one line, when it cannot be compiled."""

    def run(self) -> None:
        try:
            super().run()
        except _NO_COMPILER as exc:
            self._without_c(exc)

    def build_extension(self, ext: Extension) -> None:
        # The model depends on the pixel just decoded, so the inner loop is all branches: -O3/-O2 matter.
        # -ffp-contract=off: no fused multiply-add, so _remap's float sums round as numpy's do on every CPU.
        msvc = self.compiler.compiler_type == "msvc"
        ext.extra_compile_args = ["/O2", "/fp:precise"] if msvc else ["-O3", "-ffp-contract=off"]
        try:
            super().build_extension(ext)
        except _NO_COMPILER as exc:
            self._without_c(exc)

    def _without_c(self, exc: BaseException) -> None:
        if _REQUIRE_C:
            raise exc
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(
            f"kmq: C coders not built ({reason}); installing the plain-Python coders instead "
            "(same files, 50-100x slower to code; install a C compiler and reinstall for speed)",
            file=sys.stderr,
        )


setup(
    # Payload coding 1 (spec/FORMAT.md section 5) is a C extension because its model depends on
    # the pixel just decoded; BENCHMARKS.md measures the alternatives.
    # optional: an editable install (pip install -e) then skips the missing library too.
    ext_modules=[
        Extension("kmq._ctx1", sources=["codec/_ctx1.c"], depends=["codec/_coder.h"], optional=not _REQUIRE_C),
        Extension("kmq._mix", sources=["codec/_mix.c"], depends=["codec/_coder.h"], optional=not _REQUIRE_C),
        # Nearest-centre search and error diffusion: float32 sums that must equal numpy's bit for bit.
        Extension("kmq._remap", sources=["codec/_remap.c"], optional=not _REQUIRE_C),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
