"""What a provider declares about itself: the one place each fact about a provider lives.

Each provider has a small declaration module (`<provider>_spec.py`, holding `SPEC = ProviderSpec(...)`)
beside its implementation module; the registry (`providers/__init__.py`) lists the declarations, and
every list outside providers/ (catalog prefixes, settings, secrets, planning, the proxy's config
keys, `imggen config`'s hints) is derived from them. Declarations are data: this module and the
declaration modules import nothing heavy and nothing else of imggen, for every command reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

# The settings every provider may have, in the order `imggen config` lists them.
COMMON_SETTINGS = ("api_key", "api_base", "api_version")
TASKS = ("generate", "edit")  # what a provider can be asked to do

# Where a provider's credentials come from, when a variable or file only points at a chain that the
# provider's SDK resolves (boto3's, google-auth's): (profile values as they resolve, environment) ->
# the source's name, or None. No network call, no metadata server.
CredentialChain = Callable[[Mapping[str, Any], Mapping[str, str]], "str | None"]


@dataclass(frozen=True)
class SettingSpec:
    """One setting a provider reads, with where it comes from and how it is shown."""

    key: str
    env: tuple[str, ...] = ()  # variables read in this order (empty: flags, profiles and the proxy config only)
    default: Any = None
    secret: bool = False  # masked wherever shown, whatever its source
    secret_if_json: bool = False  # a secret when the value is JSON itself rather than a path to a file
    header: bool = False  # sent in a header or a signature (secrets are): a line break in it is a config error
    profile: bool = True  # a key of `imggen config set` (and of config.toml's profiles)
    param: bool = False  # `-p KEY=…` / a Python keyword sets it; --dry-run shows it
    proxy_aliases: tuple[str, ...] = ()  # other litellm_params keys that set it
    identity: bool = False  # picks the credentials a request is sent with (batches group requests by it)

    @property
    def in_header(self) -> bool:
        return self.secret or self.header


@dataclass(frozen=True)
class ModelCheckSpec:
    """What `imggen models check` says of a provider: its short name and how to give it credentials."""

    label: str
    hint: str
    what: str = "the model list"  # what --dry-run says the requests are
    profile_prefixes: tuple[str, ...] = ()  # ids with these prefixes (inference profiles) are listed as their model
    keyless_base: bool = False  # with an api_base of the user's (an OpenAI-compatible server), no key is needed


@dataclass(frozen=True)
class ProviderSpec:
    """What imggen knows about a provider without importing its implementation module."""

    name: str  # also its model prefix: `name/model-id`
    label: str
    module: str | None  # the implementation (`PROVIDER: Provider`); None: not available in this version yet
    order: int = 100  # where imggen lists it among the providers (messages, `imggen models`): lowest first
    settings: tuple[SettingSpec, ...] = ()
    # Any of these variables or files (under ~) means credentials are configured, for `imggen models`.
    credential_env: tuple[str, ...] = ()
    credential_files: tuple[str, ...] = ()
    # Of credential_env, the variables that only point at credentials a chain resolves (credential_chain).
    chain_env: tuple[str, ...] = ()
    credential_chain: CredentialChain | None = None
    needs_credentials: bool = True
    ca_env: tuple[str, ...] = ()  # the provider's own CA-bundle variable, honoured as its SDK does
    secret_headers: tuple[str, ...] = ()  # request headers that carry its credential (lower case)
    key_hint: str = ""  # what to do when its key is missing
    # Fields its wire format has, for ids the catalog does not know (the catalog's `fields` otherwise).
    fields: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ("generate",)  # with "edit": its module builds edit requests (ImageRequest.images)
    bare_ids: str | None = None  # a regex: bare ids (no prefix) that can only mean this provider
    alone: str | None = None  # the model id its name alone stands for (`-m placeholder`)
    catalog_ids: bool = True  # an id the catalog lacks gets "nearest known" (not Azure's deployment names)
    api_hosts: str | None = None  # a regex: api_base hosts only this provider serves (`imggen config set`)
    own_hosts: tuple[str, ...] = ()  # api_base host suffixes that are still the provider's own endpoint
    # The proxy's other request fields: OpenAI's as they are ("openai-format"), any as a provider
    # parameter ("provider-params"), or none.
    extra_fields: Literal["openai-format", "provider-params", "none"] = "none"
    # An api_base of the user's (not the provider's own endpoint) is a server of its format that may
    # take any field: the proxy forwards fields it does not know there.
    compatible_servers: bool = False
    streams: bool = False  # its GPT image models answer `stream: true` with server-sent events
    check: ModelCheckSpec | None = None  # None: `imggen models check` does not ask this provider
    # Every variable it reads (its settings', its SDK's), with what it is: `imggen help environment`.
    environment: tuple[tuple[str, str], ...] = ()
    environment_note: str = ""  # said after its name there
    # Why `imggen batch` takes none of its models, with the source (a provider with a batch service in
    # cli/imggen/batches/ has none; without either, the command says imggen drives none for it).
    batch_note: str = ""

    @property
    def prefix(self) -> str:
        return f"{self.name}/"

    @property
    def env(self) -> dict[str, tuple[str, ...]]:
        return {s.key: s.env for s in self.settings}

    @property
    def defaults(self) -> dict[str, Any]:
        return {s.key: s.default for s in self.settings if s.default is not None}
