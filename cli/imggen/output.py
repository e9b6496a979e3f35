"""Writing images: file names, type sniffing, atomic writes, URL downloads and metadata sidecars."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import re
import shutil
import string
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checks import MAX_SEED
from .errors import BadResponseError, GenerationError, NetworkError, OutputError, UsageError
from .manifest import sha256_of

if TYPE_CHECKING:
    from .transport import Transport
    from .types import ImageData, ImageResponse

NameFor = Callable[[str], str]  # extension -> file name
DEFAULT_NAME = "{date}-{prompt}-{index}.{ext}"
NAME_FIELDS = frozenset({"prompt", "model", "index", "date", "time", "seed", "ext", "line"})
SLUG_MAX = 60
NAME_MAX_BYTES = 255  # what ext4, APFS, NTFS and most file systems take for one name
UNIQUE_ROOM = "-v9999"  # the longest suffix a taken name gets
RESERVED_PREFIX = ".imggen-"  # temporary files, spill folders and the manifest
SIDECAR_SUFFIX = ".json"
# Called with (file name, sha256, size) just before an image takes its name, once per name tried:
# the run writes its manifest line there, so a file on disk always has its line (see Manifest.done).
Publish = Callable[[str, str, int], None]
before_publish: ContextVar[Publish | None] = ContextVar("before_publish", default=None)


def sniff(head: bytes) -> str | None:
    """The image type from its first bytes: png, jpeg, webp or gif; None when it is not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}
KINDS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp", "gif": "gif"}  # extension -> image type


def image_suffix(name: str) -> str | None:
    """The image extension `name` ends with, as typed and without its dot (`out.PNG` → `PNG`), or None."""
    stem, dot, ext = name.rpartition(".")
    return ext if dot and stem and ext.lower() in KINDS else None


@functools.lru_cache(maxsize=64)
def with_ext(template: str) -> tuple[str, str | None]:
    """A --name template without {ext} gets the extension of the image's bytes: appended (`otter` →
    `otter.png`), or in place of an image extension typed in it (`otter.png` is `otter.jpg` when the
    image is a JPEG). Returns the template to render and the extension typed (kept as typed when the
    image is of that type: `out.jpeg` stays `out.jpeg`)."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        return template, None  # check_template says what is wrong
    if "ext" in fields:
        return template, None
    typed = image_suffix(template)
    if typed is None:
        return template + ".{ext}", None
    return template[: -len(typed)] + "{ext}", typed


def is_image(path: Path) -> bool:
    """A regular file that starts like an image imggen saves."""
    try:
        if not path.is_file():  # never open a FIFO or a device that could block
            return False
        with path.open("rb") as handle:
            return sniff(handle.read(16)) is not None
    except OSError:
        return False


def slugify(text: str, limit: int = SLUG_MAX) -> str:
    """A file-name-safe slug: ascii letters, digits and single hyphens; never empty, never a path."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "image"


@functools.lru_cache(maxsize=64)  # once per distinct template, not once per prompt of a batch
def check_template(template: str) -> None:
    """Refuse a --name template that cannot give a safe file name for every image, before anything is
    sent: unknown fields, bad format specs, a path, a NUL, names longer than a file system takes,
    imggen's own files (`.imggen-*`) and `.json` names (the sidecar of another image)."""
    if "\0" in template:
        raise UsageError("--name contains a NUL byte", hint="Give a plain file name.")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"--name '{template}' is not a valid template: {exc}") from exc
    names = {f for _, f, _, _ in parsed if f is not None}
    unknown = names - NAME_FIELDS
    if unknown:
        fields = ", ".join("{" + f + "}" for f in sorted(NAME_FIELDS))
        raise UsageError(f"--name uses unknown field {{{sorted(unknown)[0]}}}", hint=f"Fields: {fields}.")
    if "/" in template or "\\" in template or template in (".", "..") or not template.strip():
        raise UsageError(f"--name '{template}' must be a file name, not a path", hint="Use -o for the directory.")
    for _, name, spec, _ in parsed:
        if spec and ("{" in spec or re.search(r"\d{4,}", spec)):
            raise UsageError(f"--name '{template}': the format spec of {{{name}}} is not one imggen can use")
    full = with_ext(template)[0]
    for seed in (MAX_SEED, None):
        values = sample_values(seed=seed)
        for form in dict.fromkeys((template, full)):  # as written (an empty name) and with its extension
            _check_rendered(template, _render(form, values))


