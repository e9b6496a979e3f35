"""`POST /v1/images/variations`, forwarded to OpenAI-compatible servers.

The wire format is OpenAI's `CreateImageVariationRequest` (openai 3.57.0 `resources/images.py`
`create_variation` and `types/image_create_variation_params.py`): multipart/form-data with one file part
`image` and the text fields `model`, `n`, `response_format`, `size`, `user`; the answer is an
ImagesResponse, as for generations. OpenAI's own endpoint took only dall-e-2 and is retired (the same
SDK docstring: "This endpoint is retired and no longer available"; dall-e-2 shut down 2026-05-12,
models.json `lifecycle`), so a deployment on OpenAI's own endpoint is refused before anything is sent.
Servers of the user's that speak OpenAI's format (LocalAI and the like) may still offer it.

The request is built here rather than by the provider, which builds generations and edits only: the
proxy speaks OpenAI's format itself. It is sent through the session's transport with the provider's
own error mapping and answer parsing, so errors, retries and cooldowns are those of every other call.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..catalog import lookup
from ..plan import on_own_endpoint
from ..providers import PROVIDERS, SPECS, get_provider
from ..providers.contract import Pending, error_mapper
from ..types import FilePart, HttpRequest, ImageRequest, ImageResponse, InputImage

if TYPE_CHECKING:
    from ..batch import Session
    from .config import Deployment

# Providers whose deployments may point at an OpenAI-compatible server of the user's: OpenAI's format
# and an api_base that needs no key (their declarations say so; Azure's routes are its own).
COMPATIBLE = tuple(
    spec.name for spec in SPECS if spec.extra_fields == "openai-format" and spec.check and spec.check.keyless_base
)
VARIATION_FIELDS = ("n", "size", "response_format", "user")  # besides `image` and `model`
RETIRED_MODEL = "dall-e-2"  # the only model OpenAI's variations endpoint took


class CannotVary(Exception):
    """Why a deployment cannot make variations (a 400 naming it)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def check(deployment: Deployment) -> None:
    """Raise CannotVary unless the deployment is an OpenAI-compatible server of the user's."""
    settings = deployment.settings
    provider = settings.model.provider
    name = f"'{deployment.group}' ({settings.model.name})"
    if provider not in COMPATIBLE:
        raise CannotVary(
            f"{name} cannot make image variations: only OpenAI-compatible servers (a deployment with an api_base "
            "of your own) offer /images/variations. To vary an image, send it to /v1/images/edits with a prompt.",
            "unsupported_model",
        )
    if _own_endpoint(deployment):
        info = lookup(f"{provider}/{RETIRED_MODEL}")
        when = f" ({info.status_words()})" if info is not None else ""
        raise CannotVary(
            f"{name} is on OpenAI's own endpoint, whose /images/variations is retired: it took only "
            f"{RETIRED_MODEL}{when}. To vary an image, send it to /v1/images/edits with a GPT image model and "
            "a prompt.",
            "model_retired",
        )


def _own_endpoint(deployment: Deployment) -> bool:
    settings = deployment.settings
    if on_own_endpoint(settings):
        return True
    hosts = PROVIDERS[settings.model.provider].api_hosts  # an api_base naming the provider's own host
    try:
        host = urlsplit(str(settings.get("api_base") or "")).hostname or ""
    except ValueError:
        return False
    return bool(hosts and re.search(hosts, host.lower()))


def build(deployment: Deployment, image: InputImage, filename: str, fields: dict[str, str]) -> HttpRequest:
    """The multipart request to `{api_base}/images/variations`: the image as it was uploaded (its
    file name and type), `model` the deployment's model id, and the client's other fields as text."""
    settings = deployment.settings
    key = settings.get("api_key")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    form = {"model": settings.model.model_id, **{k: fields[k] for k in VARIATION_FIELDS if k in fields}}
    url = str(settings.get("api_base")).rstrip("/") + "/images/variations"
    return HttpRequest.multipart("POST", url, headers, form, [("image", FilePart(filename, image.read(), image.mime))])


async def send(
    deployment: Deployment, image: InputImage, filename: str, fields: dict[str, str], session: Session
) -> ImageResponse:
    """One upstream call; its failures are the provider's errors (GenerationError), as for generations."""
    check(deployment)
    settings = deployment.settings
    provider_name = settings.model.provider
    provider = get_provider(provider_name)
    transport = session.transport(PROVIDERS[provider_name].ca_env, float(settings.get("timeout", 600)))
    http = build(deployment, image, filename, fields)
    response = await transport.send(http, error_mapper(provider, settings), spill=provider.spill)
    n = int(fields["n"]) if fields.get("n", "").isdigit() else 1
    size, response_format = fields.get("size"), fields.get("response_format")
    request = ImageRequest("", settings.model, n=n, size=size, response_format=response_format)
    result = provider.parse_response(request, response)
    assert not isinstance(result, Pending)  # OpenAI's format answers at once
    answer = ImageResponse(created=int(time.time()), data=result.images, model=settings.model.name, prompt="")
    answer.upstream = dict(result.fields)
    if result.usage:
        answer.usage.add(result.usage)
    answer.errors.extend(result.errors)
    return answer
