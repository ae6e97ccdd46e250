"""Where datasets and videos live: a local folder or any fsspec URL (``s3://``, ``gs://``,
``az://``, ``memory://`` ...), each file published whole, and the traffic counted.

:class:`Storage` is a folder; its files are named by ``/``-separated paths relative to it.
Writes are whole-or-nothing on both kinds of storage, by different means: on a local
file system a file is written under a hidden temporary name in its final folder, flushed
and renamed (:mod:`fastunlc.files`); an object store has no rename, but it makes an object
visible only once its upload completes (a single PUT, or a multipart upload's final
request), so a file is written to a local temporary file and uploaded in one call. Either
way a reader sees a file complete or not at all; which of several files a reader should
trust is the business of the build's commit protocol (:mod:`fastunlc.build.shards`).

Credentials and endpoints come from the places the fsspec back end reads (for S3: the
``AWS_*`` environment variables, ``~/.aws`` profiles, ``AWS_ENDPOINT_URL`` for MinIO, Ceph
and other S3-compatible servers) or from ``storage_options`` (fsspec's keyword arguments,
``{"endpoint_url": ..., "key": ..., "secret": ...}`` for S3).

Traffic (bytes read and written, requests) is counted per process in the innermost active
:func:`counting` block, so that a worker can report what one video cost. On S3 the
requests are the HTTP requests themselves (counted by botocore, retries included); on any
other storage they are this module's operations, one per read, write, listing, query or
removal.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .errors import InputError
from .files import publish, temporary_path

LOCAL_PROTOCOLS = ("file", "local")


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL of a remote (non-local) fsspec file system."""
    text = os.fspath(location)
    protocol, sep, _ = text.partition("://")
    return bool(sep) and protocol not in LOCAL_PROTOCOLS


def local_path(location: str | os.PathLike[str]) -> str:
    """``location`` without a ``file://`` prefix, ``~`` expanded, made absolute."""
    text = os.fspath(location)
    for protocol in LOCAL_PROTOCOLS:
        if text.startswith(f"{protocol}://"):
            text = text[len(protocol) + 3:]
    return os.path.abspath(os.path.expanduser(text))


@dataclass
class Traffic:
    """Storage traffic: payload bytes read and written, and requests made."""

    bytes_read: int = 0
    bytes_written: int = 0
    requests: int = 0

    def add(self, other: Traffic | Mapping[str, int]) -> None:
        values = asdict(other) if isinstance(other, Traffic) else other
        for name in ("bytes_read", "bytes_written", "requests"):
            setattr(self, name, getattr(self, name) + int(values.get(name, 0)))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


_active: list[Traffic] = [Traffic()]  # process-wide: s3fs calls back from its own thread
_lock = threading.Lock()


@contextmanager
def counting() -> Iterator[Traffic]:
    """Count the traffic of this block (and not in any enclosing block)."""
    traffic = Traffic()
    _active.append(traffic)
    try:
        yield traffic
    finally:
        _active.remove(traffic)


def _count(read: int = 0, written: int = 0, requests: int = 0) -> None:
    with _lock:
        traffic = _active[-1]
        traffic.bytes_read += read
        traffic.bytes_written += written
        traffic.requests += requests


def _count_http_request(**_: Any) -> None:
    _count(requests=1)


_hooked: set[int] = set()


def _filesystem(url: str, options: Mapping[str, Any]) -> tuple[Any, str, bool]:
    """The fsspec file system of ``url``, the path within it, and whether its requests are
    counted by the back end (S3) rather than by :class:`Storage`."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as err:  # an unknown protocol or a missing back end
        raise InputError(url, f"cannot open this storage ({err})") from None
    counted = False
    if "s3" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        client = fs.s3
        if id(client) not in _hooked:
            client.meta.events.register("before-send", _count_http_request)
            _hooked.add(id(client))
        counted = True
    return fs, path.rstrip("/"), counted


def storage_error(where: str, err: Exception) -> InputError:
    """A one-line error naming ``where`` for a failed storage operation."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, FileNotFoundError):
        reason = f"not found ({text})"
    elif isinstance(err, PermissionError):
        reason = f"access denied ({text}); check the credentials and the storage options"
    else:
        reason = f"{type(err).__name__}: {text}"
    return InputError(where, reason)


