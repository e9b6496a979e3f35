"""AWS Bedrock InvokeModel: boto3's credential chain and SigV4 signer, imggen's transport and retries.

boto3 is imported only here, and only when a Bedrock model is used. Each model family has its own
request body and response parser (bedrock_families.py). Edits (SD3.5 Large image-to-image, the Stability
AI Image Services) are JSON bodies with base64 images: built with HttpRequest.inline, so the signed
`content` holds the bytes and --dry-run and -v describe the images.
"""

from __future__ import annotations

import asyncio
import json
import threading
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import AuthError, ConfigError, GenerationError
from ..secrets import cut, remember
from ..settings import Setting
from ..types import SENT_LATER, HttpRequest, ImageRequest
from . import ProviderResult, contract, response_json
from .bedrock_families import build_body, parse_body, shortfall
from .bedrock_spec import SPEC
from .contract import ErrorFields, HttpProvider, Provider

if TYPE_CHECKING:
    import httpx

    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport

FALLBACK_REGION = "us-east-1"
_CREDENTIALS_LOCK = threading.Lock()  # signing runs in worker threads; the chain is resolved by one at a time
SSO_HINT = "If you use AWS SSO, run: aws sso login{profile}."


def complete_settings(settings: Resolved) -> None:
    """Region: flag/profile > AWS_REGION / AWS_DEFAULT_REGION > the AWS profile's region > the catalog."""
    if settings.get("aws_region_name"):
        return
    aws_profile = settings.get("aws_profile_name")
    region = _session(aws_profile).region_name if _session_ok(aws_profile) else None
    if region:
        source = f"aws-config:{aws_profile or 'default'}"
    else:
        info = settings.model.info
        region = info.regions[0] if info and info.regions else FALLBACK_REGION
        source = "catalog" if info and info.regions else "default"
    settings.values["aws_region_name"] = Setting(region, source)


@cache
def _session(profile: str | None) -> Any:
    import boto3

    return boto3.Session(profile_name=profile)


def _session_ok(profile: str | None) -> bool:
    from botocore.exceptions import ProfileNotFound

    try:
        _session(profile)
    except ProfileNotFound as exc:
        raise ConfigError(f"AWS profile '{profile}' is not in your AWS config", hint="Check aws_profile_name.") from exc
    return True


def endpoint(settings: Resolved) -> str:
    base = settings.get("api_base")
    return str(base).rstrip("/") if base else f"https://bedrock-runtime.{settings.get('aws_region_name')}.amazonaws.com"


def _frozen_credentials(settings: Resolved) -> Any:
    """boto3's own chain (env keys, profiles, SSO, roles); refreshed by botocore when they expire."""
    from botocore.exceptions import BotoCoreError

    if settings.get("aws_access_key_id") and settings.get("aws_secret_access_key"):
        from botocore.credentials import Credentials

        keys = (settings.get("aws_access_key_id"), settings.get("aws_secret_access_key"))
        return Credentials(*keys, settings.get("aws_session_token")).get_frozen_credentials()
    profile = settings.get("aws_profile_name")
    _session_ok(profile)
    where = f" --profile {profile}" if profile else ""
    try:
        credentials = _session(profile).get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials else None
    except BotoCoreError as exc:
        raise ConfigError(f"AWS credentials could not be loaded: {exc}", hint=SSO_HINT.format(profile=where)) from exc
    if frozen is None or not frozen.access_key:
        raise ConfigError(
            "no AWS credentials found for Bedrock",
            hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, run aws configure, "
            "or set AWS_BEARER_TOKEN_BEDROCK.",
        )
    return frozen


