"""The README cannot rot: every sh, python, yaml and toml block in README.md is run or loaded here.

Shell blocks run in bash (`set -eu -o pipefail`) in a temporary directory with a sandboxed
environment: HOME and IMGGEN_CONFIG_DIR of their own, the test venv's `imggen` first on PATH, fake
credentials, and every provider's endpoint variable pointing at a local fake server. Example hosts in
a block (`https://*.openai.azure.com`, `http://localhost:8080/v1`) are rewritten to the fake, so an
example runs for real whenever it can. Python blocks run as scripts the same way; yaml blocks are
checked by `imggen serve`'s config loader and toml blocks are loaded as imggen's config file.

A block may be marked with an HTML comment on the line before its fence (options separated by commas):

    <!-- readme-test: dry-run -->          needs a real cloud: every `imggen generate` gets --dry-run
    <!-- readme-test: exit 3 -->           the block's expected exit code (default 0)
    <!-- readme-test: skip (REASON) -->    not run (a benchmark); the repository paths it names must exist
    <!-- readme-test: deprecated (REASON) -->  may use a deprecated (never a retired) model
    <!-- readme-test: serve -->            its `imggen serve` line is started with the README's yaml config,
    <!-- readme-test: client -->           and the `client` python blocks are run against it
    <!-- readme-test: notebook -->         a python block run as a Jupyter cell: inside a running event
                                           loop, top-level `await` allowed

Install commands (`python3 -m venv`, `pip install`, `apt-get`, activating the venv, the test command)
are never run, wherever they appear; instead the extras they name must exist in pyproject.toml and the
test command must be the one .ci/run runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import SECRETS, run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakeserver import FakeProvider
from servehelp import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python", "yaml": "yaml",
             "yml": "yaml", "toml": "toml"}  # fmt: skip
IGNORED_LANGUAGES = {"text", "json", "jsonl", "console"}  # data or output shown, nothing to run
MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
INSTALL = re.compile(r"python3? -m venv|pip3? install|apt-get|apt |brew |-m pytest|(^|[;&|]\s*)(\.|source) \S*activate")
EXTRA = re.compile(r"""['"]?\.\[([\w,-]+)\]['"]?""")
MODEL_FLAG = re.compile(r"(?:^|\s)(?:-m|--model)[ =]([\w./:@-]+)")
MODEL_KEY = re.compile(r"""(?:model[=:]\s*["']?|^model = ")([\w./:@-]*[\w:@.-])(?![/\w])""", re.M)
CONFIG_SET = re.compile(r"\s*imggen config set ")
EXAMPLE_HOSTS = re.compile(r"https://[\w-]+\.openai\.azure\.com/?")
INPUT_FILES = {  # files the examples read, present in each block's directory
    "prompts.jsonl": '{"prompt": "a sea otter"}\n{"prompt": "a heron", "n": 2}\n',
    "prompts.txt": "a sea otter\na heron\n",
}
# Nothing may leave the machine: a request to any host but the fake goes to this proxy, which refuses it.
DEAD_PROXY = "http://127.0.0.1:9"
STUBS = ("gcloud", "open", "xdg-open")  # programs an example calls that the test cannot run for real


@dataclass
class Block:
    lang: str
    text: str
    line: int
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.lang}-line{self.line}"


