"""The offline provider: draws a deterministic PNG locally; no network, no key."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from ..types import HttpRequest, ImageData, ImageRequest
from .contract import LOCAL, HttpProvider, Provider, ProviderResult

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

DEFAULT_SIZE = "1024x1024"


def base_seed(request: ImageRequest) -> int:
    """The asked seed, else one derived from the prompt, so a prompt always draws the same images."""
    if request.seed is not None:
        return request.seed
    return int.from_bytes(hashlib.sha256(request.prompt.encode()).digest()[:4], "big") >> 1


class PlaceholderProvider(HttpProvider):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        body: dict[str, object] = {"prompt": request.prompt, "n": request.n, "seed": base_seed(request)}
        if request.images:  # an edit: the first image, changed (as big as it is)
            body.update(image=[image.shown() for image in request.images])
            if request.mask is not None:
                body["mask"] = request.mask.shown()
            return HttpRequest(LOCAL, "placeholder://edit", {}, body)
        body["size"] = request.size or DEFAULT_SIZE
        return HttpRequest(LOCAL, "placeholder://draw", {}, body)

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        raise NotImplementedError("the placeholder provider sends no HTTP request")

    async def answer_locally(self, request: ImageRequest) -> ProviderResult:
        from .placeholder_png import draw_png

        if request.images:
            return self._edit(request)
        size = request.size or DEFAULT_SIZE
        width, height = (int(v) for v in size.split("x"))
        images = []
        for offset in range(request.n):
            index = request.first_index + offset
            # an asked seed is the request's own (plan gives image k seed + k - 1); else from the prompt
            seed = request.seed + offset if request.seed is not None else base_seed(request) + index - 1
            png = draw_png(request.prompt, seed, width, height)
            images.append(ImageData(b64_json=base64.b64encode(png).decode(), seed=seed, size=size, index=index))
        return ProviderResult(images)

    def _edit(self, request: ImageRequest) -> ProviderResult:
        """The first image, visibly changed (placeholder_png.edit_png); a PNG it cannot read is redrawn."""
        from .placeholder_png import draw_png, edit_png

        first = request.images[0]
        data, mask = first.read(), request.mask.read() if request.mask is not None else None
        size = f"{first.width}x{first.height}"
        images = []
        for offset in range(request.n):
            index = request.first_index + offset
            seed = request.seed + offset if request.seed is not None else base_seed(request) + index - 1
            png = edit_png(data, request.prompt, seed, mask)
            png = png or draw_png(request.prompt, seed, first.width, first.height)
            images.append(ImageData(b64_json=base64.b64encode(png).decode(), seed=seed, size=size, index=index))
        return ProviderResult(images)


PROVIDER: Provider = PlaceholderProvider()