def sign(http: HttpRequest, settings: Resolved) -> None:
    """Add SigV4 headers for service `bedrock` in the resolved region."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    with _CREDENTIALS_LOCK:
        credentials = _frozen_credentials(settings)
    for secret in (credentials.secret_key, credentials.token):  # from boto3's chain: masked like settings
        if secret:
            remember(secret)
    request = AWSRequest(method=http.method, url=http.url, data=http.content, headers=http.headers)
    SigV4Auth(credentials, "bedrock", str(settings.get("aws_region_name"))).add_auth(request)
    http.headers = dict(request.headers.items())


def _bearer(settings: Resolved, url: str, dry_run: bool) -> dict[str, str]:
    token = settings.get("api_key")
    if not token:
        return {}
    if not url.startswith("https://") and not dry_run:
        raise ConfigError(
            f"Bedrock API keys are sent only over HTTPS, and the endpoint is {url.split('/model/')[0]}",
            hint="Use an https:// api_base, or AWS credentials instead of AWS_BEARER_TOKEN_BEDROCK.",
        )
    return {"Authorization": f"Bearer {token}"}


class BedrockProvider(HttpProvider):
    spill = True

    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        body = build_body(request)
        url = f"{endpoint(settings)}/model/{quote(request.model.model_id, safe='')}/invoke"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(_bearer(settings, url, dry_run))
        if dry_run and "Authorization" not in headers:
            headers["Authorization"] = f"AWS4-HMAC-SHA256 {SENT_LATER}"
        if request.images:  # input images as base64 in the signed bytes, described when shown
            return HttpRequest.inline("POST", url, headers, body)
        content = json.dumps(body, separators=(",", ":")).encode()
        return HttpRequest("POST", url, headers, body, content=content)

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        rid = response.headers.get("x-amzn-requestid")
        images, why = parse_body(request, response_json(response, rid, "Bedrock"), rid)
        return ProviderResult(images, None, rid, shortfall(request, images, why, rid))

    async def authorize(self, http: HttpRequest, settings: Resolved, credentials: Any) -> None:
        if "Authorization" not in http.headers:  # no API key: SigV4 with boto3's credentials
            await asyncio.to_thread(sign, http, settings)

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        """Bedrock's `{"message"}` and x-amzn-ErrorType, with what to do next."""
        kind = (response.headers.get("x-amzn-errortype") or "").split(":")[0]
        try:
            body = response.json()
            body = body if isinstance(body, dict) else {"message": response.text.strip()[:200]}
            message = str(body.get("message") or body.get("Message") or response.text)
            kind = kind or str(body.get("__type", "")).split("#")[-1]
        except ValueError:
            message = cut(response.text.strip(), 200) or response.reason_phrase
        filtered = "content filter" in message.lower() or "blocked by our content" in message.lower()
        return ErrorFields(
            message, kind, response.headers.get("x-amzn-requestid"),
            auth_hint=_auth_hint(kind, settings) if response.status_code in (401, 403) else None,
            filter_hint="Bedrock's content filter refused it; rephrase the prompt." if filtered else None,
            hint="Check the model id and region." if response.status_code == 404 else None,
        )  # fmt: skip

    def complete_settings(self, settings: Resolved) -> None:
        complete_settings(settings)

    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        return [models_request(region, s, True) for region, s in list_regions().items()]

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """`GET /foundation-models?byOutputModality=IMAGE` (ListFoundationModels), SigV4 for service
        `bedrock` -> `{"modelSummaries": [{"modelId", "modelLifecycle": {"status": ACTIVE|LEGACY, "legacyTime",
        "endOfLifeTime", ...}}]}` (ISO 8601 times): botocore 1.44.8 `data/bedrock/2023-04-20/service-2.json`.
        Asked in every region the catalog's models would be sent to."""
        found: dict[str, Listed] = {}
        for region, region_settings in list_regions().items():
            http = models_request(region, region_settings, False)
            if "Authorization" not in http.headers:
                await asyncio.to_thread(sign, http, region_settings)

            def mapped(response: httpx.Response, settings: Resolved = region_settings) -> GenerationError:
                error = contract.error_mapper(self, settings)(response)
                if isinstance(error, AuthError) and error.code == "AccessDeniedException":
                    error.hint = "Check that the IAM policy allows bedrock:ListFoundationModels."
                return error

            response = await transport.send(http, mapped)
            payload = response_json(response, response.headers.get("x-amzn-requestid"), "Bedrock")
            found.update(parse_model_list(payload))
        return found


def control_endpoint(region: str) -> str:
    """The control plane (not bedrock-runtime): boto3's AWS_ENDPOINT_URL_BEDROCK, then AWS_ENDPOINT_URL."""
    import os

    override = os.environ.get("AWS_ENDPOINT_URL_BEDROCK") or os.environ.get("AWS_ENDPOINT_URL")
    return override.rstrip("/") if override else f"https://bedrock.{region}.amazonaws.com"


def list_regions() -> dict[str, Resolved]:
    """One settings per region the catalog's Bedrock models would be sent to (region rules as for
    generation: a region the user set wins, else each model's catalog region)."""
    from ..modelcheck import catalog_models, settings_for

    regions: dict[str, Resolved] = {}
    ids: list[str | None] = [m.model_id for m in catalog_models(SPEC.name)]
    for model_id in ids or [None]:
        settings = settings_for(SPEC.name, model_id)
        regions.setdefault(str(settings.get("aws_region_name")), settings)
    return regions


def models_request(region: str, settings: Resolved, dry_run: bool) -> HttpRequest:
    url = f"{control_endpoint(region)}/foundation-models?byOutputModality=IMAGE"
    headers = {"Accept": "application/json", **_bearer(settings, url, dry_run)}
    if dry_run and "Authorization" not in headers:
        headers["Authorization"] = f"AWS4-HMAC-SHA256 {SENT_LATER}"
    return HttpRequest("GET", url, headers)


def parse_model_list(payload: Any) -> dict[str, Listed]:
    from ..modelcheck import items

    return {
        item["modelId"]: _listed(item["modelId"], item.get("modelLifecycle"))
        for item in items(payload, "modelSummaries")
        if isinstance(item.get("modelId"), str)
    }


def _listed(model_id: str, lifecycle: Any) -> Listed:
    from ..modelcheck import Listed, date_of

    lifecycle = lifecycle if isinstance(lifecycle, dict) else {}
    status = str(lifecycle.get("status") or "listed")
    ends = date_of(lifecycle.get("endOfLifeTime"))
    legacy = date_of(lifecycle.get("legacyTime"))
    words = status + (f", legacy since {legacy}" if legacy and status == "LEGACY" else "")
    words += f", end of life {ends}" if ends else ""
    state = {"ACTIVE": "active", "LEGACY": "legacy"}.get(status)
    return Listed(model_id, words, state, ends)


def _auth_hint(kind: str, settings: Resolved) -> str:
    region = settings.get("aws_region_name")
    profile = settings.get("aws_profile_name")
    used = f"AWS profile '{profile}'" if profile else "the default AWS credential chain"
    if kind == "AccessDeniedException":
        return (
            f"Request access to {settings.model.model_id} in the Bedrock console ({region}) and check that the "
            f"IAM policy allows bedrock:InvokeModel; credentials came from {used}."
        )
    where = f" --profile {profile}" if profile else ""
    return f"The credentials from {used} were rejected or have expired. " + SSO_HINT.format(profile=where)


PROVIDER: Provider = BedrockProvider()