def parse_readme(text: str) -> list[Block]:
    """Fenced blocks with their language, first line number and marker options."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"README.md line {i + 1}: a fence that is never closed"
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(before)
        blocks.append(Block(fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", i + 2,
                            parse_options(marker.group(1)) if marker else {}))  # fmt: skip
        i = end + 1
    return blocks


def parse_options(text: str) -> dict[str, str]:
    """`dry-run, exit 3, skip (reason)` -> {"dry-run": "", "exit": "3", "skip": "reason"}"""
    options = {}
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", text):
        match = re.match(r"\s*([\w-]+)\s*(?:\((.*)\)|(\S+))?\s*$", part)
        assert match, f"bad readme-test option {part!r}"
        options[match.group(1)] = match.group(2) or match.group(3) or ""
    return options


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))


def of(lang: str, *, without: tuple[str, ...] = ("skip", "serve", "client")) -> list[Block]:
    return [b for b in BLOCKS if LANGUAGES.get(b.lang) == lang and not set(b.options) & set(without)]


# -- the README's structure and the things that cannot be run ------------------------------------------


def test_every_block_has_a_known_language_and_valid_markers() -> None:
    assert len(of("sh")) >= 8 and of("python") and of("yaml", without=()) and of("toml"), "README blocks not found"
    known = {"dry-run", "exit", "skip", "deprecated", "serve", "client", "notebook"}
    for block in BLOCKS:
        assert block.lang in LANGUAGES or block.lang in IGNORED_LANGUAGES, (
            f"README.md line {block.line}: fence language {block.lang!r} (use sh, python, yaml, toml or text)"
        )
        assert set(block.options) <= known, f"README.md line {block.line}: unknown readme-test option"
        for needs_reason in ("skip", "deprecated"):
            assert block.options.get(needs_reason, "x"), f"README.md line {block.line}: {needs_reason} needs (a reason)"


def install_lines(block: Block) -> list[str]:
    return [line for line in logical_lines(block.text) if INSTALL.search(line)]


def logical_lines(text: str) -> list[str]:
    lines = text.replace("\\\n", " ").splitlines()  # a continued line is one command
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_install_commands_name_real_extras_and_the_ci_test_command() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    ci = (ROOT / ".ci" / "run").read_text()
    lines = [line for b in BLOCKS if LANGUAGES.get(b.lang) == "sh" for line in install_lines(b)]
    assert any("-m pytest" in line for line in lines), "the README shows no test command"
    for line in lines:
        assert "imggen[" not in line, f"imggen is not on PyPI: install from the checkout ('.[extra]'): {line}"
        for group in EXTRA.findall(line):
            assert set(group.split(",")) <= extras, f"{line}: no such extra in pyproject.toml"
        if "-m pytest" in line:
            assert line.strip() in ci.splitlines(), f".ci/run does not run the README's test command: {line}"
        # Nothing runnable hides behind an install command on the same line: it would never be tested.
        assert not re.search(r"(^|[;&|]\s*)imggen\b", line), f"put imggen commands on their own line: {line}"
    assert "apt-get update" in ci, ".ci/run must be able to install redis-server on a fresh machine"


def test_skipped_blocks_name_files_that_exist() -> None:
    for block in BLOCKS:
        if "skip" in block.options:
            for path in re.findall(r"(?:tests|completions|cli)/[\w./-]+\.\w+", block.text):
                assert (ROOT / path).exists(), f"README.md line {block.line} names {path}, which does not exist"


def test_examples_use_no_retired_or_deprecated_model() -> None:
    from imggen.catalog import parse_model

    for block in BLOCKS:
        commands = [line for line in logical_lines(block.text) if "imggen " in line and not INSTALL.search(line)]
        keys = MODEL_KEY.findall(block.text) if LANGUAGES.get(block.lang) != "sh" else []  # not in sh comments
        for name in [m for line in commands for m in MODEL_FLAG.findall(line)] + keys:
            ref = parse_model(name)
            # Ids the catalog cannot know: Azure deployment names, models of an OpenAI-compatible server.
            own_name = ref.provider == "azure" or (ref.provider == "openai" and "api-base" in block.text)
            status = ref.info.status() if ref.info else "an id own to the user" if own_name else "not in the catalog"
            allowed = {"active", "an id own to the user", "deprecated" if "deprecated" in block.options else ""}
            assert status in allowed, f"README.md line {block.line}: {name} is {status}; use a current model"


# -- running shell and python blocks against the fake -------------------------------------------------


@pytest.fixture
def open_fake() -> object:
    with FakeProvider() as server:
        server.require_key = False  # the README's keys are placeholders such as sk-...
        yield server


def sandbox(tmp: Path, fake: FakeProvider) -> tuple[Path, dict[str, str]]:
    """A working directory with the example inputs, and an environment that can reach only the fake."""
    work, home, stubs = tmp / "work", tmp / "home", tmp / "stubs"
    for directory in (work, home, stubs):
        directory.mkdir(exist_ok=True)
    for name, content in INPUT_FILES.items():
        (work / name).write_text(content)
    (work / "completions").symlink_to(ROOT / "completions")
    (work / "tests").symlink_to(ROOT / "tests")
    for name in STUBS:
        (stubs / name).write_text(f"#!/bin/sh\necho 'readme-test: {name} not run' >&2\n")
        (stubs / name).chmod(0o755)
    assert (VENV_BIN / "imggen").exists(), f"no imggen in {VENV_BIN}: pip install -e '.[test]' in this venv"
    env = {
        "PATH": f"{VENV_BIN}:{stubs}:/usr/bin:/bin", "HOME": str(home), "IMGGEN_CONFIG_DIR": str(tmp / "config"),
        "LANG": "C.UTF-8", "TMPDIR": str(tmp), "SHELL": "/bin/bash", "NO_PROXY": "127.0.0.1,localhost",
        "HTTPS_PROXY": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY,
        "NO_GCE_CHECK": "true",
        "AWS_EC2_METADATA_DISABLED": "true", "OPENAI_API_KEY": fake.openai_key, "OPENAI_BASE_URL": fake.openai_base,
        "AZURE_API_KEY": fake.azure_key, "AZURE_API_BASE": fake.base_url, "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "GEMINI_API_KEY": "readme-test-gemini",
        "VERTEXAI_PROJECT": "readme-test",
    }  # fmt: skip
    return work, env


def to_fake(text: str, fake: FakeProvider) -> str:
    """The README's example hosts stand for the user's own: here they are the fake. Not in `config set`,
    which sends nothing and may infer the provider from the host; the sandbox's dead proxy stops any
    request to a host left as it is."""
    lines = [line if CONFIG_SET.match(line) else EXAMPLE_HOSTS.sub(fake.base_url + "/", line)
             for line in text.split("\n")]  # fmt: skip
    return "\n".join(lines).replace("http://localhost:8080/v1", fake.openai_base)


def shell_script(block: Block, fake: FakeProvider) -> str:
    lines = [":  # install command, not run" if INSTALL.search(line) else line
             for line in to_fake(block.text, fake).replace("\\\n", " ").splitlines()]  # fmt: skip
    prelude = ["set -eu -o pipefail"]
    if "dry-run" in block.options:  # needs a real cloud: show the requests instead of sending them
        prelude.append('imggen() { if [ "${1-}" = generate ]; then command imggen "$@" --dry-run; '
                       'else command imggen "$@"; fi; }')  # fmt: skip
    return "\n".join(prelude + lines) + "\n"


def check_run(block: Block, proc: subprocess.CompletedProcess[str]) -> None:
    expected = int(block.options.get("exit", "0"))
    where = f"README.md line {block.line} exited {proc.returncode} (expected {expected})"
    assert proc.returncode == expected, f"{where}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, f"README.md line {block.line}: traceback\n{proc.stderr}"
    for secret in (*SECRETS, AWS_SECRET):
        assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("block", of("sh"), ids=lambda b: b.id)
def test_shell_block(block: Block, tmp_path: Path, open_fake: FakeProvider) -> None:
    work, env = sandbox(tmp_path, open_fake)
    proc = subprocess.run(["bash", "-c", shell_script(block, open_fake)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    check_run(block, proc)
    kept = (".imggen-manifest.jsonl", ".imggen-thumbs")  # a run's record, the gallery's thumbnails
    temporary = [p for p in work.rglob(".imggen-*") if p.name not in kept]
    assert not temporary, f"left behind: {temporary}"
    if "dry-run" in block.options:  # each generate really ran, and showed its request instead of sending it
        generates = [line for line in logical_lines(block.text) if line.lstrip().startswith("imggen generate")]
        assert len(re.findall(r"\bPOST\b", proc.stdout)) >= len(generates) > 0, proc.stdout  # text or --json


@pytest.mark.parametrize("block", of("python"), ids=lambda b: b.id)
def test_python_block(block: Block, tmp_path: Path, open_fake: FakeProvider) -> None:
    work, env = sandbox(tmp_path, open_fake)
    script = work / "example.py"
    source = to_fake(block.text, open_fake)
    script.write_text(as_notebook_cell(source) if "notebook" in block.options else source)
    proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    check_run(block, proc)


def as_notebook_cell(source: str) -> str:
    """What IPython does with a cell: compile it allowing top-level await and run it in a running loop."""
    return (
        "import ast, asyncio\n"
        f"code = compile({source!r}, 'cell', 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)\n"
        "async def cell():\n"
        "    result = eval(code, {'__name__': '__main__'})\n"
        "    if asyncio.iscoroutine(result):\n"
        "        await result\n"
        "asyncio.run(cell())\n"
    )


def test_a_notebook_cell_runs_inside_a_running_loop(tmp_path: Path) -> None:
    cell = "import asyncio\nasyncio.get_running_loop()\nawait asyncio.sleep(0)\nprint('ran')\n"
    (tmp_path / "cell.py").write_text(as_notebook_cell(cell))
    proc = subprocess.run([sys.executable, "cell.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr


# -- configuration files ------------------------------------------------------------------------------


def env_references(text: str) -> set[str]:
    return set(re.findall(r"os\.environ/(\w+)", text))


@pytest.mark.parametrize("block", of("yaml", without=("skip",)), ids=lambda b: b.id)
def test_yaml_block_is_a_config_imggen_serve_accepts(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    from imggen.proxy.config import parse

    raw = yaml.safe_load(block.text)
    for name in env_references(block.text) | set(raw.get("environment_variables") or {}):
        monkeypatch.setenv(name, f"readme-test-{name.lower()}")  # parse() sets environment_variables itself
    config = parse(raw, f"README.md line {block.line}")
    assert config.warnings == [], f"README.md line {block.line}: keys imggen serve ignores: {config.warnings}"


@pytest.mark.parametrize("block", of("toml"), ids=lambda b: b.id)
def test_toml_block_is_a_config_imggen_loads(block: Block, tmp_path: Path) -> None:
    (tmp_path / "config").mkdir(mode=0o700)
    (tmp_path / "config" / "config.toml").write_text(block.text)
    (tmp_path / "config" / "config.toml").chmod(0o600)
    env = {name: f"readme-test-{name.lower()}" for name in env_references(block.text)}
    shown = run_cli("config", "show", env=env)
    assert shown.code == 0 and shown.stderr == "", shown.stderr
    explained = run_cli("config", "explain", env=env)
    assert explained.code == 0, explained.stderr
    assert "readme-test" not in shown.everything() + explained.everything()  # the keys stay masked


# -- imggen serve with the README's config, and the client example against it ---------------------------


def test_serve_block_with_the_readme_config_answers_the_client_example(tmp_path: Path, open_fake: FakeProvider) -> None:
    serve_blocks = [b for b in BLOCKS if "serve" in b.options]
    clients = [b for b in BLOCKS if "client" in b.options]
    configs = [b for b in of("yaml") if "model_list" in b.text]
    assert len(serve_blocks) == 1 and clients and len(configs) == 1, "README: one serve block, its config, a client"
    redis = RedisServer(tmp_path)
    try:
        work, env = sandbox(tmp_path, open_fake)
        port = free_port()
        config = to_fake(configs[0].text, open_fake).replace("redis_port: 6379", f"redis_port: {redis.port}")
        (work / "config.yaml").write_text(config)
        env |= {"AZURE_API_KEY_EU": open_fake.azure_key, "REDIS_HOST": "127.0.0.1",
                "REDIS_PASSWORD": "redis-test-password-1234",
                "PROXY_MASTER_KEY": "sk-readme-master-0123456789"}  # fmt: skip
        script = shell_script(serve_blocks[0], open_fake).replace("--port 4000", f"--port {port}")
        assert f"--port {port}" in script, "the serve block must start imggen serve --port 4000"
        served = subprocess.Popen(["bash", "-c", script.replace("imggen serve", "exec imggen serve")], cwd=work,
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)  # fmt: skip
        try:
            wait_up(port, served)
            for client in clients:
                script_path = work / f"client-{client.line}.py"
                script_path.write_text(client.text.replace("127.0.0.1:4000", f"127.0.0.1:{port}"))
                proc = subprocess.run([sys.executable, str(script_path)], cwd=work, env=env, capture_output=True,
                                      text=True, timeout=120)  # fmt: skip
                check_run(client, proc)
        finally:
            if served.poll() is None:
                os.killpg(served.pid, signal.SIGTERM)
            out, err = served.communicate(timeout=30)
        assert served.returncode == -signal.SIGTERM, err  # drained, then ends by the signal: 143 in a shell
        assert "Traceback" not in err and "sk-readme-master" not in out + err
    finally:
        redis.stop()
    assert (work / "otter.png").read_bytes() == open_fake.image_bytes


def wait_up(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the README's imggen serve exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the README's imggen serve did not come up")


# -- item 21: the benchmarks refuse to measure without imggen --------------------------------------------


@pytest.mark.parametrize("script", ["bench.py", "serve.py", "prompts.py"])
def test_bench_scripts_refuse_to_run_without_imggen(script: str, tmp_path: Path) -> None:
    """-S: no site-packages, so neither the editable install of imggen nor httpx can be found."""
    proc = subprocess.run([sys.executable, "-S", str(ROOT / "tests" / "bench" / script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""  # no figures
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "cannot import imggen" in proc.stderr and ".venv/bin/python" in proc.stderr


def test_serve_without_its_extra_names_the_install_command_that_works_from_a_checkout(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None; sys.argv = ['imggen', 'serve', '--config', 'x.yaml'];"
            "from imggen.commands import main; main()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: imggen serve needs starlette. "
        "Install the serve extra from imggen's source directory: pip install '.[serve]'."
    )


def test_bench_refuses_figures_for_a_run_that_did_not_save_what_it_claims(tmp_path: Path) -> None:
    code = ("import sys, pathlib; sys.path.insert(0, sys.argv[1]); import bench; d = pathlib.Path(sys.argv[2]);"
            "(d / 'a.png').write_bytes(b'x'); bench.saved(d, 1); print('one counted'); bench.saved(d, 2)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests" / "bench"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == "one counted\n"
    assert proc.stderr == f"error: {tmp_path.name}: 1 images saved, expected 2: no figures for this run\n"
