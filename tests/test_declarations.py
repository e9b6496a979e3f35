"""A provider is declared once (providers/<name>_spec.py): every list outside providers/ comes from the
registry, no provider name is written there, and each module's PROVIDER has the contract's methods."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from imggen.providers import NAMES, PROVIDERS, SPECS, Provider
from imggen.providers.spec import ProviderSpec

PACKAGE = Path(__file__).resolve().parent.parent / "cli" / "imggen"


def _name_literals(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES:
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    return found


def test_no_provider_name_is_written_outside_providers() -> None:
    outside = [p for p in sorted(PACKAGE.rglob("*.py")) if "providers" not in p.relative_to(PACKAGE).parts]
    assert outside
    assert [hit for path in outside for hit in _name_literals(path)] == []


def test_the_scan_finds_a_name_where_there_is_one() -> None:
    sample = PACKAGE / "providers" / "openai_spec.py"
    assert any("'openai'" in hit for hit in _name_literals(sample))


def test_the_registry_is_the_declarations_in_order() -> None:
    assert NAMES == tuple(spec.name for spec in SPECS) == tuple(PROVIDERS)
    assert len(set(NAMES)) == len(NAMES)
    for spec in SPECS:
        assert spec.module is not None
        assert importlib.import_module(spec.module + "_spec").SPEC is spec


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_provider_module_has_a_provider(spec: ProviderSpec) -> None:
    assert spec.module is not None
    provider = importlib.import_module(spec.module).PROVIDER
    assert Provider in type(provider).__mro__  # so mypy checks it against the protocol
    for method in ("build_request", "parse_response", "error_fields", "complete_settings", "plan_notes",
                   "check_credentials", "model_list_requests", "list_models"):  # fmt: skip
        assert callable(getattr(provider, method))
    assert not (spec.check is not None and type(provider).list_models is Provider.list_models)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_setting_is_declared_once_per_provider(spec: ProviderSpec) -> None:
    keys = [s.key for s in spec.settings]
    assert len(set(keys)) == len(keys)
    assert set(spec.chain_env) <= set(spec.credential_env)


def test_the_declarations_import_nothing_else_of_imggen() -> None:
    """secrets.py and types.py read the registry while imggen loads: it must not import them back."""
    script = "import sys, imggen.providers; print(' '.join(m for m in sys.modules if m.startswith('imggen')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    spec_modules = {f"{spec.module}_spec" for spec in SPECS if spec.module}
    assert set(out) - spec_modules == {"imggen", "imggen.errors", "imggen.secrets", "imggen.providers",
                                       "imggen.providers.spec"}  # fmt: skip
    assert not any(spec.module in out for spec in SPECS if spec.module)  # implementations load on use
