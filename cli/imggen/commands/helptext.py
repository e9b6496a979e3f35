"""Help that is more than a flag's line: each command's examples and `imggen help TOPIC`.

Plain data, no imports at the top: `--help` must stay within the start-up budget. The examples are real commands
(placeholder model, --dry-run, files they create themselves): tests/test_names.py runs every one.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "imggen": (
        'imggen generate "a sea otter reading a newspaper" -m placeholder',
        "imggen models",
        "imggen help environment",
    ),
    "generate": (
        'imggen generate "a sea otter reading a newspaper" -m placeholder -o otters',
        'imggen generate "a lighthouse at dusk" -n 3 -s 1536x1024 -q high --dry-run',
        'printf "a fox\\na heron\\n" | imggen generate - -m placeholder --json -o birds',
        'imggen generate "a poster" -m gemini/gemini-2.5-flash-image --aspect-ratio 16:9 -p temperature=0.5 --dry-run',
    ),
    "edit": (
        'imggen generate "a sea otter" -m placeholder -s 512x512 -o otter.png && '
        'imggen edit "add a red hat" otter.png -m placeholder -o edited',
        'imggen edit "make it night" otter.png --mask-prompt "the sky" -m placeholder --json -o edited',
        'imggen edit "one picture of both" otter.png otter.png -m gpt-image-2 --input-fidelity high --dry-run',
    ),
    "gallery": (
        "imggen gallery otters",
        'imggen gallery otters -o otters.html --title "Sea otters"',
    ),
    "models": (
        "imggen models",
        "imggen models --provider bedrock --wide",
        "imggen models --all | cut -f1,3",
        "imggen models --task edit --json",
    ),
    "models check": (
        "imggen models check --dry-run",
        "imggen models check --provider bedrock --dry-run",
        "imggen models check --provider gemini --dry-run --json",
    ),
    "models show": (
        "imggen models show gpt-image-2",
        "imggen models show bedrock/amazon.nova-canvas-v1:0 --json",
    ),
    "models add": (
        "imggen models add openai/gpt-image-2-2026-12-01 --like openai/gpt-image-2",
        "imggen models add azure/my-deployment --like azure/gpt-image-2 --price 0.05",
        "imggen models add gpt-image-2 --price 0.05",
    ),
    "models remove": ("imggen models remove openai/gpt-image-2-2026-12-01",),
    "models default": (
        "imggen models default",
        "imggen models default placeholder",
        "imggen models default openai/gpt-image-2",
    ),
    "config set": (
        "imggen config set openai api_key os.environ/OPENAI_API_KEY",
        "imggen config set work provider azure",
        "imggen config set work api_base https://my-resource.openai.azure.com",
        "imggen config set work model azure/gpt-image-1",
    ),
    "config get": (
        "imggen config get work api_base",
        "imggen config get openai api_key --reveal",
    ),
    "config show": ("imggen config show", "imggen config show work --json"),
    "config list": ("imggen config list", "imggen config list --json"),
    "config default": ("imggen config default work",),
    "config explain": (
        "imggen config explain",
        "imggen config explain -m bedrock/amazon.nova-canvas-v1:0",
        "imggen config explain --profile work --json",
    ),
    "config path": ("imggen config path", 'ls -l "$(imggen config path)"'),
    "config unset": ("imggen config unset work api_base",),
    "config remove": ("imggen config remove work",),
    "serve": (
        "imggen serve -c proxy.yaml",
        "imggen serve -c proxy.yaml --host 0.0.0.0 --port 8080",
        "imggen serve -c proxy.yaml --allow-origin http://localhost:3000",
    ),
    "serve spend": (
        "imggen serve spend -c proxy.yaml",
        "imggen serve spend -c proxy.yaml --by model --since 2026-11-01",
        "imggen serve spend -c proxy.yaml --by day --json",
    ),
    "logs": (
        "imggen logs -q otter --since 7d",
        "imggen logs -n 1 --json",
        "imggen logs cost --by model",
        "imggen logs --html -q otter -o otters.html",
    ),
    "help": ("imggen help environment", "imggen help environment | grep AWS_", "imggen help overlay"),
}


def epilog(command: str) -> str:
    """The "Examples:" section of a command's --help; the \\b keeps click from rewrapping the lines."""
    lines = "\n".join("  " + example for example in EXAMPLES[command])
    return f"Examples:\n\n\b\n{lines}"


