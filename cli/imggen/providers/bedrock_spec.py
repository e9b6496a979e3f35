"""The AWS Bedrock provider's declaration (its implementation: bedrock.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .spec import ModelCheckSpec, ProviderSpec, SettingSpec


def aws_source(found: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """botocore's chain without its network providers (the container endpoint, the instance metadata
    service): env keys, the shared credentials and config files, SSO and role profiles, credential_process."""
    if found.get("aws_access_key_id") and found.get("aws_secret_access_key"):
        return "aws_access_key_id"
    aws_profile = found.get("aws_profile_name") or env.get("AWS_PROFILE") or None
    files = [
        env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
        env.get("AWS_CONFIG_FILE") or "~/.aws/config",
    ]
    if not (env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE")) and not any(
        Path(f).expanduser().is_file() for f in files
    ):
        return None  # nothing for boto3 to find: spare importing it
    import botocore.credentials
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=aws_profile)
        resolver = botocore.credentials.create_credential_resolver(session)
        for network in ("container-role", "iam-role"):
            resolver.remove(network)
        credentials = resolver.load_credentials()
    except (botocore.exceptions.BotoCoreError, OSError, ValueError):
        return None
    return f"aws:{getattr(credentials, 'method', 'found')}" if credentials is not None else None


# What `imggen models check` says of it (the listing: list_models in bedrock.py).
CHECK = ModelCheckSpec(
    "Bedrock",
    "Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run aws configure.",
    profile_prefixes=("us.", "eu.", "apac.", "global."),  # geographic inference profiles
)

SPEC = ProviderSpec(
    "bedrock",
    "AWS Bedrock",
    "imggen.providers.bedrock",
    order=30,
    settings=(
        SettingSpec("api_key", ("AWS_BEARER_TOKEN_BEDROCK",), secret=True),
        SettingSpec(
            "api_base",
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL"),
            proxy_aliases=("aws_bedrock_runtime_endpoint",),
        ),
        SettingSpec("aws_region_name", ("AWS_REGION", "AWS_DEFAULT_REGION"), param=True),
        SettingSpec("aws_profile_name", ("AWS_PROFILE",), param=True, identity=True),
        # Explicit keys (a profile's or the proxy config's); the environment's go through boto3's chain.
        SettingSpec("aws_access_key_id", header=True, profile=False, param=True, identity=True),
        SettingSpec("aws_secret_access_key", secret=True, profile=False, param=True),
        SettingSpec("aws_session_token", secret=True, profile=False, param=True),
    ),
    credential_env=("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_WEB_IDENTITY_TOKEN_FILE"),
    credential_files=(".aws/credentials", ".aws/config"),
    chain_env=("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE"),
    credential_chain=aws_source,
    ca_env=("AWS_CA_BUNDLE",),
    secret_headers=("authorization", "x-amz-security-token"),
    fields=("n", "size", "quality", "style", "seed", "negative_prompt"),
    bare_ids=r"^((us|eu|apac|global)\.)?(amazon|stability)\.",
    api_hosts=r"^bedrock-runtime(-fips)?\.[a-z0-9-]+\.amazonaws\.com$",
    extra_fields="provider-params",
    check=CHECK,
    tasks=("generate", "edit"),
    environment_note="boto3's own variables and files work as they do for the aws CLI",
    environment=(
        ("AWS_BEARER_TOKEN_BEDROCK", "A Bedrock API key, instead of signed requests."),
        ("AWS_ACCESS_KEY_ID", "Access key (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)."),
        ("AWS_SECRET_ACCESS_KEY", "Secret key."),
        ("AWS_SESSION_TOKEN", "Session token of temporary credentials."),
        ("AWS_PROFILE", "The profile in ~/.aws/config and ~/.aws/credentials."),
        ("AWS_REGION", "Region (AWS_DEFAULT_REGION is read too)."),
        ("AWS_DEFAULT_REGION", "Region, the older name."),
        ("AWS_CONFIG_FILE", "Another ~/.aws/config."),
        ("AWS_SHARED_CREDENTIALS_FILE", "Another ~/.aws/credentials."),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "A web identity token (with AWS_ROLE_ARN)."),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "Endpoint root for Bedrock Runtime (AWS_ENDPOINT_URL is read too)."),
        ("AWS_ENDPOINT_URL_BEDROCK", "Endpoint root for the Bedrock control plane (imggen models check)."),
        ("AWS_ENDPOINT_URL", "Endpoint root for every AWS service."),
        ("AWS_CA_BUNDLE", "CA bundle for Bedrock's TLS connections."),
        ("AWS_EC2_METADATA_DISABLED", "true: boto3 never asks the EC2 instance metadata service."),
    ),
    # AWS's table of batch inference models lists text and embedding models (Nova Lite/Micro/Pro/Premier,
    # Claude, Llama, Titan embeddings ...), no Nova Canvas, Titan Image Generator or Stability model.
    batch_note=(
        "Bedrock runs no image model as a batch inference job (AWS: docs.aws.amazon.com/bedrock/latest/"
        "userguide/batch-inference-supported.html)"
    ),
)
