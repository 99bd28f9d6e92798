"""A throwaway PostgreSQL cluster of a test's own, to stop and start (fault tests).

Never the shared server: ``initdb`` in a temporary folder, a free port, trust
auth, sockets in that folder. Run as root, the files and commands belong to
``postgres`` (PostgreSQL refuses to run as root). Missing server binaries fail
the test with a clear message; they are never a reason to skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.mqtt_fixtures import free_port, wait_listening


def server_binaries() -> Path:
    """The newest installed PostgreSQL's ``bin`` folder (``initdb``, ``pg_ctl``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent)
    if not found:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing: this fault test starts "
            "a cluster of its own; install them (apt-get install postgresql)"
        )
    return found[-1].parent


@dataclass
class Cluster:
    """A running cluster: its folder, port, and ``stop``/``start``."""

    folder: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        """The ``postgres`` database's URL (trust auth)."""
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        """A database's URL."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_postgres, *command], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.folder / "pg"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-l",
            str(self.folder / "pg.log"),
            "-w",
            "start",
        )
        wait_listening(self.port)

    def stop(self) -> None:
        """Stop the server at once (``-m fast``: sessions are cut, as in a real outage)."""
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.folder / "pg"), "-w", "stop", "-m", "fast")


def new_cluster() -> Cluster:
    """``initdb`` a cluster in a fresh temporary folder and start it."""
    binaries = server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="eppark-pg-"))
    folder.chmod(0o755)
    (folder / "pg").mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pg", "postgres")
    cluster = Cluster(folder, free_port(), binaries)
    cluster._run(
        str(binaries / "initdb"), "-D", str(folder / "pg"), "-U", "postgres", "--auth=trust"
    )
    cluster.start()
    return cluster


def remove_cluster(cluster: Cluster) -> None:
    """Stop the cluster if it runs and delete its folder."""
    with contextlib.suppress(RuntimeError):
        cluster.stop()
    shutil.rmtree(cluster.folder, ignore_errors=True)
