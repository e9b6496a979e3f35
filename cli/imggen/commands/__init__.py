"""The command line: the Typer app, its sub-commands and the one error boundary.

This package is the only place that imports typer and rich.
"""

from __future__ import annotations

import errno
import gc
import sys

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer bundles its own click

from ..errors import ImggenError, UsageError
from .batch import batch_app
from .complete import complete_topic
from .config import config_app
from .edit import edit
from .gallery import gallery
from .generate import generate
from .helptext import epilog
from .logs import logs_app
from .models import models_app
from .serve import serve, spend

app = typer.Typer(
    name="imggen",
    help="Generate images from text prompts through OpenAI, Azure, Bedrock, Vertex AI, Gemini and more.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
    rich_markup_mode=None,  # plain help: rendering it with Rich costs ~70 ms at every start
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=epilog("imggen"),
)
app.command(no_args_is_help=False, epilog=epilog("generate"))(generate)
app.command(epilog=epilog("edit"))(edit)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
serve_app = typer.Typer(no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]},
                        rich_markup_mode=None)  # fmt: skip
serve_app.callback(invoke_without_command=True, epilog=epilog("serve"))(serve)
serve_app.command("spend", epilog=epilog("serve spend"))(spend)
app.add_typer(serve_app, name="serve")
app.add_typer(batch_app, name="batch")
app.add_typer(logs_app, name="logs")
app.command(epilog=epilog("gallery"))(gallery)


@app.command("help", epilog=epilog("help"))
def help_cmd(
    ctx: typer.Context,
    topic: str | None = typer.Argument(
        None, metavar="[TOPIC]", help="environment or overlay.", autocompletion=complete_topic
    ),
) -> None:
    """Help beyond the flags: `imggen help environment` lists every variable imggen reads, `imggen help
    overlay` the format of your own models file."""
    from .helptext import TOPICS

    if topic is None:
        parent = ctx.parent
        typer.echo((parent or ctx).get_help())
        return
    if topic not in TOPICS:
        raise UsageError(f"no help topic '{topic}'", hint="Topics: " + ", ".join(TOPICS) + ".")
    sys.stdout.write(TOPICS[topic]())


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
    if sys.stdout is None:
        _closed_stdout()
    try:
        code = app(prog_name="imggen", standalone_mode=False)
    except ImggenError as exc:
        from .render import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except ClickException as exc:  # a bad flag or value, found while parsing: one line too
        _parse_error(exc)
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    except OSError as exc:
        if not _from_stdout(exc):
            raise  # a real bug shows its traceback
        _stdout_failed(exc)
    finally:
        _flush_stdout()
        # The process is about to end: freezing what is alive spares the interpreter's last full
        # collection, ~25 ms of every run spent proving that nothing needs collecting.
        gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


def _parse_error(exc: ClickException) -> None:
    """Typer's own usage errors (`-n nan`, an unknown option) as imggen's one line, with where to look."""
    from .render import print_error

    if isinstance(exc, NoArgsIsHelpError):  # `imggen` alone, or `imggen config`: the help it asks for
        exc.show()
        sys.exit(exc.exit_code)
    message = exc.format_message().replace("\n", " ")
    context = getattr(exc, "ctx", None)
    where = f"{context.command_path} -h" if context is not None else "imggen -h"
    print_error(UsageError(message, hint=f"See: {where}."))
    sys.exit(exc.exit_code)


def _closed_stdout() -> None:
    """Started with stdout closed (`>&-`): the null device takes its place, as `> /dev/null` would, so
    no file imggen opens gets descriptor 1 and printing is not a crash; `-o -` refuses to start."""
    import os

    from . import render

    null = os.open(os.devnull, os.O_WRONLY)
    if null != 1:
        os.dup2(null, 1)
        os.close(null)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - it is the process's stdout until exit
    render.STDOUT_CLOSED = True


def _from_stdout(exc: OSError) -> bool:
    """A failure of printing (a closed pipe, a full disk) rather than a bug: imggen turns its own file
    errors into OutputError, so one of these that reaches here, naming no file, is stdout's."""
    return exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EBADF) and exc.filename is None


def _stdout_failed(exc: OSError | ValueError) -> None:
    from ..errors import OutputError
    from .render import print_error, silence_stdout

    silence_stdout()
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    print_error(OutputError(f"cannot write to stdout: {reason}"))
    sys.exit(1)


def _flush_stdout() -> None:
    """Python flushes stdout at exit and ends in exit 120 with a traceback when that fails (a closed
    pipe, a full disk): flush here instead, and make it one line and exit 1."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        _stdout_failed(exc)
