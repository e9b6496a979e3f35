"""`import imggen` stays cheap: no CLI toolkit, no provider SDK, no HTTP client until used."""

import subprocess
import sys


def loaded_after(code: str) -> set[str]:
    script = f"import sys; {code}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_imggen_loads_no_cli_toolkit_or_provider_sdk() -> None:
    modules = loaded_after("import imggen")
    for heavy in ("typer", "rich", "boto3", "botocore", "google.auth", "httpx"):
        assert heavy not in modules


def test_python_api_names_resolve_lazily() -> None:
    modules = loaded_after("import imggen; imggen.generate; imggen.ImageResponse")
    assert "httpx" in modules
    assert "typer" not in modules and "rich" not in modules
    assert "httpcore" not in modules  # loaded with the first HTTP client, as httpx itself loads it


def test_version_flag_prints_the_version() -> None:
    import imggen

    out = subprocess.run([sys.executable, "-m", "imggen", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"imggen {imggen.__version__}"


def test_the_cli_does_not_load_the_server_stack() -> None:
    modules = loaded_after("import imggen.commands")
    for heavy in ("starlette", "uvicorn", "yaml", "redis", "imggen.proxy", "PIL", "imggen.gallery", "imggen.preview"):
        assert heavy not in modules
