"""Big prompts files: wall time and peak RSS of `generate --prompts-file F --dry-run --json > /dev/null`.

    python tests/bench/prompts.py               # 100,000 and 1,000,000 lines
    python tests/bench/prompts.py --lines 20000 # other sizes

Both passes (every line checked, then every line printed) read the file one line at a time, so the
peak should not grow with the number of lines. bench.py runs this too. A script, not a test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import imggen, measure, refuse, require_imggen

SIZES = (100_000, 1_000_000)
TARGETS = "1,000,000 lines <= 20 s and <= 150 MiB; 100,000 and 1,000,000 within 20 MiB of each other"


def write_prompts(path: Path, lines: int) -> None:
    with path.open("w") as handle:
        for start in range(0, lines, 10_000):
            handle.writelines(f"a sea otter number {i} floating on its back\n" for i in range(start, start + 10_000))


def run_prompts(out: Path, sizes: tuple[int, ...] = SIZES) -> dict[int, tuple[float, float]]:
    """{lines: (seconds, peak RSS MiB)}"""
    figures = {}
    for lines in sizes:
        path = out / f"prompts-{lines}.txt"
        write_prompts(path, lines)
        cmd = imggen("generate", "--prompts-file", str(path), "-m", "openai/gpt-image-1", "--dry-run", "--json")
        took, rss, code = measure(cmd, env={"OPENAI_API_KEY": "sk-bench"})
        if code != 0:
            refuse(f"imggen exited {code} on {lines} lines: no figures for a run that failed", 1)
        figures[lines] = (took, rss)
        path.unlink()
    return figures


def report(figures: dict[int, tuple[float, float]]) -> list[str]:
    rows = [f"{f'{lines:,} prompts --dry-run':<28} imggen {took:.1f} s, {rss:.0f} MiB peak"
            for lines, (took, rss) in figures.items()]  # fmt: skip
    peaks = [rss for _, rss in figures.values()]
    spread = f"peaks differ by {max(peaks) - min(peaks):.0f} MiB" if len(peaks) > 1 else ""
    return [*rows, f"{'':<28} {spread:<47} target {TARGETS}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, action="append", help="lines per file (repeatable)")
    args = parser.parse_args()
    require_imggen()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_prompts(Path(tmp), tuple(args.lines or SIZES))
    print("\n".join(report(figures)))


if __name__ == "__main__":
    main()