# Every variable imggen reads, by what it is for: imggen's own and the network's here, each provider's
# from its declaration (ProviderSpec.environment). `imggen help environment` prints environment().
ENVIRONMENT_HEAD = (
    "Environment variables imggen reads (a flag or --profile wins over them; see `imggen config explain`):"
)
IMGGEN_VARIABLES = (
    ("IMGGEN_MODEL", "The model when -m is not given (beats default_model in config.toml)."),
    ("IMGGEN_PROFILE", "The profile when --profile is not given."),
    ("IMGGEN_OUTPUT_DIR", "The output directory when -o is not given."),
    ("IMGGEN_CONFIG_DIR", "Where config.toml and models.json live (default: the platform's config dir)."),
    ("IMGGEN_MAX_IMAGE_MB", "The largest image imggen accepts from a provider, in MiB."),
    (
        "IMGGEN_POLL_INTERVAL",
        "Seconds between a queued job's polls, fixed (default: the provider's pace, backing off).",
    ),
    ("IMGGEN_BATCH_LEDGER", "imggen batch: the ledger file (default: batches.sqlite in the platform's data dir)."),
    ("IMGGEN_BATCH_LIMITS", "imggen batch: REQUESTS,BYTES per provider batch file, below the service's (tests)."),
    ("IMGGEN_LOG_DB", "The log of saved images (default: log.sqlite in the platform's data dir); imggen logs path."),
    ("IMGGEN_NO_LOG", "Set to 1: generate, edit and batch collect do not record images in the log."),
    ("IMGGEN_TODAY", "The date (YYYY-MM-DD) models' lifecycles are judged on (default: today)."),
    ("IMGGEN_KEY_LEASE_SECONDS", "imggen serve: the life of a budget lease of a virtual key (default 30)."),
    ("_IMGGEN_COMPLETE", "Set by the shell completion scripts; not for users."),
)
NETWORK_VARIABLES = (
    ("HTTPS_PROXY, HTTP_PROXY", "Proxy for https:// and http:// requests (lower case is read too)."),
    ("ALL_PROXY", "Proxy for both."),
    ("NO_PROXY", "Hosts reached without the proxy, comma-separated."),
    ("SSL_CERT_FILE", "CA bundle for TLS (a provider's own, e.g. AWS_CA_BUNDLE, comes first)."),
    ("REQUESTS_CA_BUNDLE", "CA bundle, the requests library's name (read by google-auth too)."),
)
TERMINAL_VARIABLES = (
    ("NO_COLOR", "Any value: no colour on stderr."),
    ("TERM", "dumb: no colour and no progress display; xterm-kitty, foot, mlterm, *sixel*: what --preview draws with."),
    ("COLUMNS", "The width `imggen models` and the progress display fit, when set."),
    ("IMGGEN_PREVIEW", "--preview's protocol: kitty, iterm or sixel (for a terminal not recognised), or none."),
    ("KITTY_WINDOW_ID", "Set by kitty: --preview draws with the kitty graphics protocol (so does TERM=xterm-kitty)."),
    ("TERM_PROGRAM", "iTerm.app, WezTerm or mintty: --preview draws iTerm2 inline images; ghostty: kitty's."),
    ("LC_TERMINAL", "iTerm2: --preview draws iTerm2 inline images (ssh passes it on)."),
    ("TMUX", "Set inside tmux, which passes no pictures through by default: no --preview."),
    ("MLTERM", "Set by mlterm: --preview draws sixel."),
)


def _section(title: str, variables: tuple[tuple[str, str], ...]) -> str:
    lines = [f"  {name:<28} {text}" if len(name) <= 28 else f"  {name}  {text}" for name, text in variables]
    return title + "\n" + "\n".join(lines) + "\n"


def environment() -> str:
    """`imggen help environment`: every variable imggen reads, by what it is for."""
    from ..providers import SPECS

    sections = [_section("imggen", IMGGEN_VARIABLES)]
    for spec in SPECS:
        if spec.environment:
            note = f" ({spec.environment_note})" if spec.environment_note else ""
            sections.append(_section(spec.label + note, spec.environment))
    sections += [_section("Network", NETWORK_VARIABLES), _section("Terminal", TERMINAL_VARIABLES)]
    return ENVIRONMENT_HEAD + "\n\n" + "\n".join(sections)


# `imggen help overlay`: the user's own models, models.json beside config.toml.
OVERLAY = """\
Your own models: models.json (or models.toml, not both) in imggen's config directory, beside
config.toml (IMGGEN_CONFIG_DIR moves it). It has the catalog's shape and is read at every start:

{"models": [
 {"id": "openai/gpt-image-2-2026-12-01", "like": "openai/gpt-image-2", "price": {"per_image": 0.05}},
 {"id": "azure/my-deployment", "like": "azure/gpt-image-2"},
 {"id": "openai/gpt-image-2", "lifecycle": {"retired": "2027-06-30", "replacement": "openai/gpt-image-2-2026-12-01"}},
 {"id": "gemini/gemini-3.1-flash-image", "image_sizes": ["512", "1K", "2K"], "price": {"per_image": 0.045}}
]}

A catalog id: the keys given replace the catalog's, except "lifecycle" and "sources", which are
  merged key by key (null removes a key); "price" is replaced whole.
A new id: "like" takes that catalog model's rules and price (not its lifecycle, notes or sources)
  at every start, so catalog fixes reach it; without "like" it needs "family" where the provider
  has several, and gets the provider's fields and nothing else.
Keys: those `imggen models show MODEL --json` prints (sizes, aspect_ratios, size_rule, qualities,
  max_n, fields, price, lifecycle, location, regions, notes, ...), and "like".
  lifecycle: {"deprecated": "YYYY-MM-DD", "retired": "YYYY-MM-DD", "replacement": "provider/id",
  "source": "..."}; status comes from the dates.
  price: {"per_image": 0.04}, or quality -> size -> USD: {"per_image": {"high": {"1024x1024": 0.17}}}.
models.toml: the same as [[models]] tables; dates may be TOML dates (retired = 2027-06-30).

imggen models add ID --like MODEL [--price USD] [--retired DATE]   writes an entry
imggen models remove ID                                            takes one out
imggen models show MODEL                                           says which facts came from the file
A file that does not load stops every command (exit 3), naming the entry and what is wrong.
"""


def overlay() -> str:
    return OVERLAY


TOPICS = {"environment": environment, "overlay": overlay}
