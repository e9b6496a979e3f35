"""Stability AI's platform API (`https://api.stability.ai/v2beta/stable-image/...`): multipart forms,
the image itself in the answer.

Wire facts, and where they come from (each is also cited where it is used):
- Stability's API reference, https://platform.stability.ai/docs/api-reference (a client-rendered app;
  its OpenAPI document is https://api.stability.ai/v2alpha/openapi): `POST /v2beta/stable-image/
  generate/{ultra,core,sd3}`, `edit/{inpaint,erase,outpaint,search-and-replace,search-and-recolor,
  remove-background,replace-background-and-relight}`, `control/{sketch,structure,style}`; body
  `multipart/form-data` (10 MiB at most); `authorization: Bearer sk-...`; `accept: image/*` answers
  the image bytes (`content-type: image/png|jpeg|webp`) with headers `finish-reason` (SUCCESS or
  CONTENT_FILTERED: the image is then blurred) and `seed`; `accept: application/json` answers
  `{image, finish_reason, seed}`. Errors: `{"id", "name", "errors": [...]}` (400 bad_request, 403
  content_moderation, 413 payload too large, 422, 429 rate limit: 150 requests in 10 s, 500).
  Asynchronous services answer `{"id"}` and are collected at `GET /v2beta/results/{id}`: 202 while
  running, 200 with the result, 404 once it expired (results are kept 24 hours).
- LiteLLM 1.110.2 `litellm/llms/stability/image_generation/transformation.py`, `image_edit/
  transformations.py`, `types/llms/stability.py` (the model ids `stability/<id>`, the endpoint per
  id, the form fields of each service, STABILITY_API_KEY / STABILITY_API_BASE).
- A client checked against the live API and its OpenAPI document on 2026-07-25 (kaibo's
  `stability.rs`, as found by the code search): `accept: image/*` -> raw bytes and the
  `finish-reason`/`seed` headers, every error `{id, name, errors}` (an empty POST: 400
  `{"errors":["content-type: required"],"name":"bad_request"}`), polls 202 `{id, status}` / 200 bytes /
  404 expired.
- Stability's own Python examples send `files={"none": ""}` to force multipart for a text-only request:
  imggen encodes the form itself instead (`_multipart`), so a text-only request is multipart too.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import BadResponseError, ContentFilterError, UsageError
from ..types import FilePart, HttpRequest, ImageData, ImageRequest
from .contract import ErrorFields, HttpProvider, Pending, Provider, ProviderResult, error_body
from .stability_spec import SPEC

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

KEY_HINT = SPEC.key_hint
POLL_WAIT = 2.0  # seconds between polls of an asynchronous job (Stability's examples poll every 10 s)
SD3_STRENGTH = 0.7  # image-to-image needs `strength`; imggen sends this unless -p strength=0..1 is given
FILTERED_HINT = "Stability's content moderation flagged it (the image would be blurred); rephrase the prompt."


@dataclass(frozen=True)
class Service:
    """One endpoint and the form fields it takes (any other is refused here, as Stability refuses it:
    400 with "unknown field")."""

    path: str  # after /v2beta/stable-image/
    fields: frozenset[str]  # every form field it takes, files included
    prompt: str | None = "prompt"  # the field the prompt goes to (None: the service takes none)
    needs_prompt: bool = True
    images: tuple[str, ...] = ("image",)  # the file fields the input images fill, in order
    min_images: int = 1
    text_mask: str | None = None  # the field --mask-prompt fills (required)
    one_of: tuple[str, ...] = ()  # at least one of these must be given
    model: str | None = None  # the `model` field (generate/sd3)
    asynchronous: bool = False  # answers {"id"}: polled at /v2beta/results/{id}


_GENERATE = frozenset({"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"})
_EDIT = frozenset({"image", "prompt", "negative_prompt", "seed", "output_format"})
# `generate/sd3`: `model` picks the SD3.5 model; image-to-image is `mode=image-to-image` with `image` and
# `strength` (then no aspect_ratio); sd3.5-large-turbo takes no negative_prompt (stability-ai npm 0.7.0
# v2beta/stable-image/generate.d.ts: the turbo model has no negativePrompt); `cfg_scale` per the API reference.
_SD3 = _GENERATE | {"model", "mode", "image", "strength", "cfg_scale"}
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")

SERVICES: dict[str, Service] = {
    # Ultra takes an input image with `strength` (image-to-image, no `mode` field); Core takes none and
    # has `style_preset` (API reference; Comfy's and Locus's published Stability schemas agree).
    "stable-image-ultra": Service("generate/ultra", _GENERATE | {"image", "strength"}, min_images=0),
    "stable-image-core": Service("generate/core", _GENERATE | {"style_preset"}, images=(), min_images=0),
    **{model: Service("generate/sd3", _SD3 - ({"negative_prompt"} if "turbo" in model else set()), min_images=0,
                      model=model) for model in SD3_MODELS},
    # Edits: the same services Bedrock offers as us.stability.* (bedrock_families.SERVICES), with the
    # platform's paths and LiteLLM's ids for them.
    "inpaint": Service("edit/inpaint", _EDIT | {"mask", "grow_mask", "style_preset"}),
    "erase": Service("edit/erase", frozenset({"image", "mask", "grow_mask", "seed", "output_format"}), prompt=None),
    "outpaint": Service("edit/outpaint", frozenset({"image", "prompt", "left", "right", "up", "down", "creativity",
                                                    "seed", "output_format", "style_preset"}),
                        needs_prompt=False, one_of=("left", "right", "up", "down")),
    "search-and-replace": Service("edit/search-and-replace", _EDIT | {"search_prompt", "grow_mask", "style_preset"},
                                  text_mask="search_prompt"),
    "search-and-recolor": Service("edit/search-and-recolor", _EDIT | {"select_prompt", "grow_mask", "style_preset"},
                                  text_mask="select_prompt"),
    "remove-background": Service("edit/remove-background", frozenset({"image", "output_format"}), prompt=None),
    # The subject image, and optionally a background reference image; the prompt is background_prompt
    # (one of the two is required). Asynchronous.
    "replace-background-and-relight": Service(
        "edit/replace-background-and-relight",
        frozenset({"subject_image", "background_reference", "background_prompt", "foreground_prompt",
                   "negative_prompt", "preserve_original_subject", "original_background_depth",
                   "keep_original_background", "light_source_direction", "light_source_strength", "seed",
                   "output_format"}),
        prompt="background_prompt", needs_prompt=False, images=("subject_image", "background_reference"),
        one_of=("background_prompt", "background_reference"), asynchronous=True,
    ),
    "sketch": Service("control/sketch", _EDIT | {"control_strength", "style_preset"}),
    "structure": Service("control/structure", _EDIT | {"control_strength", "style_preset"}),
    "style": Service("control/style", _EDIT | {"aspect_ratio", "fidelity", "style_preset"}),
}  # fmt: skip


def service_of(request: ImageRequest) -> Service:
    """The endpoint a model id names: a catalogued id, or any `sd3*` id as a `generate/sd3` model."""
    model_id = request.model.model_id
    service = SERVICES.get(model_id)
    if service is None and model_id.startswith("sd3"):
        service = Service("generate/sd3", _SD3, min_images=0, model=model_id)
    if service is None:
        raise UsageError(f"{request.model.name} is not a Stability AI service imggen knows",
                         hint="Known: " + ", ".join(f"stability/{name}" for name in SERVICES) + ".")  # fmt: skip
    return service


def form_fields(request: ImageRequest, service: Service) -> tuple[dict[str, str], list[tuple[str, FilePart]]]:
    """The text fields and files of one request: the prompt where the service takes it, the input images
    where it takes them, the mask as the white-on-black image Stability reads, --mask-prompt as its text
    mask, the seed, negative prompt and aspect ratio, and -p values it knows (any other is refused)."""
    name = request.model.name
    if not service.min_images <= len(request.images) <= len(service.images):
        wanted = " and ".join(service.images) if service.images else "no input image"
        raise UsageError(f"{name} takes {wanted}; {len(request.images)} image(s) given")
    form: dict[str, Any] = {}
    if service.model:
        form["model"] = service.model
    if service.prompt and request.prompt:
        form[service.prompt] = request.prompt
    files = [(field, image.part()) for field, image in zip(service.images, request.images, strict=False)]
    if request.images and service.path.startswith("generate/"):
        if service.model:
            form["mode"] = "image-to-image"
        form["strength"] = SD3_STRENGTH
    elif request.aspect_ratio and "aspect_ratio" in service.fields:
        form["aspect_ratio"] = request.aspect_ratio
    if request.mask is not None:
        from .bedrock_families import service_mask

        files.append(("mask", service_mask(request.mask).part()))
    if service.text_mask and request.mask_prompt:
        form[service.text_mask] = request.mask_prompt
    if request.seed is not None and "seed" in service.fields:
        form["seed"] = request.seed
    if request.negative_prompt and "negative_prompt" in service.fields:
        form["negative_prompt"] = request.negative_prompt
    if request.style and "style_preset" in service.fields:
        form["style_preset"] = request.style
    files_named = set(service.images) | {"mask"}
    unknown = sorted(set(request.params) - (service.fields - files_named))
    if unknown:
        known = ", ".join(sorted(service.fields - files_named - {"prompt", "model", "mode"}))
        raise UsageError(f"-p {unknown[0]} is not a {name} parameter", hint=f"Known: {known}.")
    form.update(request.params)
    _check_required(name, service, form, files, request)
    return {key: _text(value) for key, value in form.items() if value is not None}, files


def _check_required(name: str, service: Service, form: dict[str, Any], files: list[tuple[str, FilePart]],
                    request: ImageRequest) -> None:  # fmt: skip
    if service.needs_prompt and service.prompt and not form.get(service.prompt):
        raise UsageError(f"{name} needs a prompt")
    if service.text_mask and not form.get(service.text_mask):
        raise UsageError(f"{name} needs --mask-prompt: what in the image to change",
                         hint=f"e.g. --mask-prompt \"the sweater\" (sent as {service.text_mask}).")  # fmt: skip
    given = set(form) | {field for field, _ in files}
    if service.one_of and not any(form.get(key) or key in given - set(form) for key in service.one_of):
        if service.prompt in service.one_of:
            raise UsageError(f"{name} needs a prompt (the new background) or a second image (a background "
                             "reference)")  # fmt: skip
        raise UsageError(
            f"{name} needs how far to extend the image",
            hint="Give one or more of -p left=N, -p right=N, -p up=N, -p down=N (pixels, up to 2000).",
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _multipart(form: dict[str, str], files: list[tuple[str, FilePart]]) -> tuple[str, bytes]:
    """`multipart/form-data` bytes (RFC 7578) with a boundary derived from the content, so a request's
    bytes (and what --dry-run shows of its headers) are the same each time it is built."""
    digest = hashlib.sha256()
    for key, value in form.items():
        digest.update(f"{key}={value}\0".encode())
    for key, part in files:
        digest.update(f"{key}:{part.filename}:".encode())
        digest.update(hashlib.sha256(part.content).digest())
    boundary = f"imggen-{digest.hexdigest()[:32]}"
    chunks: list[bytes] = []
    for key, value in form.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode())
        chunks.append(value.encode() + b"\r\n")
    for key, part in files:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{part.filename}"\r\n'
                      f"Content-Type: {part.content_type}\r\n\r\n".encode())  # fmt: skip
        chunks.append(part.content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return boundary, b"".join(chunks)


def _base(settings: Resolved) -> str:
    return str(settings.get("api_base") or SPEC.defaults["api_base"]).rstrip("/")


def _auth(settings: Resolved, dry_run: bool) -> dict[str, str]:
    key = settings.get("api_key") if dry_run else settings.require("api_key", "the Stability AI API key", KEY_HINT)
    return {"authorization": f"Bearer {key}"} if key else {}


def results_request(base: str, job_id: str, headers: dict[str, str] | None = None) -> HttpRequest:
    """`GET /v2beta/results/{id}` with `accept: image/*`: 202 while the job runs, 200 with the image."""
    return HttpRequest("GET", f"{base}/v2beta/results/{job_id}", {"accept": "image/*", **(headers or {})})


class StabilityProvider(HttpProvider):
    image_bodies = True

    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """`POST {api_base}/v2beta/stable-image/{service}`, multipart, `accept: image/*` (module docstring)."""
        service = service_of(request)
        form, files = form_fields(request, service)
        boundary, content = _multipart(form, files)
        url = f"{_base(settings)}/v2beta/stable-image/{service.path}"
        headers = {
            **_auth(settings, dry_run),
            "accept": "image/*",
            "content-type": f"multipart/form-data; boundary={boundary}",
        }
        shown = HttpRequest.multipart("POST", url, headers, form, files).json
        return HttpRequest("POST", url, headers, shown, content=content)

    async def authorize(self, http: HttpRequest, settings: Resolved, credentials: Any) -> None:
        """A poll (`GET /v2beta/results/{id}`) carries the same key as the request that started the job."""
        if not any(key.lower() == "authorization" for key in http.headers):
            http.headers.update(_auth(settings, False))

    def parse_image(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        """The image bytes, with the `seed` and `finish-reason` headers: CONTENT_FILTERED (a blurred
        image) is a content-filter error, not an image."""
        reason = (response.headers.get("finish-reason") or "SUCCESS").strip().upper()
        rid = response.headers.get("x-request-id")
        if reason == "CONTENT_FILTERED":
            raise ContentFilterError(
                "200 CONTENT_FILTERED: Stability returned a blurred image", hint=FILTERED_HINT, status=200,
                code="CONTENT_FILTERED", request_id=rid,
            )  # fmt: skip
        if reason != "SUCCESS":
            raise BadResponseError(f"Stability's answer has finish-reason {reason}", request_id=rid)
        if not response.content:
            raise BadResponseError("Stability's answer is an empty image", request_id=rid)
        b64 = base64.b64encode(response.content).decode("ascii")
        return ProviderResult([self._image(request, b64, response.headers.get("seed"), rid)], request_id=rid)

    @staticmethod
    def _image(request: ImageRequest, b64: str, seed: Any, rid: str | None) -> ImageData:
        try:
            number = int(seed) if seed is not None else request.seed
        except (TypeError, ValueError):
            number = request.seed
        return ImageData(b64_json=b64, seed=number, size=request.size or request.aspect_ratio,
                         index=request.first_index, request_id=rid)  # fmt: skip

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult | Pending:
        """A 2xx that is not an image: an asynchronous job's `{"id"}` (polled at /v2beta/results/{id}), or
        `{image, finish_reason, seed}` (what `accept: application/json` answers)."""
        from ..transport import is_image

        if is_image(response):
            return self.parse_image(request, response)
        from . import response_json, shape_guard

        rid = response.headers.get("x-request-id")
        payload = response_json(response, rid, "Stability AI")
        if not isinstance(payload, dict):
            raise BadResponseError("Stability's answer is not a JSON object", request_id=rid)
        with shape_guard("Stability AI", rid):
            if payload.get("image"):
                reason = str(payload.get("finish_reason") or "SUCCESS").upper()
                if reason == "CONTENT_FILTERED":
                    raise ContentFilterError("200 CONTENT_FILTERED: Stability returned a blurred image",
                                             hint=FILTERED_HINT, status=200, code=reason, request_id=rid)  # fmt: skip
                image = self._image(request, str(payload["image"]), payload.get("seed"), rid)
                return ProviderResult([image], request_id=rid)
            job_id = payload.get("id")
            if isinstance(job_id, str) and job_id and response.status_code in (200, 202):
                return self._pending(_origin(response), job_id)
        raise BadResponseError("Stability's answer has neither an image nor a job id", request_id=rid)

    @staticmethod
    def _pending(base: str, job_id: str, headers: dict[str, str] | None = None) -> Pending:
        return Pending(results_request(base, job_id, headers), wait=POLL_WAIT, state=base, job_id=job_id,
                       status="running")  # fmt: skip

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        """202 `{id, status: "in-progress"}` while running (the image itself is handled as parse_image)."""
        if response.status_code == 202:
            return Pending(job.request, wait=job.wait, state=job.state, job_id=job.job_id, status="running")
        return self.parse_response(request, response)

    def resume_job(self, request: ImageRequest, job_id: str, settings: Resolved) -> Pending | None:
        """Stability keeps a job's result 24 hours: collect it instead of paying for another."""
        return self._pending(_base(settings), job_id, _auth(settings, False))

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        """`{"id", "name", "errors": [...]}`: the messages, the name as the code, the id as the request id."""
        name, rid, message = None, None, ""
        body, fallback = error_body(response)
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list):
                message = "; ".join(str(e) for e in errors[:5])
            message = message or str(body.get("message") or "")
            name = body.get("name") if isinstance(body.get("name"), str) else None
            rid = body.get("id") if isinstance(body.get("id"), str) else None
        message = message or fallback
        status = response.status_code
        moderated = name == "content_moderation" or (status == 403 and "moderation" in message.lower())
        return ErrorFields(
            message, name, rid,
            auth_hint=KEY_HINT if status == 401 else None,
            filter_hint=FILTERED_HINT if moderated else None,
            hint=_hint(status),
        )  # fmt: skip


def _hint(status: int) -> str | None:
    return {
        402: "The account is out of credits: buy more at https://platform.stability.ai/account/credits.",
        404: "A job's result is kept 24 hours; or the model id names no Stability service.",
        413: "Stability takes requests up to 10 MiB: send smaller input images.",
        429: "Stability allows 150 requests in 10 seconds: lower -j.",
    }.get(status)


def _origin(response: httpx.Response) -> str:
    """The api_base a response came from (its request's URL up to /v2beta/), for the poll URL."""
    url = str(response.request.url)
    parts = urlsplit(url)
    prefix = parts.path.split("/v2beta/", 1)[0]
    return f"{parts.scheme}://{parts.netloc}{prefix}"


PROVIDER: Provider = StabilityProvider()
