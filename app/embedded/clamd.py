"""A local clamd for `make run` and the tests, from Debian's clamav-daemon package.

Each start writes its own clamd.conf, signature database and temporary directory under `home`, so it
never touches the system's clamd (/etc/clamav) and two can run side by side. The database is a test
signature that finds the EICAR test string at any offset of any file (inside a PDF, inside a zip), plus
links to whatever official databases freshclam left in /var/lib/clamav (it cannot always reach its
servers, so there may be none). Ready when it answers PING with PONG.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from app.embedded import process as processes
from app.embedded.process import EmbeddedError, EmbeddedProcess
from app.settings import ROOT, Settings, SocketAddress

log = logging.getLogger(__name__)

PACKAGE = "clamav-daemon"
# The standard anti-virus test file (eicar.org): harmless, and every scanner is meant to detect it.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Uploads.Test.EICAR"
# What clamd reports: it marks signatures from unsigned databases as unofficial.
EICAR_FOUND = EICAR_SIGNATURE + ".UNOFFICIAL"
OFFICIAL_DATABASES = Path("/var/lib/clamav")
# Debian installs clamd in /usr/sbin, which is not on an ordinary user's PATH.
_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The file types clamd loads from its database directory (libclamav/readdb.h, CLI_DBEXT), and the
# detached signatures that newer releases verify .cvd files with.
_DATABASE_SUFFIXES = frozenset(
    ".db .hdb .hdu .fp .mdb .mdu .hsb .hsu .sfp .msb .msu .ndb .ndu .ldb .ldu .sdb .zmd .rmd .pdb .gdb .wdb"
    " .cbc .ftm .cfg .cvd .cld .cud .cdb .cat .crb .idb .ioc .yar .yara .pwdb .ign .ign2 .imp .sign".split()
)
DEFAULT_STREAM_MAX_LENGTH = 100 * 1024 * 1024  # clamd's own default
_READY_SECONDS = 30.0
# Loading the official databases (millions of signatures) takes clamd far longer than the test one.
_READY_SECONDS_OFFICIAL = 180.0


@dataclass
class EmbeddedClamd:
    process: EmbeddedProcess
    address: tuple[str, int]  # TCP (host, port), for CLAMD_ADDRESS
    unix_socket: Path | None
    home: Path
    official: list[str]  # the official databases it loaded besides the test signature

    def stop(self) -> None:
        self.process.stop()
        # A clamd that crashed keeps its home: its log says why.
        if self.process.process.returncode in (0, -signal.SIGTERM):
            shutil.rmtree(self.home, ignore_errors=True)


def find_clamd() -> Path | None:
    found = shutil.which("clamd", path=_SEARCH_PATH)
    return Path(found) if found else None


def write_database(directory: Path, official: Path = OFFICIAL_DATABASES) -> list[str]:
    """The test signature, and links to the official databases in `official`; returns their names."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # An extended (.ndb) body signature: name, target 0 (any file), offset * (anywhere), hex bytes.
    (directory / "uploads-test.ndb").write_text(f"{EICAR_SIGNATURE}:0:*:{EICAR.hex()}\n")
    linked = []
    if official.is_dir():
        for path in sorted(official.iterdir()):
            if path.suffix in _DATABASE_SUFFIXES and path.is_file():
                (directory / path.name).symlink_to(path)
                linked.append(path.name)
    return linked


def write_config(
    home: Path, host: str, port: int, unix_socket: Path | None, stream_max_length: int, database: Path
) -> Path:
    temporary = home / "tmp"
    shutil.rmtree(temporary, ignore_errors=True)  # streams left behind by a clamd that was killed
    temporary.mkdir(parents=True)
    lines = [
        "# Written by app/embedded/clamd.py at each start.",
        "Foreground yes",
        f"TCPAddr {host}",
        f"TCPSocket {port}",
        *([f"LocalSocket {unix_socket}"] if unix_socket is not None else []),
        f"DatabaseDirectory {database}",
        f"TemporaryDirectory {temporary}",
        f"StreamMaxLength {stream_max_length}",
        # What clamd cannot scan whole is reported (AlertExceedsMax: Heuristics.Limits.Exceeded.*),
        # never passed as clean. MaxFileSize equal to MaxScanSize matters: clamd silently trims an
        # archive member above MaxFileSize, but a trimmed member then uses up the whole scan budget.
        f"MaxFileSize {4 * stream_max_length}",
        f"MaxScanSize {4 * stream_max_length}",
        "AlertExceedsMax yes",
        "LogTime yes",
    ]
    config = home / "clamd.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def answers_ping(address: SocketAddress) -> bool:
    family = socket.AF_UNIX if isinstance(address, Path) else socket.AF_INET
    target = str(address) if isinstance(address, Path) else address
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(target)
            sock.sendall(b"zPING\0")
            answer = b""
            while not answer.endswith(b"\0") and (data := sock.recv(64)):
                answer += data
    except OSError:
        return False
    return answer == b"PONG\0"


def start_clamd(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    unix_socket: Path | None = None,
    stream_max_length: int = DEFAULT_STREAM_MAX_LENGTH,
    official: Path = OFFICIAL_DATABASES,
    clamd: Path | None = None,
) -> EmbeddedClamd | None:
    """clamd listening on host:port (a free port when None) and on `unix_socket` when given, with the
    test signature and the official databases; returns once it answers PING. Without clamd installed
    it says so and returns None; a clamd that does not start is an EmbeddedError."""
    clamd = clamd or find_clamd()
    if clamd is None or not clamd.is_file():
        log.warning(
            "no virus scanner: clamd is not installed (Debian package %s: apt-get install -y %s clamav);"
            " uploads of properties with `scan: true` stay pending until CLAMD_ADDRESS names a clamd",
            PACKAGE,
            PACKAGE,
        )
        return None
    home.mkdir(parents=True, exist_ok=True)
    database = home / "db"
    linked = write_database(database, official)
    ports = [(host, port, "CLAMD_ADDRESS (or free that port)")] if port is not None else []
    port = port if port is not None else processes.free_port(host)
    config = write_config(home, host, port, unix_socket, stream_max_length, database)
    address = (host, port)
    started = processes.start(
        "clamd",
        [str(clamd), "--config-file", str(config)],
        url=f"{host}:{port}",
        ready=lambda: answers_ping(address),
        ports=ports,
        log_path=home / "clamd.log",
        timeout=_READY_SECONDS_OFFICIAL if linked else _READY_SECONDS,
    )
    return EmbeddedClamd(started, address, unix_socket, home, linked)


def for_make_run(settings: Settings) -> tuple[Settings, EmbeddedClamd | None]:
    """`make run`: a local clamd (its files under var/clamd/<PORT>/) unless CLAMD_ADDRESS names one.
    Without clamav-daemon, or when it does not start, the server runs without a scanner and says so."""
    if "CLAMD_ADDRESS" in settings.given:
        return settings, None
    try:
        clamd = start_clamd(ROOT / "var" / "clamd" / str(settings.port))
    except EmbeddedError as exc:
        log.error("no virus scanner: %s; uploads of properties with `scan: true` stay pending", exc)
        return settings, None
    if clamd is None:
        return settings, None
    databases = (
        f"the EICAR test signature and {', '.join(clamd.official)}"
        if clamd.official
        else (f"only the EICAR test signature (no official databases in {OFFICIAL_DATABASES})")
    )
    log.info("virus scanner: clamd at %s:%s with %s", clamd.address[0], clamd.address[1], databases)
    return settings.with_changes(clamd_address=clamd.address), clamd
