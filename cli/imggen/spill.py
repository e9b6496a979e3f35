"""Reading a JSON response whose long strings are base64 images, without holding them in memory.

`SpillingParser` is fed the body as it streams in. Every string longer than `LIMIT` is base64-decoded
on the fly into a file of its own and replaced in the JSON by a short marker; the small rest of the
document is parsed as usual. Parsers turn a marker back into the file with `lookup`. So memory stays
flat whatever the image size: a chunk, a base64 remainder of under four bytes, and the small JSON.
Without a directory the long strings stay in the document, but they are measured the same way:
the text outside them stays under MAX_TEXT and each image under the image limit either way.
"""

from __future__ import annotations

import binascii
import os
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from .transport import MAX_TEXT, image_too_large, max_image_bytes, text_too_large

LIMIT = 64 * 1024  # strings longer than this are images, not text
PREFIX = "imggen-spill:"
_SPILLS: dict[str, Spill] = {}


@dataclass
class Spill:
    """One decoded string on disk; `error` says why it was not valid base64."""

    path: Path
    size: int = 0
    error: str | None = None


def lookup(value: object) -> Spill | None:
    return _SPILLS.get(value[len(PREFIX) :]) if isinstance(value, str) and value.startswith(PREFIX) else None


def release(spill: Spill) -> None:
    for key, known in list(_SPILLS.items()):
        if known is spill:
            del _SPILLS[key]
    spill.path.unlink(missing_ok=True)


class _Decoder:
    """Base64 text (with JSON's `\\/` and `\\n` escapes) to bytes on disk, four characters at a time."""

    def __init__(self, directory: Path, max_image: int) -> None:
        self.max_image = max_image
        fd, name = tempfile.mkstemp(prefix=".imggen-", suffix=".spill", dir=directory)
        self.file = os.fdopen(fd, "wb")
        self.spill = Spill(Path(name))
        self.carry = b""  # fewer than four base64 characters, or a lone trailing backslash

    def feed(self, raw: bytes) -> None:
        if self.spill.error:
            return
        data = self.carry + raw
        cut = len(data) - 1 if data.endswith(b"\\") and not data.endswith(b"\\\\") else len(data)
        data, tail = data[:cut], data[cut:]
        data = data.replace(b"\\/", b"/").replace(b"\\n", b"").replace(b"\\r", b"")
        if b"\\" in data:
            self.spill.error = "an escape sequence inside base64 data"
            return
        whole = len(data) // 4 * 4
        try:
            decoded = binascii.a2b_base64(data[:whole], strict_mode=True)
        except binascii.Error as exc:
            self.spill.error = str(exc)
            return
        if self.spill.size + len(decoded) > self.max_image:
            raise image_too_large(self.max_image)
        self.file.write(decoded)
        self.spill.size += len(decoded)
        self.carry = data[whole:] + tail

    def finish(self) -> Spill:
        self.file.close()
        if self.carry and not self.spill.error:
            self.spill.error = "truncated base64 data"
        return self.spill


class SpillingParser:
    def __init__(self, directory: Path | None, max_image: int | None = None) -> None:
        self.directory = directory  # None: long strings stay in the document (measured all the same)
        self.max_image = max_image_bytes() if max_image is None else max_image
        self.out = bytearray()  # the document with long strings replaced by markers
        self.long_chars = 0  # characters of long strings kept in `out` (no directory)
        self.escapes = 0  # backslashes in the current long string kept in memory
        self.in_string = False
        self.backslashes = 0  # consecutive backslashes just before the current position, inside a string
        self.buffer = bytearray()  # the current string, while it is short
        self.decoder: _Decoder | None = None

    def feed(self, chunk: bytes) -> None:
        position = 0
        while position < len(chunk):
            if not self.in_string:
                quote = chunk.find(b'"', position)
                end = len(chunk) if quote < 0 else quote + 1
                self.out += chunk[position:end]
                self.in_string = quote >= 0
                position = end
            else:
                position = self._string_part(chunk, position)
        short = len(self.buffer) if len(self.buffer) <= LIMIT else 0
        if len(self.out) - self.long_chars + short > MAX_TEXT:
            raise text_too_large()

    def _string_part(self, chunk: bytes, start: int) -> int:
        """Consume string content up to its closing quote (or the chunk's end); returns the new position."""
        search = start
        while True:
            quote = chunk.find(b'"', search)
            if quote < 0:
                self._content(chunk[start:])
                return len(chunk)
            if not self._escaped(chunk, start, quote):
                self._content(chunk[start:quote])
                self._close()
                return quote + 1
            search = quote + 1

    def _escaped(self, chunk: bytes, start: int, quote: int) -> bool:
        run = len(chunk[start:quote]) - len(chunk[start:quote].rstrip(b"\\"))
        if run == quote - start:  # the whole segment is backslashes: count those before it too
            run += self.backslashes
        return run % 2 == 1

    def _content(self, raw: bytes) -> None:
        if raw:
            stripped = raw.rstrip(b"\\")
            self.backslashes = (len(raw) - len(stripped)) + (self.backslashes if not stripped else 0)
        if self.decoder is not None:
            self.decoder.feed(raw)
            return
        self.buffer += raw
        if len(self.buffer) <= LIMIT:
            return
        if self.directory is None:
            self._measure(raw)
        else:
            self.decoder = _Decoder(self.directory, self.max_image)
            self.decoder.feed(bytes(self.buffer))
            self.buffer.clear()

    def _measure(self, raw: bytes) -> None:
        """A long string kept in memory: an image within the limit (an escape is two characters for
        at most one of base64)."""
        crossed = len(self.buffer) - len(raw) <= LIMIT  # just became long: count what came before too
        self.escapes += (self.buffer if crossed else raw).count(b"\\")
        if (len(self.buffer) - self.escapes) * 3 // 4 > self.max_image:
            raise image_too_large(self.max_image)

    def _close(self) -> None:
        if self.decoder is not None:
            key = uuid.uuid4().hex
            _SPILLS[key] = self.decoder.finish()
            self.out += (PREFIX + key).encode()
            self.decoder = None
        else:
            if len(self.buffer) > LIMIT:
                self.long_chars += len(self.buffer)
            self.out += self.buffer
            self.buffer.clear()
        self.out += b'"'
        self.escapes = 0
        self.in_string = False
        self.backslashes = 0

    def document(self) -> bytes:
        """The document read so far; a string left open (a body that is not JSON) is kept as it came."""
        tail = self.buffer if self.in_string and self.decoder is None else b""
        return bytes(self.out + tail)

    def abandon(self) -> None:
        """Drop a half-read body (a retry or an error): its partial file goes too."""
        if self.decoder is not None:
            release(self.decoder.finish())
            self.decoder = None


async def jsonl_documents(
    chunks: AsyncIterator[bytes], directory: Path | None, max_image: int | None = None
) -> AsyncGenerator[bytes, None]:
    """Each non-blank line of a JSONL body as it streams in (batch result files), its long strings
    spilled to files in `directory`: memory holds one line's text without its images. A line cut off
    by an error or an early close leaves no spilled file of it behind."""
    parser = SpillingParser(directory, max_image)
    try:
        async for chunk in chunks:
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                parser.feed(chunk[start:end])
                document = parser.document()
                parser = SpillingParser(directory, max_image)
                if document.strip():
                    yield document
                start = end + 1
            parser.feed(chunk[start:])
    except BaseException:
        parser.abandon()
        raise
    document = parser.document()
    if document.strip():
        yield document