def sample_values(**changes: Any) -> dict[str, Any]:
    """Values for every name field at their longest, so a check of the result holds for every image."""
    values: dict[str, Any] = {
        "prompt": "p" * SLUG_MAX, "model": "m" * SLUG_MAX, "index": 10, "date": "2026-12-31", "time": "235959",
        "seed": MAX_SEED, "ext": "webp", "line": 9_999_999_999,
    }  # fmt: skip
    values.update(changes)
    if values["seed"] is None:
        values["seed"] = "noseed"
    return values


def _render(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format(**values).strip()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise UsageError(f"--name '{template}' cannot be rendered: {exc}", hint="Check its format specs.") from exc


def _check_rendered(template: str, name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise UsageError(f"--name '{template}' gives '{name}', which is not a file name")
    size = len(os.fsencode(name)) + len(UNIQUE_ROOM)
    if size > NAME_MAX_BYTES:
        raise UsageError(
            f"--name '{template}' gives file names of up to {size - len(UNIQUE_ROOM)} bytes",
            hint=f"A file name takes at most {NAME_MAX_BYTES} bytes, with room for a {UNIQUE_ROOM} suffix.",
        )
    if name.startswith(RESERVED_PREFIX):
        raise UsageError(
            f"--name '{template}' gives names starting {RESERVED_PREFIX}, which imggen keeps for its own files"
        )
    if name.lower().endswith(SIDECAR_SUFFIX):
        raise UsageError(
            f"--name '{template}' gives names ending {SIDECAR_SUFFIX}, as --metadata names the file beside an image",
            hint="End it with .{ext}.",
        )


def check_names(counts: Mapping[str, tuple[int, int]], *, overwrite: bool, metadata: bool) -> None:
    """No two images of one run share a file (--overwrite would keep only the last) or a sidecar.
    `counts`: per template, the prompts that use it and the most images one of them makes."""
    for template, (prompts, most) in counts.items():
        checks = ((("index",), most > 1, "{index}", f"all {most} images of a prompt"),
                  (("prompt", "line"), prompts > 1, "{prompt} or {line}", "every prompt"))  # fmt: skip
        for fields, many, fix, what in checks:
            if not many:
                continue
            varies = _varies(template, "name", fields)
            if overwrite and not varies:
                raise UsageError(_same(template, "name", what), hint=f"Add {fix}.")
            # A taken name gets -v2 before its extension, but names that differ only after the last dot
            # (otter.1, otter.2) share one sidecar (otter.json).
            if metadata and varies and not _varies(template, "stem", fields):
                raise UsageError(_same(template, "stem", what), hint=f"Add {fix} before the extension.")


def _varies(template: str, part: str, fields: tuple[str, ...]) -> bool:
    """Whether the name (or its stem) changes when one of `fields` does."""
    samples = {"index": (1, 2), "prompt": ("otter", "heron"), "line": (1, 2)}
    full = with_ext(template)[0]
    for field_ in fields:
        names = [_render(full, sample_values(**{field_: value})) for value in samples[field_]]
        if part == "stem":
            names = [Path(name).stem for name in names]
        if names[0] != names[1]:
            return True
    return False


def _same(template: str, part: str, what: str) -> str:
    if part == "name":
        return f"--name '{template}' gives {what} the same file name, and --overwrite would keep only the last"
    return f"--name '{template}' gives {what} the same .json sidecar with --metadata (the part before the extension)"


@dataclass
class Namer:
    """Renders --name for each image; date and time are fixed when the run starts. `taken` (with
    --overwrite) holds the names this run has given, so an image of the run never replaces another."""

    template: str = DEFAULT_NAME
    model: str = ""
    started: dt.datetime = field(default_factory=dt.datetime.now)
    line: int = 1
    taken: set[str] | None = None

    def render(self, prompt: str, index: int, seed: int | None, ext: str) -> str:
        template, typed = with_ext(self.template)
        if typed is not None and KINDS[typed.lower()] == KINDS.get(ext):
            ext = typed  # the extension as the user typed it, when the image is of that type
        values = {
            "prompt": slugify(prompt),
            "model": slugify(self.model),
            "index": index,
            "date": self.started.strftime("%Y-%m-%d"),
            "time": self.started.strftime("%H%M%S"),
            "seed": seed if seed is not None else "noseed",
            "ext": ext,
            "line": self.line,
        }
        name = template.format(**values).strip()
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            name = f"{values['prompt']}-{index}.{ext}"
        return self._unique(name)

    def _unique(self, name: str) -> str:
        if self.taken is None:
            return name
        stem, suffix = os.path.splitext(name)
        candidate, attempt = name, 1
        while candidate in self.taken:
            attempt += 1
            candidate = f"{stem}-v{attempt}{suffix}"
        self.taken.add(candidate)
        return candidate


def file_target(given: str) -> Path | None:
    """`-o out.png`: the file to write when -o names an image file rather than a directory (it ends
    with an image extension, and is not a directory already nor written as one, `out.png/`)."""
    if given == "-" or given.endswith(("/", os.sep)) or image_suffix(Path(given).name) is None:
        return None
    path = Path(given)
    return None if path.is_dir() else path


def file_template(path: Path, images: int) -> str:
    """The --name template for `-o out.png`: `out.png` for one image, `out-1.png`, `out-2.png`, … for several."""
    name = path.name.replace("{", "{{").replace("}", "}}")
    if images == 1:
        return name
    stem, _, ext = name.rpartition(".")
    return f"{stem}-{{index}}.{ext}"


def prepare_directory(directory: Path) -> None:
    """Create the output directory now and prove a file can be made in it, so a bad -o is a usage
    error before anything is paid for (a probe, not os.access: root passes os.access everywhere)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {directory}: {exc.strerror}") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".imggen-", suffix=".part", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"output directory {directory} is not writable: {exc.strerror}", hint="Pick another -o."
        ) from exc
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


@cache
def file_mode() -> int:
    """0o666 less the user's umask: what `curl -o` or `open()` would give a new file. Read once per
    process; /proc gives it without changing it, elsewhere it is set and restored at once (the only
    other way), with a stricter mask in between, so a file made meanwhile is never more open."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def publish_mode(fd: int, path: Path) -> None:
    """A temporary file is private (mkstemp's 0600); give it the umask's mode just before its rename."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, file_mode())
    else:  # Windows before Python 3.13
        os.chmod(path, file_mode())


def private_temp(directory: Path) -> tuple[int, Path]:
    """A new `.imggen-*.part` file (0600), locked while this process has it open, so another run's
    leftover sweep (remove_leftovers) can tell it from one of a killed run."""
    fd, name = tempfile.mkstemp(prefix=".imggen-", suffix=".part", dir=directory)
    _lock(fd)
    return fd, Path(name)


class AtomicImage:
    """A temporary file in the target directory, renamed into place only once it is whole."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        fd, self.tmp = private_temp(directory)
        self.handle = os.fdopen(fd, "wb")
        self.kind: str | None = None

    def write(self, chunk: bytes) -> None:
        if self.kind is None:
            self.kind = image_kind(chunk)
        self.handle.write(chunk)

    def commit(self, name_for: NameFor, overwrite: bool) -> Path:
        """Close and rename to `name_for(ext)`; a taken name gets -v2, -v3, … unless overwrite."""
        if self.kind is None:
            raise empty_result()
        # No fsync: the rename already guarantees no partial file on Ctrl-C, and a sync per image
        # would serialise a batch on the disk (an image is cheap to make again; see --resume).
        self.handle.flush()
        publish_mode(self.handle.fileno(), self.tmp)
        self.handle.close()
        return _publish(self.tmp, self.directory / name_for(EXTENSIONS[self.kind]), overwrite)

    def discard(self) -> None:
        if not self.handle.closed:
            with contextlib.suppress(OSError):  # a full disk fails the close's flush too
                self.handle.close()
        self.tmp.unlink(missing_ok=True)


def image_kind(first: bytes) -> str:
    """The image type a result's first bytes say (png, jpeg, webp, gif), or the error that it is none."""
    kind = sniff(first[:16])
    if kind is None:
        raise BadResponseError(f"the result is not a PNG, JPEG, WebP or GIF image ({_describe(first)})")
    return kind


def empty_result() -> BadResponseError:
    return BadResponseError("the result is empty")


def _describe(chunk: bytes) -> str:
    text = chunk[:60].decode("utf-8", "replace").strip()
    if text.lower().startswith(("<!doctype", "<html")):
        return "an HTML page"
    return f"starts with {chunk[:8]!r}" if chunk else "empty"


def _publish(tmp: Path, target: Path, overwrite: bool) -> Path:
    hook = before_publish.get()
    if hook is None:
        return _replace(tmp, target) if overwrite else _link_unique(tmp, target, None)

    def announce(name: str) -> None:
        hook(name, sha256_of(tmp), tmp.stat().st_size)

    return _replace(tmp, target, announce) if overwrite else _link_unique(tmp, target, announce)


def _replace(tmp: Path, target: Path, announce: Callable[[str], None] | None = None) -> Path:
    if announce is not None:
        announce(target.name)
    os.replace(tmp, target)
    return target


def _link_unique(tmp: Path, target: Path, announce: Callable[[str], None] | None) -> Path:
    """Hard-link never replaces an existing file, so two writers cannot clobber each other. A taken
    name gets -v2, -v3, …: a version, never mistaken for an image number (otter-1-v2, not otter-1-2)."""
    stem, suffix = target.stem, target.suffix
    for attempt in range(1, 10_000):
        candidate: Path = target if attempt == 1 else target.with_name(f"{stem}-v{attempt}{suffix}")
        if os.path.lexists(candidate):
            continue
        if announce is not None:
            announce(candidate.name)
        try:
            os.link(tmp, candidate)
        except FileExistsError:
            continue  # another writer took it just now; the next name's line supersedes this one's
        tmp.unlink()
        return candidate
    raise OutputError(f"no free file name near {target}")


def place_file(source: Path, directory: Path, name_for: NameFor, overwrite: bool) -> Path:
    """Move an image already decoded to disk (in the output directory's spill folder) into place."""
    try:
        with source.open("rb") as handle:
            kind = sniff(handle.read(16))
            if kind is not None:
                publish_mode(handle.fileno(), source)
        if kind is None:
            source.unlink(missing_ok=True)
            raise BadResponseError("the result is not a PNG, JPEG, WebP or GIF image")
        return _publish(source, directory / name_for(EXTENSIONS[kind]), overwrite)
    except OSError as exc:
        raise OutputError(f"cannot write into {directory}: {exc.strerror}") from exc


async def write_image(
    directory: Path, chunks: AsyncIterator[bytes] | Iterable[bytes], name_for: NameFor, overwrite: bool
) -> Path:
    image: AtomicImage | None = None
    try:
        image = AtomicImage(directory)
        if isinstance(chunks, AsyncIterator):
            async for chunk in chunks:
                image.write(chunk)
        else:
            for chunk in chunks:
                image.write(chunk)
        return image.commit(name_for, overwrite)
    except OSError as exc:
        raise OutputError(f"cannot write into {directory}: {exc.strerror}") from exc
    finally:
        if image is not None:
            image.discard()


async def _download(url: str, transport: Transport) -> AsyncIterator[bytes]:
    from .transport import body_chunks, image_too_large

    async with transport.stream(url) as response:
        if response.status_code >= 400:
            raise BadResponseError(
                f"downloading the image failed: HTTP {response.status_code}", status=response.status_code
            )
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/"):
            raise BadResponseError(f"the image URL returned {kind.split(';')[0]}, not an image", hint="Try again.")
        limit = transport.max_image
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise image_too_large(limit)  # said up front: not worth reading
        size = 0
        async for chunk in body_chunks(response):
            size += len(chunk)
            if size > limit:
                raise image_too_large(limit)
            yield chunk


async def save_image(
    image: ImageData, prompt: str, directory: Path, namer: Namer, overwrite: bool, transport: Transport
) -> Path:
    """Decode or download one image into `directory`; returns its path."""

    def name_for(ext: str) -> str:
        return namer.render(prompt, image.index, image.seed, ext)

    if image.file is not None:
        return place_file(image.file, directory, name_for, overwrite)
    if image.b64_json is not None:
        return await write_image(directory, [image.image_bytes()], name_for, overwrite)
    if image.url:
        return await _download_with_retries(image.url, directory, name_for, overwrite, transport)
    raise BadResponseError("the image has neither data nor a URL")


async def _download_with_retries(
    url: str, directory: Path, name_for: NameFor, overwrite: bool, transport: Transport
) -> Path:
    """Under the transport's retry loop; each attempt starts a fresh temporary file, so a broken stream
    never leaves half an image."""
    path = await _retried(
        url, transport, lambda: write_image(directory, _download(url, transport), name_for, overwrite)
    )
    assert isinstance(path, Path)
    return path


async def fetch_result(url: str, transport: Transport) -> tuple[Path | None, bytes | None]:
    """A result URL that expires, downloaded now under the transport's retry loop (a plain GET: the
    provider's key is never sent to it): into the run's spill folder when it has one (the file, to be
    placed later), else into memory (the bytes). Each attempt starts afresh."""
    fetched = await _retried(url, transport, lambda: _fetch_once(url, transport))
    assert isinstance(fetched, tuple)
    return fetched


async def _retried(url: str, transport: Transport, once: Callable[[], Awaitable[Any]]) -> Any:
    """`once()` (a download of `url`) under the transport's retry loop, each attempt held to its
    timeout as API calls are: network errors and retryable statuses are tried again."""
    from .transport import deadline_error, retryable_status

    async def attempt() -> tuple[GenerationError | None, Any]:
        try:
            async with asyncio.timeout(transport.timeout):  # one deadline for the whole image, as for API calls
                return None, await once()
        except TimeoutError:
            return deadline_error(url, transport.timeout), None
        except NetworkError as exc:
            return exc, None
        except BadResponseError as exc:
            return exc, (None if exc.status and retryable_status(exc.status) else False)

    return await transport.retrying(attempt)


async def _fetch_once(url: str, transport: Transport) -> tuple[Path | None, bytes | None]:
    directory = transport.spill_dir
    if directory is None:
        data = bytearray()
        async for chunk in _image_download(url, transport):
            data += chunk
        return None, bytes(data)
    fd, path = private_temp(directory)
    kept = False
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in _image_download(url, transport):
                handle.write(chunk)
        kept = True
        return path, None
    except OSError as exc:
        raise OutputError(f"cannot write into {directory}: {exc.strerror}") from exc
    finally:
        if not kept:
            path.unlink(missing_ok=True)


async def _image_download(url: str, transport: Transport) -> AsyncIterator[bytes]:
    """`_download`'s chunks, the first checked to be an image's, an empty body refused."""
    started = False
    async for chunk in _download(url, transport):
        if not started:
            image_kind(chunk)
            started = True
        yield chunk
    if not started:
        raise empty_result()


def metadata_for(response: ImageResponse, image: ImageData) -> dict[str, Any]:
    return {
        "prompt": response.prompt,
        "revised_prompt": image.revised_prompt,
        "model": response.model,
        "parameters": response.parameters,
        "seed": image.seed,
        "size": image.size,
        "index": image.index,
        "created": response.created,
        "request_id": image.request_id,
        "url": image.url,
        "text": image.text,
        "cost_usd": image.cost_usd,
    }


def write_sidecar(path: Path, data: dict[str, Any]) -> Path:
    """`otter-1.png` → `otter-1.json`, written atomically."""
    target = path.with_suffix(".json")
    tmp: Path | None = None
    try:
        fd, tmp = private_temp(path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            publish_mode(handle.fileno(), tmp)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror}") from exc
    return target


def save_response(
    response: ImageResponse, directory: Path, *, name: str | None, overwrite: bool, metadata: bool, timeout: float
) -> list[Path]:
    """The synchronous `ImageResponse.save`: every image, in index order (inside a running event
    loop too: the work then runs on a private loop in a worker thread)."""
    from .sync import run_sync

    save = asave_response(response, directory, name=name, overwrite=overwrite, metadata=metadata, timeout=timeout)
    return run_sync(save)


async def asave_response(
    response: ImageResponse, directory: Path, *, name: str | None, overwrite: bool, metadata: bool, timeout: float
) -> list[Path]:
    """`ImageResponse.asave`: every image, in index order."""
    from .transport import Transport

    check_template(name or DEFAULT_NAME)
    check_names({name or DEFAULT_NAME: (1, len(response.data))}, overwrite=overwrite, metadata=metadata)
    prepare_directory(directory)
    namer = Namer(name or DEFAULT_NAME, response.model, taken=set() if overwrite else None)
    async with Transport(timeout=timeout) as transport:
        paths = []
        for image in response.data:
            path = await save_image(image, response.prompt, directory, namer, overwrite, transport)
            if metadata:
                write_sidecar(path, metadata_for(response, image))
            paths.append(path)
        return paths


# A temporary file or folder untouched this long, and unlocked, is a leftover of a run that was
# killed (kill -9, power loss); the age covers the moment between a live run creating and locking it.
LEFTOVER_AGE = 60.0
# Without file locks (Windows) age alone must tell: longer than any request may take.
UNLOCKED_LEFTOVER_AGE = 24 * 3600.0


def _has_locks() -> bool:
    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows
        return False
    return True


def _lock(fd: int) -> bool:
    """An exclusive lock on an open file or folder, without waiting; True where locks do not exist."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def run_folder(directory: Path) -> tuple[Path, int | None]:
    """The run's hidden folder in `directory` (streamed images wait there), with the open locked
    descriptor that marks it as in use until this process ends (None where there are no locks)."""
    try:
        path = Path(tempfile.mkdtemp(prefix=".imggen-", dir=directory))
        fd = os.open(path, os.O_RDONLY) if _has_locks() else None
    except OSError as exc:
        raise OutputError(f"cannot write into {directory}: {exc.strerror}") from exc
    if fd is not None:
        _lock(fd)
    return path, fd


def _leftover(entry: os.DirEntry[str], now: float, locks: bool) -> bool:
    if not entry.name.startswith(".imggen-") or entry.name in (".imggen-manifest.jsonl", ".imggen-thumbs"):
        return False
    is_dir = entry.is_dir(follow_symlinks=False)
    if not is_dir and not (entry.is_file(follow_symlinks=False) and entry.name.endswith((".part", ".spill"))):
        return False
    age = now - entry.stat(follow_symlinks=False).st_mtime
    if not locks:
        return age >= UNLOCKED_LEFTOVER_AGE
    if age < LEFTOVER_AGE:
        return False
    fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        return _lock(fd)  # a live run holds its lock; a killed one's went with it
    finally:
        os.close(fd)


def remove_leftovers(directory: Path) -> int:
    """Remove what killed runs left in `directory` (their `.imggen-*` folders and `.part`/`.spill`
    files); another run still going keeps its own. Returns how many were removed."""
    locks = _has_locks()
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        try:
            if not _leftover(entry, now, locks):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove: never a reason to stop a run
    return removed
