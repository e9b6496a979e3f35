"""`imggen batch` at scale, against a local fake of OpenAI's Files and Batches APIs (issue 16, item 9).

    python tests/bench/batch.py                          # 100,000 requests submitted, a 2 GB result collected
    python tests/bench/batch.py --requests 10000 --gb 0.2   # a quicker look

Figures: the whole `imggen batch submit` process (100,000 prompts validated, spooled, uploaded) and the
whole `imggen batch collect` process (a ~2 GB output file streamed down, every image decoded and saved),
each with its peak RSS (target <= 150 MiB) and its time per 1,000 images. The fake writes the upload
to disk as it streams in, and generates the output file line by line as it serves it: neither side of
the fake holds a file. A script, not a test: timings on a shared machine are for reading.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import PNG_HEAD, Fake, _serve, measure, ran_ok, refuse, require_imggen, saved

KEY = "sk-bench-batch"
MODEL = "openai/gpt-image-1"
TARGET_MIB = 150


class BatchFake(Fake):  # bench.Fake's base and stop; its own server
    """`POST /v1/files` (streamed to a file in `folder`), `POST /v1/batches`, `GET /v1/batches/{id}`
    (completed at the first look) and `GET /v1/files/{id}/content` (the output file, generated as it is
    sent: one line per uploaded request, each an image of `image_bytes`)."""

    def __init__(self, folder: Path, image_bytes: int) -> None:  # not Fake.__init__: another server
        self.folder = folder
        self.b64 = base64.b64encode(PNG_HEAD + random.Random(3).randbytes(max(0, image_bytes - 8))).decode()
        self.uploads: dict[str, list[str]] = {}  # file id -> the custom_ids it holds (kept for the output)
        self.batches: dict[str, str] = {}  # batch id -> input file id
        self.served = 0  # bytes of output sent
        self.lock = threading.Lock()
        self.server = _serve(self, _Handler)

    def line(self, custom_id: str, number: int) -> bytes:
        body = f'{{"created":0,"data":[{{"b64_json":"{self.b64}"}}]}}'
        return (f'{{"id":"batch_req_{number}","custom_id":"{custom_id}","response":{{"status_code":200,'
                f'"request_id":"req_{number}","body":{body}}},"error":null}}\n').encode()  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    fake: BatchFake
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunks(self) -> object:
        """The request body, chunk by chunk (Content-Length or chunked), never whole."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            left -= len(chunk)
            yield chunk

    def _upload(self) -> None:
        fake = self.fake
        with fake.lock:
            file_id = f"file-{len(fake.uploads) + 1}"
        path = fake.folder / file_id
        with open(path, "wb") as out:
            for chunk in self._chunks():  # type: ignore[attr-defined]
                out.write(chunk)
        ids = []
        with open(path, "rb") as spooled:  # the multipart body: only the request lines start like this
            for raw in spooled:
                if raw.startswith(b'{"custom_id":'):
                    ids.append(json.loads(raw)["custom_id"])
        path.unlink()
        with fake.lock:
            fake.uploads[file_id] = ids
        self._json({"id": file_id, "object": "file", "purpose": "batch", "bytes": 0, "created_at": 0})

    def do_POST(self) -> None:
        if self.path.endswith("/files"):
            return self._upload()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with self.fake.lock:
            batch_id = f"batch-{len(self.fake.batches) + 1}"
            self.fake.batches[batch_id] = body["input_file_id"]
        self._json(self._batch(batch_id))

    def _batch(self, batch_id: str) -> dict[str, object]:
        file_id = self.fake.batches[batch_id]
        total = len(self.fake.uploads[file_id])
        return {"id": batch_id, "object": "batch", "status": "completed", "input_file_id": file_id,
                "output_file_id": f"out-{file_id}", "error_file_id": None, "errors": None,
                "request_counts": {"total": total, "completed": total, "failed": 0}}  # fmt: skip

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts[1] == "batches":
            return self._json(self._batch(parts[2]))
        ids = self.fake.uploads[parts[2].removeprefix("out-")]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk: list[bytes] = []
        size = 0
        for number, custom_id in enumerate(ids):
            chunk.append(self.fake.line(custom_id, number))
            size += len(chunk[-1])
            if size >= 1 << 20 or number == len(ids) - 1:
                data = b"".join(chunk)
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.fake.served += len(data)
                chunk, size = [], 0
        self.wfile.write(b"0\r\n\r\n")


def imggen(*args: str) -> list[str]:
    return [sys.executable, "-m", "imggen", "batch", *args]


def run(requests: int, gigabytes: float, out: Path) -> list[str]:
    # Each output line carries one image as base64 (4/3 of its size) plus ~150 bytes of envelope.
    image_bytes = max(64, int((gigabytes * 1e9 / requests - 150) * 3 / 4))
    fake = BatchFake(out, image_bytes)
    env = {"OPENAI_API_KEY": KEY, "OPENAI_API_BASE": fake.base, "IMGGEN_BATCH_LEDGER": str(out / "data" / "l.sqlite"),
           "IMGGEN_POLL_INTERVAL": "0"}  # fmt: skip
    prompts = out / "prompts.txt"
    with open(prompts, "w") as file:
        file.writelines(f"prompt {i}: an otter holding a pebble, watercolour\n" for i in range(requests))
    images = out / "images"
    try:
        submit = imggen("submit", "--prompts-file", str(prompts), "-m", MODEL, "-o", str(images), "--quiet")
        took, rss, code = measure(submit, env=env)
        ran_ok(code, submit)
        batch_id = (out / "data").glob("batch-prompts/b_*").__next__().stem
        collect = imggen("collect", batch_id, "--quiet")
        took2, rss2, code2 = measure(collect, env=env)
        ran_ok(code2, collect)
        saved(images, requests)
    finally:
        fake.stop()
    per = 1000 / requests
    parts = len(fake.batches)
    return [
        f"submit {requests:,} requests ({parts} provider batches)   {took:.1f} s, {took * per:.2f} s per 1,000, "
        f"peak {rss:.0f} MiB (target <= {TARGET_MIB})",
        f"collect {fake.served / 1e9:.2f} GB ({requests:,} images of {image_bytes / 1024:.0f} KiB)   {took2:.1f} s, "
        f"{took2 * per:.2f} s per 1,000, peak {rss2:.0f} MiB (target <= {TARGET_MIB})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000, help="prompts submitted (default 100,000)")
    parser.add_argument("--gb", type=float, default=2.0, help="size of the output file collected (default 2)")
    args = parser.parse_args()
    if args.requests < 1 or args.gb <= 0:
        refuse("--requests and --gb must be positive")
    require_imggen()
    with tempfile.TemporaryDirectory() as tmp:
        for row in run(args.requests, args.gb, Path(tmp)):
            print(row)


if __name__ == "__main__":
    main()
