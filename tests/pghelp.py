"""A private PostgreSQL server for the proxy tests: Debian's `postgresql` package (.ci/run installs it),
a fresh cluster in tmp, listening on 127.0.0.1 at a free port and on a unix socket in tmp; never a
system cluster."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from servehelp import free_port

PASSWORD = "pg-test-password-5678"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(self, tmp: Path) -> None:
        binaries = pg_bin()
        assert binaries, "PostgreSQL is not installed (apt-get install postgresql; .ci/run does this)"
        self.run_as: list[str] = []
        self.own: Path | None = None
        if os.geteuid() == 0:  # initdb refuses root: the package's own `postgres` user runs it, in a dir it owns
            import pwd
            import tempfile

            user = pwd.getpwnam("postgres")
            tmp = self.own = Path(tempfile.mkdtemp(prefix="imggen-pg-"))
            os.chown(tmp, user.pw_uid, user.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.data, self.sockets = tmp / "pgdata", tmp / "pgsock"
        self.sockets.mkdir()
        if self.own is not None:
            os.chown(self.sockets, os.stat(tmp).st_uid, os.stat(tmp).st_gid)
        self.port = free_port()
        password_file = tmp / "pgpass"
        password_file.write_text(PASSWORD)
        if self.own is not None:
            os.chown(password_file, os.stat(tmp).st_uid, os.stat(tmp).st_gid)
        env = {**os.environ, "LC_ALL": "C"}
        subprocess.run(
            [*self.run_as, str(binaries / "initdb"), "-D", str(self.data), "-U", "imggen",
             "--pwfile", str(password_file), "-A", "scram-sha-256", "--no-sync", "-E", "UTF8"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        self.pg_ctl = str(binaries / "pg_ctl")
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(tmp / "pg.log"),
             "-w", "-t", "30", "start"],
            check=True, stdout=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not list(self.sockets.glob(".s.PGSQL.*")) and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"postgresql://imggen:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
        if self.own is not None:
            shutil.rmtree(self.own, ignore_errors=True)
