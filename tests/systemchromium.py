"""The operating system's Chromium, for the browser tests and the gallery bench: Debian's `chromium`
package, which .ci/run installs; Playwright's own browser download is never used."""

from __future__ import annotations

import os
import shutil

# Chromium's own background connections (updates, sync, safe browsing) are refused on a closed network
# and would be console noise at best: switched off, as the headless flags below say.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
