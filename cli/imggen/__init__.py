"""imggen: text-to-image through many providers, from one Python API and one command line.

    import imggen
    response = imggen.generate("A cute baby sea otter", model="dall-e-3")
    paths = response.save("out/")

    for result in imggen.run(["a sea otter", {"prompt": "a red fox", "n": 2}], output_dir="out/"):
        print(result.path or result.error)  # each image or failure as it completes

Heavy modules (httpx and the providers) load on first use, so `import imggen` stays cheap.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import ImggenError

__version__ = "0.1.0"


def _defer_httpx_cli() -> None:
    """`import httpx` also imports its command-line tool (click, rich, pygments: ~50 ms) whenever
    click is installed, which uvicorn (the serve extra) brings. imggen never runs that tool, so it
    stands in a stub that loads the real one only if someone calls `httpx.main`."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stub = types.ModuleType("httpx._main")

    def main(*args: Any, **kwargs: Any) -> Any:
        del sys.modules["httpx._main"]
        from httpx._main import main as real

        return real(*args, **kwargs)

    stub.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stub


_defer_httpx_cli()

if TYPE_CHECKING:
    from .api import aedit, agenerate, edit, generate
    from .runner import Result, arun, run
    from .types import ImageData, ImageResponse, Usage

_LAZY = {
    "generate": "api",
    "agenerate": "api",
    "edit": "api",
    "aedit": "api",
    "run": "runner",
    "arun": "runner",
    "Result": "runner",
    "ImageResponse": "types",
    "ImageData": "types",
    "Usage": "types",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'imggen' has no attribute {name!r}")


__all__ = [
    "ImageData", "ImageResponse", "ImggenError", "Result", "Usage", "__version__", "aedit", "agenerate", "arun",
    "edit", "errors", "generate", "run",
]  # fmt: skip
