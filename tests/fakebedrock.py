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


def family(model_id: str) -> str:
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
    extra = sorted(set(body) - TOP_KEYS[kind])
    if extra:
        return aws_error(reply, 400, "ValidationException",
                         f"Malformed input request: extraneous key [{extra[0]}] is not permitted, please reformat "
                         "your input and try again.")  # fmt: skip
    return reply(json=_answer(fake, kind, body), headers={"x-amzn-RequestId": f"aws-{fake.next_id()}"})


def _answer(fake: FakeProvider, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    b64 = base64.b64encode(fake.image_bytes).decode()
    if kind == "sdxl":
        return {
            "result": "success",
            "artifacts": [{"seed": body.get("seed", 4242), "base64": b64, "finishReason": "SUCCESS"}],
        }
    if kind == "sd3":
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
