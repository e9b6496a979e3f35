"""The Bedrock half of the fake provider: SigV4 checked for real with botocore, each family's body
shape checked, each family's real response shape returned."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from fakeserver import FakeProvider, Recorded, Reply

AWS_KEY_ID = "AKIDIMGGENTEST000001"
AWS_SECRET = "imggen-test-secret-key-0123456789abcdefXYZ"
BEDROCK_TOKEN = "bedrock-api-key-test-ABCDEFGH12345678"
SCOPE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")  # fmt: skip
TOP_KEYS = {
    "sdxl": {"text_prompts", "height", "width", "cfg_scale", "clip_guidance_preset", "sampler", "samples", "seed",
             "steps", "style_preset", "extras"},
    "sd3": {"prompt", "aspect_ratio", "mode", "output_format", "seed", "negative_prompt", "image", "strength"},
    "titan": {"taskType", "textToImageParams", "imageGenerationConfig"},
}  # fmt: skip
TOP_KEYS["nova"] = TOP_KEYS["titan"] | {"colorGuidedGenerationParams"}
# The Stability AI Image Services: every key each takes, and those it requires (AWS's
# stable-image-services.html and aws-samples/stabilityai-sample-notebooks); images are base64 PNG, JPEG
# or WebP. Any other key is refused as Bedrock refuses it.
_COMMON = {"image", "prompt", "negative_prompt", "seed", "output_format"}
SERVICES: dict[str, tuple[set[str], set[str]]] = {
    "stable-image-inpaint": (_COMMON | {"mask", "grow_mask", "style_preset"}, {"image", "prompt"}),
    "stable-image-erase-object": ({"image", "mask", "grow_mask", "seed", "output_format"}, {"image"}),
    "stable-image-search-replace": (_COMMON | {"search_prompt", "grow_mask", "style_preset"},
                                    {"image", "prompt", "search_prompt"}),
    "stable-image-search-recolor": (_COMMON | {"select_prompt", "grow_mask", "style_preset"},
                                    {"image", "prompt", "select_prompt"}),
    "stable-image-remove-background": ({"image", "output_format"}, {"image"}),
    "stable-outpaint": ({"image", "prompt", "left", "right", "up", "down", "creativity", "seed", "output_format",
                         "style_preset"}, {"image"}),
    "stable-image-control-sketch": (_COMMON | {"control_strength", "style_preset"}, {"image", "prompt"}),
    "stable-image-control-structure": (_COMMON | {"control_strength", "style_preset"}, {"image", "prompt"}),
    "stable-image-style-guide": (_COMMON | {"aspect_ratio", "fidelity", "style_preset"}, {"image", "prompt"}),
    "stable-style-transfer": ({"init_image", "style_image", "prompt", "negative_prompt", "style_strength",
                               "composition_fidelity", "change_strength", "seed", "output_format"},
                              {"init_image", "style_image"}),
    "stable-creative-upscale": (_COMMON | {"creativity", "style_preset"}, {"image", "prompt"}),
    "stable-conservative-upscale": (_COMMON | {"creativity"}, {"image", "prompt"}),
    "stable-fast-upscale": ({"image", "output_format"}, {"image"}),
}  # fmt: skip
IMAGE_KEYS = {"image", "mask", "init_image", "style_image"}
SERVICE_ID = re.compile(r"(?:^|\.)stability\.([a-z0-9-]+?)-v\d+(?::\d+)?$")


def family(model_id: str) -> str:
    match = SERVICE_ID.search(model_id)
    if match and match.group(1) in SERVICES:
        return "service:" + match.group(1)
    if "nova-canvas" in model_id:
        return "nova"
    if "titan-image" in model_id:
        return "titan"
    if "sd3" in model_id or "stable-image" in model_id:
        return "sd3"
    return "sdxl"


def aws_error(reply: type[Reply], status: int, kind: str, message: str) -> Reply:
    return reply(status=status, json={"message": message}, headers={"x-amzn-ErrorType": f"{kind}:http://internal"})


def check_auth(fake: FakeProvider, req: Recorded, host: str) -> str | None:
    """None when the request is signed right (or carries the API key), else why not."""
    auth = req.headers.get("authorization", "")
    if auth == f"Bearer {BEDROCK_TOKEN}":
        return None
    match = SCOPE.match(auth)
    if not match:
        return "missing or malformed Authorization"
    key_id, _date, region, service, signed, signature = match.groups()
    fake.signed_regions.append(region)
    if key_id != AWS_KEY_ID or service != "bedrock":
        return f"credential scope {key_id}/{service} is wrong"
    if fake.expect_region and region != fake.expect_region:
        return f"signed for {region}, expected {fake.expect_region}"
    return None if _signature(req, host, region, signed) == signature else "signature does not match"


def _signature(req: Recorded, host: str, region: str, signed: str) -> str:
    headers = {name: req.headers[name] for name in signed.split(";") if name in req.headers}
    headers["host"] = host
    url = f"http://{host}{req.raw_path}"
    request = AWSRequest(method=req.method, url=url, data=req.body, headers=headers)
    request.context["timestamp"] = req.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(AWS_KEY_ID, AWS_SECRET, req.headers.get("x-amz-security-token")), "bedrock", region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def invoke(fake: FakeProvider, req: Recorded, reply: type[Reply], host: str) -> Reply:
    problem = check_auth(fake, req, host)
    if problem:
        return aws_error(
            reply,
            403,
            "UnrecognizedClientException",
            f"The security token included in the request is invalid ({problem}).",
        )
    model_id = unquote(req.path.split("/")[2])
    kind = family(model_id)
    body = req.json if isinstance(req.json, dict) else {}
    allowed, required = SERVICES[kind[8:]] if kind.startswith("service:") else (TOP_KEYS[kind], set())
    extra = sorted(set(body) - allowed)
    if extra:
        return aws_error(reply, 400, "ValidationException",
                         f"Malformed input request: extraneous key [{extra[0]}] is not permitted, please reformat "
                         "your input and try again.")  # fmt: skip
    problem = _edit_problem(kind, body, required)
    if problem:
        return aws_error(reply, 400, "ValidationException", f"Malformed input request: {problem}")
    return reply(json=_answer(fake, kind, body), headers={"x-amzn-RequestId": f"aws-{fake.next_id()}"})


def _edit_problem(kind: str, body: dict[str, Any], required: set[str]) -> str | None:
    """Why an image service or SD3 image-to-image body is wrong (required keys, images that are not
    base64 PNG/JPEG/WebP, SD3's mode rules), else None."""
    missing = sorted(required - {k for k, v in body.items() if v not in (None, "")})
    if missing:
        return f"#: required key [{missing[0]}] not found"
    for key in IMAGE_KEYS & set(body):
        if not _is_image(body[key]):
            return f"#/{key}: the value is not a base64 PNG, JPEG or WebP image"
    if kind == "service:stable-outpaint" and not any(body.get(k) for k in ("left", "right", "up", "down")):
        return "#: at least one of left, right, up, down is required"
    if kind == "sd3" and body.get("mode") == "image-to-image":
        if "image" not in body or "strength" not in body:
            return "#: image-to-image requires image and strength"
        if "aspect_ratio" in body:
            return "#/aspect_ratio: only valid for text-to-image"
        if not 0 <= float(body["strength"]) <= 1:
            return "#/strength: must be between 0 and 1"
    elif kind == "sd3" and ("image" in body or "strength" in body):
        return "#: image and strength are only valid for image-to-image"
    return None


def _is_image(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        data = base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _answer(fake: FakeProvider, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    b64 = base64.b64encode(fake.image_bytes).decode()
    if kind == "sdxl":
        return {
            "result": "success",
            "artifacts": [{"seed": body.get("seed", 4242), "base64": b64, "finishReason": "SUCCESS"}],
        }
    if kind == "sd3" or kind.startswith("service:"):
        return {"seeds": [body.get("seed", 1234)], "finish_reasons": [None], "images": [b64]}
    count = int(body.get("imageGenerationConfig", {}).get("numberOfImages", 1))
    return {"images": [b64] * count, "error": None}


def foundation_models(fake: FakeProvider, req: Recorded, reply: type[Reply], host: str) -> Reply:
    """ListFoundationModels (`GET /foundation-models?byOutputModality=`), signed for service bedrock."""
    problem = check_auth(fake, req, host)
    if problem:
        return aws_error(reply, 403, "UnrecognizedClientException",
                         f"The security token included in the request is invalid ({problem}).")  # fmt: skip
    wanted = req.query.get("byOutputModality")
    models = [m for m in fake.bedrock_models if wanted is None or wanted in m.get("outputModalities", [])]
    return reply(json={"modelSummaries": models}, headers={"x-amzn-RequestId": f"aws-{fake.next_id()}"})
