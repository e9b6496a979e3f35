"""The command line: the Typer app, its sub-commands and the one error boundary.

This package is the only place that imports typer and rich.
"""

from __future__ import annotations

import gc
import sys

import typer

from ..errors import ImggenError
from .config import config_app
from .generate import generate
from .models import models_app
from .serve import serve

app = typer.Typer(
    name="imggen",
    help="Generate images from text prompts through OpenAI, Azure, Bedrock, Vertex AI, Gemini and more.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
    rich_markup_mode=None,  # plain help: rendering it with Rich costs ~70 ms at every start
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(no_args_is_help=False)(generate)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.command()(serve)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"imggen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Generate images from text prompts through OpenAI, Azure, Bedrock, Vertex AI, Gemini and more."""


def main() -> None:
    """Console entry point: imggen's own errors become one line on stderr and their exit code."""
    try:
        app(prog_name="imggen")
    except ImggenError as exc:
        from .render import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    finally:
        _flush_stdout()
        # The process is about to end: freezing what is alive spares the interpreter's last full
        # collection, ~25 ms of every run spent proving that nothing needs collecting.
        gc.freeze()


def _flush_stdout() -> None:
    """Python flushes stdout at exit and ends in exit 120 with a traceback when that fails (a closed
    pipe, a full disk): flush here instead, and make it one line and exit 1."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        from ..errors import OutputError
        from .render import print_error, silence_stdout

        silence_stdout()
        print_error(OutputError(f"cannot write to stdout: {exc.strerror or exc}"))
        sys.exit(1)