class Storage:
    """A folder on local disk or at an fsspec URL.

    Parameters
    ----------
    location : str or PathLike
        A local path (``file://`` allowed) or a URL such as ``s3://bucket/datasets/d1``.
    options : mapping, optional
        The fsspec back end's keyword arguments (credentials, endpoint); ignored locally.

    Attributes
    ----------
    url : str
        The folder as users name it: an absolute local path, or the URL.
    local : bool
        Whether it is on a local file system (files published by rename).
    """

    def __init__(self, location: str | os.PathLike[str],
                 options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.local = not is_url(location)
        if self.local:
            self.url = self._root = local_path(location)
            self._fs, self._counted = None, False
        else:
            self.url = os.fspath(location).rstrip("/")
            self._fs, self._root, self._counted = _filesystem(self.url, self.options)

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    def __reduce__(self):  # workers rebuild their own connection
        return Storage, (self.url, self.options)

    # -- names ---------------------------------------------------------------------------
    def path(self, name: str = "") -> str:
        """The back end's path of file ``name`` (a local path, or ``bucket/key``)."""
        return posixpath.join(self._root, name) if name else self._root

    def where(self, name: str = "") -> str:
        """``name`` as users see it in messages: a local path or a full URL."""
        return posixpath.join(self.url, name) if name else self.url

    def _op(self, name: str, call, *args, **kwargs):
        """Run one back-end operation on ``name``, counted, its errors as one line."""
        if not self._counted:
            _count(requests=1)
        try:
            return call(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as err:  # OSError, and botocore's and other back ends' own errors
            raise storage_error(self.where(name), err) from None

    # -- queries ---------------------------------------------------------------------------
    def is_file(self, name: str) -> bool:
        if self.local:
            _count(requests=1)
            return os.path.isfile(self.path(name))
        return bool(self._op(name, self._fs.isfile, self.path(name)))

    def size(self, name: str) -> int:
        """Size of file ``name`` in bytes (FileNotFoundError when there is none)."""
        if self.local:
            _count(requests=1)
            return os.path.getsize(self.path(name))
        return int(self._op(name, self._fs.size, self.path(name)))

    def kind(self) -> str | None:
        """What this location is: ``"dir"``, ``"file"`` or None when nothing is there."""
        if self.local:
            _count(requests=1)
            return ("dir" if os.path.isdir(self._root) else
                    "file" if os.path.isfile(self._root) else None)
        try:
            info = self._op("", self._fs.info, self._root)
        except FileNotFoundError:
            return None
        return "dir" if info["type"] == "directory" else "file"

    def find(self) -> list[str]:
        """Every file under this folder, recursively, as local paths or full URLs."""
        if self.local:
            _count(requests=1)
            return [str(p) for p in Path(self._root).rglob("*") if p.is_file()]
        try:
            found = self._op("", self._fs.find, self._root)
        finally:
            self._fs.invalidate_cache(self._root)
        return [self._fs.unstrip_protocol(p) for p in found]

    def list(self, folder: str = "", suffix: str = "") -> list[str]:
        """Names (relative to this folder) of the files directly in ``folder`` whose name
        ends with ``suffix``, sorted; none when the folder does not exist."""
        if self.local:
            _count(requests=1)
            try:
                entries = [e.name for e in os.scandir(self.path(folder)) if e.is_file()]
            except FileNotFoundError:
                return []
        else:
            try:
                found = self._op(folder, self._fs.ls, self.path(folder), detail=True)
            except FileNotFoundError:
                return []
            finally:
                # Other processes write here: a listing kept in fsspec's cache would
                # answer later queries of files in it (as missing) without asking.
                self._fs.invalidate_cache(self.path(folder))
            entries = [posixpath.basename(e["name"].rstrip("/")) for e in found
                       if e["type"] == "file"]
        return sorted(posixpath.join(folder, e) if folder else e for e in entries
                      if e.endswith(suffix) and not e.startswith("."))

    # -- reading ---------------------------------------------------------------------------
    def read(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``start:end`` of file ``name`` (the whole file by default)."""
        if self.local:
            _count(requests=1)
            with open(self.path(name), "rb") as f:
                f.seek(start or 0)
                data = f.read() if end is None else f.read(end - (start or 0))
        else:
            data = self._op(name, self._fs.cat_file, self.path(name), start=start, end=end)
        _count(read=len(data))
        return data

    def read_text(self, name: str) -> str:
        return self.read(name).decode()

    @contextmanager
    def reading(self, name: str) -> Iterator[IO[bytes]]:
        """File ``name`` open for reading (seekable; remote reads are ranged requests of
        the back end's block size). Bytes are counted as the block is left."""
        if self.local:
            _count(requests=1)
            f = open(self.path(name), "rb")
        else:
            f = self._op(name, self._fs.open, self.path(name), "rb")
        try:
            yield f
        finally:
            _count(read=f.tell())
            f.close()

    def download(self, name: str, destination: str | os.PathLike[str]) -> None:
        """Copy file ``name`` to the local path ``destination``."""
        if self.local:
            _count(requests=1)
            shutil.copyfile(self.path(name), destination)
        else:
            self._op(name, self._fs.get_file, self.path(name), os.fspath(destination))
        _count(read=os.path.getsize(destination))

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def writing(self, name: str) -> Iterator[Path]:
        """A local temporary path to write file ``name``'s content to; published as
        ``name`` (whole, see the module) when the block ends normally, dropped when it
        raises. A block that deletes the temporary file publishes nothing."""
        if self.local:
            path = Path(self.path(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_path(path)
        else:
            handle, text = tempfile.mkstemp(prefix="fastunlc-", suffix=posixpath.basename(name))
            os.close(handle)
            tmp = Path(text)
        try:
            yield tmp
            if tmp.exists():
                size = tmp.stat().st_size
                if self.local:
                    _count(requests=1)
                    publish(tmp, path)
                else:
                    self._op(name, self._fs.put_file, str(tmp), self.path(name))
                _count(written=size)
        finally:
            tmp.unlink(missing_ok=True)

    def write(self, name: str, data: bytes | str) -> None:
        """Publish ``data`` (text is encoded as UTF-8) as file ``name``."""
        with self.writing(name) as tmp:
            tmp.write_bytes(data.encode() if isinstance(data, str) else data)

    def remove(self, *names: str) -> None:
        """Delete files (those that do not exist are skipped)."""
        for name in names:
            if self.local:
                _count(requests=1)
                Path(self.path(name)).unlink(missing_ok=True)
            else:
                try:
                    self._op(name, self._fs.rm_file, self.path(name))
                except FileNotFoundError:
                    pass

    def check_writable(self) -> None:
        """Fail early, with one line naming this folder, when it cannot be written:
        a missing bucket, wrong credentials, a read-only disk."""
        if self.local:
            try:
                os.makedirs(self._root, exist_ok=True)
            except OSError as err:
                raise storage_error(self.url, err) from None
            return
        bucket = self._root.split("/", 1)[0]
        try:
            self._op("", self._fs.ls, bucket)
        except FileNotFoundError as err:
            raise InputError(self.url, f"the bucket {bucket!r} does not exist ({err})") from None


def as_storage(location: Storage | str | os.PathLike[str],
               options: Mapping[str, Any] | None = None) -> Storage:
    """``location`` as a :class:`Storage` (itself when it is one)."""
    return location if isinstance(location, Storage) else Storage(location, options)
