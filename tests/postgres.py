"""A throwaway PostgreSQL cluster for the tests: its own data directory under a temporary folder,
trust authentication, no fsync, listening on a free loopback port (never the machine's own 5432)
and on a private Unix socket folder. Removed whole by `stop()`.

As root, PostgreSQL refuses to start, so the cluster is run by an unprivileged user (`postgres`
when it exists, else `nobody`) through `runuser` (or `setpriv`), owning the temporary folder.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

INSTALL_HINT = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
SUPERUSER = "postgres"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _version_key(path: str) -> tuple[int, ...]:
    """`/usr/lib/postgresql/15/bin` -> (15,); non-numeric parts sort lowest."""
    part = Path(path).parent.name
    return tuple(int(p) if p.isdigit() else -1 for p in part.split("."))


def find_bindir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: `pg_config --bindir` if it has them, else the
    highest `/usr/lib/postgresql/*/bin`. Not PATH: `/usr/local/bin/pg_ctl` may be a wrapper."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass  # a broken pg_config (client-only install): fall through to the Debian layout
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for c in candidates:
        d = Path(c)
        if all(os.access(d / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return d
    return None


def require_bindir() -> Path:
    """`find_bindir()`, or: skip the test when run by hand (env `CI` unset), and fail loudly in CI
    (RuntimeError), where a silent skip would hide a missing install step."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if not os.environ.get("CI"):
        pytest.skip(INSTALL_HINT)
    raise RuntimeError(INSTALL_HINT)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (bound to port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _which(tool: str) -> str | None:
    """`shutil.which`, then the sbin folders a non-login PATH may lack (runuser is in /usr/sbin)."""
    found = shutil.which(tool)
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin", "/usr/bin"):
        if os.access(f"{folder}/{tool}", os.X_OK):
            return f"{folder}/{tool}"
    return None


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """(command prefix, user) to run the server tools unprivileged; ([], None) when not root."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if runuser := _which("runuser"):
            return [runuser, "-u", name, "--"], user
        if setpriv := _which("setpriv"):
            return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"], user
        raise RuntimeError("running as root and neither runuser nor setpriv found: apt-get install util-linux")
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class PostgresServer:
    """One throwaway cluster. `start()` takes ~1-2 s (initdb dominates); `stop()` is idempotent.

    Attributes: `port` (TCP, 127.0.0.1), `root` (temporary folder: `data/`, `sock/`, `server.log`).
    Raises RuntimeError when the binaries are missing in CI or the server does not come up.
    """

    def __init__(self) -> None:
        self.bindir = require_bindir()
        self.prefix, self.user = _run_as()
        # As root, under /tmp: the server's user must traverse every parent, and $TMPDIR may not allow it.
        self.root = Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp" if self.user is not None else None))
        self.data = self.root / "data"
        self.sockdir = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = 0
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """initdb then `pg_ctl start -w`; retried on a fresh port if another process took the
        one picked (the bind-0 trick leaves a short race). On failure the folder is removed."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.sockdir.mkdir()
        if self.user is not None:
            for p in (self.root, self.sockdir):
                os.chown(p, self.user.pw_uid, self.user.pw_gid)
        self._tool("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8",
                   "--locale=C")  # C: no dependence on the locales installed on the machine
        for _attempt in range(3):
            self.port = free_port()
            opts = (f"-F -p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            proc = self._tool("pg_ctl", "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                              "start", "-l", str(self.log), check=False)
            if proc.returncode == 0:
                self._running = True
                atexit.register(self.stop)  # a run that ends before the fixture's teardown leaves no server
                return
            if "already in use" not in self._log_text():
                break
        raise RuntimeError(f"PostgreSQL did not start (pg_ctl: {proc.stdout.strip()!r}); "
                           f"server log:\n{self._log_text()}")

    def stop(self) -> None:
        """`pg_ctl stop -m fast` (open sessions are cut), then remove the temporary folder."""
        # postmaster.pid too: a start that timed out may still have left a server running.
        if self._running or (self.data / "postmaster.pid").exists():
            self._tool("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
            self._running = False
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)

    # -- databases ---------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq URI for psycopg: `postgresql://postgres@127.0.0.1:<port>/<dbname>`."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL: `postgresql+psycopg://postgres@127.0.0.1:<port>/<dbname>`."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (lower-case identifier, <= 63 chars); returns its SQLAlchemy URL.
        Raises ValueError on a bad name, psycopg.errors.DuplicateDatabase if it exists."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad database name {name!r}")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def fresh_database(self) -> tuple[str, str]:
        """Create a database under a new unique name `t_<16 hex>`; returns (name, SQLAlchemy URL)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        return name, self.create_database(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ... WITH (FORCE): sessions a test left open are terminated."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- internals ---------------------------------------------------------------------------

    def _tool(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # cwd=root: as another user, the caller's working folder may be unreadable, and initdb
        # and postgres both look it up.
        proc = subprocess.run([*self.prefix, str(self.bindir / name), *args], check=False, cwd=self.root,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
