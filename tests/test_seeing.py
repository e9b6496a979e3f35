"""--open (the system viewer, here a fake xdg-open that records what it was given) and --preview (kitty,
iTerm2 and sixel pictures on stderr, only when stderr is a terminal, never in stdout's data)."""

from __future__ import annotations

import base64
import io
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from ptyhelp import at_terminal

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="xdg-open and pseudo-terminals are POSIX")

PLACEHOLDER = ["-m", "placeholder", "-s", "64x64"]


def fake_viewer(tmp_path: Path, exit_code: int = 0) -> tuple[dict[str, str], Path]:
    """A fake `xdg-open` first on PATH: writes, per call, its argument and how many PNG files its folder
    then holds (the run must have saved every image before it opens any)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "opened.log"
    script = folder / "xdg-open"
    script.write_text(
        "#!/bin/sh\n"
        'n=$(ls "$(dirname "$1")"/*.png | wc -l)\n'
        f'printf "%s %s\\n" "$1" "$n" >> "{log}"\n'
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}, log


def opened(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    return [(line.rsplit(" ", 1)[0], int(line.rsplit(" ", 1)[1])) for line in log.read_text().splitlines()]


def config(tmp_path: Path, text: str) -> None:
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.toml").write_text(text)


# -- --open -------------------------------------------------------------------------------------------


def test_open_opens_every_image_once_all_are_saved_even_in_a_pipe_when_asked(tmp_path: Path) -> None:
    env, log = fake_viewer(tmp_path)
    result = run_cli("generate", "a sea otter", *PLACEHOLDER, "-n", "3", "-o", "out", "--open", env=env)
    assert result.code == 0, result.stderr
    saved = [str(tmp_path / line) for line in result.lines]  # given to the viewer whole: never read as an option
    calls = opened(log)
    assert sorted(path for path, _ in calls) == sorted(saved) and len(saved) == 3
    assert {count for _, count in calls} == {3}  # each call saw all three images on disk
    assert result.stdout == "".join(line + "\n" for line in result.lines)  # stdout: the paths, nothing else


def test_open_in_the_config_opens_at_a_terminal_but_never_in_a_pipe(tmp_path: Path) -> None:
    env, log = fake_viewer(tmp_path)
    config(tmp_path, "open = true\n")
    piped = run_cli("generate", "a heron", *PLACEHOLDER, "-o", "out", env=env)
    assert piped.code == 0, piped.stderr
    assert opened(log) == []
    shown = at_terminal("generate", "a heron", *PLACEHOLDER, "-o", "out2", env=env)
    assert shown.code == 0, shown.stderr
    assert [Path(path).parent.name for path, _ in opened(log)] == ["out2"]
    at_terminal("generate", "a heron", *PLACEHOLDER, "-o", "out3", "--no-open", env=env)
    assert len(opened(log)) == 1  # --no-open beats the config


def test_open_caps_the_windows_and_says_so(tmp_path: Path) -> None:
    env, log = fake_viewer(tmp_path)
    result = run_cli("generate", "-", *PLACEHOLDER, "-n", "10", "-o", "out", "--open", env=env,
                     input=b"a fox\na hare\na vole\n")  # fmt: skip
    assert result.code == 0, result.stderr
    assert len(opened(log)) == 20 and len(result.lines) == 30
    assert "opening the first 20 of 30 images" in result.stderr


def test_a_viewer_that_fails_or_is_missing_is_a_warning_and_the_images_stay(tmp_path: Path) -> None:
    env, _ = fake_viewer(tmp_path, exit_code=3)
    result = run_cli("generate", "a newt", *PLACEHOLDER, "-o", "out", "--open", env=env)
    assert result.code == 0
    assert "xdg-open could not open" in result.stderr and "(exit 3)" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_cli("generate", "a newt", *PLACEHOLDER, "-o", "out2", "--open", env={"PATH": str(empty)})
    assert missing.code == 0 and "--open: cannot run xdg-open" in missing.stderr
    assert len(list((tmp_path / "out2").glob("*.png"))) == 1


def test_open_with_the_image_on_stdout_opens_nothing(tmp_path: Path) -> None:
    env, log = fake_viewer(tmp_path)
    result = run_cli("generate", "a newt", *PLACEHOLDER, "-o", "-", "--open", env=env)
    assert result.code == 0 and result.raw.startswith(b"\x89PNG")
    assert opened(log) == []


# -- --preview ----------------------------------------------------------------------------------------

KITTY = re.compile(r"\x1b_G([^;]*);([A-Za-z0-9+/=]*)\x1b\\")
ITERM = re.compile(r"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]*)\x07")
NO_PICTURES = {"TERM": "xterm", "TERM_PROGRAM": "", "LC_TERMINAL": "", "KITTY_WINDOW_ID": "", "TMUX": ""}
SIXEL = re.compile(r"\x1bP([0-9;]*)q(.*?)\x1b\\", re.S)


def preview_run(tmp_path: Path, env: dict[str, str], *more: str) -> tuple[str, str]:
    """`generate --preview` with stderr a terminal and stdout a pipe: (the terminal's text, stdout)."""
    shown = at_terminal("generate", "a sea otter", "-m", "placeholder", "-s", "512x384", "-o", "out", "--preview",
                        *more, env=env, streams=("stderr",))  # fmt: skip
    assert shown.code == 0, shown.screen
    assert "\x1b" not in shown.stdout and shown.stdout.strip().endswith(".png")  # stdout: the path alone
    return shown.screen, shown.stdout


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


def test_kitty_gets_the_graphics_protocol_in_chunks(tmp_path: Path) -> None:
    screen, stdout = preview_run(tmp_path, {"KITTY_WINDOW_ID": "1"})
    chunks = KITTY.findall(screen)
    assert chunks, screen[:200]
    first = dict(pair.split("=") for pair in chunks[0][0].split(","))
    assert first["a"] == "T" and first["f"] == "100" and first["c"] == "24" and first["q"] == "2"
    assert [keys.endswith("m=1") for keys, _ in chunks] == [True] * (len(chunks) - 1) + [False]
    assert chunks[-1][0].endswith("m=0") and all(len(data) <= 4096 for _, data in chunks)
    assert png_size(base64.b64decode("".join(data for _, data in chunks))) == (256, 192)  # 512x384 halved
    assert Path(stdout.strip()).name in screen  # its name above it


def test_iterm2_gets_an_inline_image(tmp_path: Path) -> None:
    for env in ({"TERM_PROGRAM": "iTerm.app"}, {"LC_TERMINAL": "iTerm2"}, {"TERM_PROGRAM": "WezTerm"}):
        screen, _ = preview_run(tmp_path, env)
        (keys, data), *_ = ITERM.findall(screen)
        fields = dict(pair.split("=") for pair in keys.split(";"))
        assert fields["inline"] == "1" and fields["width"] == "24" and fields["preserveAspectRatio"] == "1"
        png = base64.b64decode(data)
        assert int(fields["size"]) == len(png) and png_size(png) == (256, 192)


def decode_sixel(body: str) -> tuple[int, int, dict[tuple[int, int], tuple[int, int, int]]]:
    """A sixel body back to (width, height, {(x, y): (r, g, b) in percent}): raster attributes, colour
    registers, `#n` selections, `!n` repeats, `$` and `-`, per DEC's VT340 reference."""
    raster = re.match(r'"1;1;(\d+);(\d+)', body)
    assert raster is not None
    width, height = int(raster.group(1)), int(raster.group(2))
    colours, pixels, colour, x, top = {}, {}, 0, 0, 0
    for token in re.findall(r"#\d+;2;\d+;\d+;\d+|#\d+|!\d+[?-~]|[?-~]|\$|-", body[raster.end() :]):
        if token.startswith("#") and ";" in token:
            number, _, r, g, b = token[1:].split(";")
            colours[int(number)] = (int(r), int(g), int(b))
        elif token.startswith("#"):
            colour = int(token[1:])
        elif token == "$":
            x = 0
        elif token == "-":
            x, top = 0, top + 6
        else:
            count, char = (int(token[1:-1]), token[-1]) if token.startswith("!") else (1, token)
            for column in range(x, x + count):
                for bit in range(6):
                    if (ord(char) - 63) >> bit & 1:
                        pixels[(column, top + bit)] = colours[colour]
            x += count
    return width, height, pixels


def test_sixel_draws_the_image_itself(tmp_path: Path) -> None:
    from PIL import Image

    screen, stdout = preview_run(tmp_path, {"TERM": "foot"})
    (_, body), *_ = SIXEL.findall(screen)
    width, height, pixels = decode_sixel(body)
    assert (width, height) == (171, 128) and len(pixels) == width * height  # 512x384 / 3, every pixel drawn
    original = Image.open(tmp_path / stdout.strip()).convert("RGB").reduce(3)
    for x, y in ((0, 0), (85, 64), (170, 127), (40, 100)):  # colours within the palette's rounding
        expected = [round(v * 100 / 255) for v in original.getpixel((x, y))]
        assert all(abs(a - b) <= 12 for a, b in zip(pixels[(x, y)], expected, strict=True)), (x, y)


def test_no_picture_in_a_pipe_and_one_hint_at_a_terminal_without_pictures(tmp_path: Path) -> None:
    piped = run_cli("generate", "a sea otter", *PLACEHOLDER, "-o", "out", "--preview", env={"KITTY_WINDOW_ID": "1"})
    assert piped.code == 0 and "\x1b" not in piped.stdout + piped.stderr
    plain = at_terminal("generate", "a sea otter", *PLACEHOLDER, "-o", "out", "--preview", streams=("stderr",),
                        env=NO_PICTURES)  # fmt: skip
    assert plain.code == 0 and plain.screen.count("--preview: this terminal draws no pictures") == 1
    assert "\x1b_G" not in plain.screen and "\x1b]1337" not in plain.screen
    config(tmp_path, "preview = true\n")
    quiet_default = at_terminal("generate", "a sea otter", *PLACEHOLDER, "-o", "out", streams=("stderr",),
                                env=NO_PICTURES)  # fmt: skip
    assert quiet_default.code == 0 and "--preview" not in quiet_default.screen  # the config's default says nothing


def test_preview_in_the_config_draws_and_no_preview_beats_it(tmp_path: Path) -> None:
    config(tmp_path, "preview = true\n")
    env = {"KITTY_WINDOW_ID": "7"}
    drawn = at_terminal("generate", "a sea otter", *PLACEHOLDER, "-o", "out", streams=("stderr",), env=env)
    assert drawn.code == 0 and KITTY.search(drawn.screen)
    for flag in ("--no-preview", "--quiet"):
        plain = at_terminal("generate", "a sea otter", *PLACEHOLDER, "-o", "out", flag, streams=("stderr",), env=env)
        assert plain.code == 0 and "\x1b_G" not in plain.screen, flag


def test_tmux_and_forced_protocols() -> None:
    from imggen.preview import protocol

    assert protocol({"TMUX": "/tmp/tmux-0/default,1,0", "KITTY_WINDOW_ID": "1"}) is None
    assert protocol({"IMGGEN_PREVIEW": "sixel", "TERM": "xterm"}) == "sixel"
    assert protocol({"IMGGEN_PREVIEW": "none", "KITTY_WINDOW_ID": "1"}) is None
    assert protocol({"TERM": "xterm-ghostty"}) == "kitty" and protocol({"TERM_PROGRAM": "mintty"}) == "iterm"


def test_a_bad_switch_in_the_config_is_a_config_error(tmp_path: Path) -> None:
    config(tmp_path, 'preview = "yes"\n')
    result = run_cli("generate", "a newt", *PLACEHOLDER, "-o", "out")
    assert result.code == 3 and "'preview' must be true or false" in result.stderr


def test_edit_opens_and_previews_too(tmp_path: Path) -> None:
    env, log = fake_viewer(tmp_path)
    made = run_cli("generate", "a sea otter", *PLACEHOLDER, "-o", "otter.png")
    assert made.code == 0, made.stderr
    edited = run_cli("edit", "add a red hat", "otter.png", "-m", "placeholder", "-o", "edited", "--open", env=env)
    assert edited.code == 0, edited.stderr
    assert [Path(path).parent.name for path, _ in opened(log)] == ["edited"]
    shown = at_terminal("edit", "add a red hat", "otter.png", "-m", "placeholder", "-o", "edited", "--preview",
                        env={"KITTY_WINDOW_ID": "1"}, streams=("stderr",))  # fmt: skip
    assert shown.code == 0 and KITTY.search(shown.screen)


def test_previews_stop_at_twelve_and_say_so(tmp_path: Path) -> None:
    (tmp_path / "prompts.txt").write_text("a fox\na hare\n")
    shown = at_terminal("generate", *PLACEHOLDER, "-n", "7", "-o", "out", "--preview", "--prompts-file", "prompts.txt",
                        env={"TERM_PROGRAM": "iTerm.app"}, streams=("stderr",))  # fmt: skip
    assert shown.code == 0, shown.screen
    assert len(ITERM.findall(shown.screen)) == 12 and "drew the first 12 of 14 images" in shown.screen


def test_the_switches_survive_config_set(tmp_path: Path) -> None:
    import tomllib

    config(tmp_path, "preview = true\nopen = false\n")
    result = run_cli("config", "set", "work", "provider", "azure")
    assert result.code == 0, result.stderr
    saved = tomllib.loads((tmp_path / "config" / "config.toml").read_text())
    assert saved["preview"] is True and saved["open"] is False and saved["profiles"]["work"]["provider"] == "azure"


def test_macos_opens_them_all_with_one_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imggen.commands.show import open_files

    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "open.log"
    script = folder / "open"
    script.write_text(f'#!/bin/sh\necho "$#" "$@" >> "{log}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sys, "platform", "darwin")
    files = [tmp_path / "a b.png", tmp_path / "c.png"]
    open_files(files, 2)
    assert log.read_text() == f"2 {files[0]} {files[1]}\n"
