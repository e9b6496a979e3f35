"""Help that is more than a flag's line: each command's examples and `imggen help TOPIC`.

Plain data, no imports: `--help` must stay within the start-up budget. The examples are real commands
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
    "models": (
        "imggen models",
        "imggen models --provider bedrock --wide",
        "imggen models --all | cut -f1,3",
        "imggen models --json",
    ),
    "models show": (
        "imggen models show gpt-image-2",
        "imggen models show bedrock/amazon.nova-canvas-v1:0 --json",
    ),
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
    "help": ("imggen help environment", "imggen help environment | grep AWS_"),
}


def epilog(command: str) -> str:
    """The "Examples:" section of a command's --help; the \\b keeps click from rewrapping the lines."""
    lines = "\n".join("  " + example for example in EXAMPLES[command])
    return f"Examples:\n\n\b\n{lines}"


# Every variable imggen reads, by what it is for. `imggen help environment` prints this as it is.
ENVIRONMENT = """\
Environment variables imggen reads (a flag or --profile wins over them; see `imggen config explain`):

imggen
  IMGGEN_MODEL                 The model when -m is not given (beats default_model in config.toml).
  IMGGEN_PROFILE               The profile when --profile is not given.
  IMGGEN_OUTPUT_DIR            The output directory when -o is not given.
  IMGGEN_CONFIG_DIR            Where config.toml lives (default: the platform's config directory).
  IMGGEN_MAX_IMAGE_MB          The largest image imggen accepts from a provider, in MiB.
  IMGGEN_TODAY                 The date model lifecycles are judged on, YYYY-MM-DD (default: today).
  _IMGGEN_COMPLETE             Set by the shell completion scripts; not for users.

OpenAI
  OPENAI_API_KEY               API key.
  OPENAI_BASE_URL              Endpoint root (default https://api.openai.com/v1).
  OPENAI_API_BASE              The same, the older name.

Azure OpenAI
  AZURE_API_KEY                API key (AZURE_OPENAI_API_KEY is read too).
  AZURE_OPENAI_API_KEY         API key, the Azure SDK's name.
  AZURE_AD_TOKEN               A Microsoft Entra ID token, instead of a key.
  AZURE_API_BASE               The resource's endpoint, https://NAME.openai.azure.com.
  AZURE_API_VERSION            The API version (default 2025-04-01-preview).

AWS Bedrock (boto3's own variables and files work as they do for the aws CLI)
  AWS_BEARER_TOKEN_BEDROCK     A Bedrock API key, instead of signed requests.
  AWS_ACCESS_KEY_ID            Access key (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
  AWS_SECRET_ACCESS_KEY        Secret key.
  AWS_SESSION_TOKEN            Session token of temporary credentials.
  AWS_PROFILE                  The profile in ~/.aws/config and ~/.aws/credentials.
  AWS_REGION                   Region (AWS_DEFAULT_REGION is read too).
  AWS_DEFAULT_REGION           Region, the older name.
  AWS_CONFIG_FILE              Another ~/.aws/config.
  AWS_SHARED_CREDENTIALS_FILE  Another ~/.aws/credentials.
  AWS_WEB_IDENTITY_TOKEN_FILE  A web identity token (with AWS_ROLE_ARN).
  AWS_ENDPOINT_URL_BEDROCK_RUNTIME  Endpoint root for Bedrock Runtime (AWS_ENDPOINT_URL is read too).
  AWS_ENDPOINT_URL             Endpoint root for every AWS service.
  AWS_CA_BUNDLE                CA bundle for Bedrock's TLS connections.
  AWS_EC2_METADATA_DISABLED    true: boto3 never asks the EC2 instance metadata service.

Google Vertex AI and Gemini
  GOOGLE_APPLICATION_CREDENTIALS  A service-account or ADC JSON file.
  CLOUDSDK_CONFIG              gcloud's directory, where its ADC file lives (default ~/.config/gcloud).
  VERTEXAI_PROJECT             The Google Cloud project.
  VERTEXAI_LOCATION            The region (default us-central1).
  GEMINI_API_KEY               Gemini API key.
  GEMINI_API_BASE              Gemini endpoint root (default https://generativelanguage.googleapis.com/v1beta).
  NO_GCE_CHECK                 true: google-auth never asks the GCE metadata server.

Network
  HTTPS_PROXY, HTTP_PROXY      Proxy for https:// and http:// requests (lower case is read too).
  ALL_PROXY                    Proxy for both.
  NO_PROXY                     Hosts reached without the proxy, comma-separated.
  SSL_CERT_FILE                CA bundle for TLS (a provider's own, e.g. AWS_CA_BUNDLE, comes first).
  REQUESTS_CA_BUNDLE           CA bundle, the requests library's name (read by google-auth too).

Terminal
  NO_COLOR                     Any value: no colour on stderr.
  TERM                         dumb: no colour and no progress display.
  COLUMNS                      The width `imggen models` and the progress display fit, when set.
"""

TOPICS = {"environment": ENVIRONMENT}
