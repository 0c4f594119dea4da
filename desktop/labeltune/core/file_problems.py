"""Why a file cannot be used as an image, in the words every front end shows: the one place that decides.

The scan, the import summary, training's skipped list, predict and evaluate, the gallery and the large view
all show these reasons (through :class:`~labeltune.core.errors.ImageDecodeError`, raised by
:mod:`labeltune.core.imaging`), so a user sees the same, specific reason for a file wherever it turns up:
"empty file (0 bytes)", "not an image (looks like text)", "truncated JPEG (image data ends early)"...
Pillow's own error text goes to the log, not to the user.

It also words what goes wrong with the disk itself, for every writer and reader of project files:
:func:`storage_reason` turns an ``OSError`` (by ``errno``) or a ``sqlite3.Error`` (by its result code) into
"disk full", "read-only", "permission denied" or "folder no longer exists — was a drive removed?", and
:func:`storage_error` makes it the one-line :class:`~labeltune.core.errors.StorageError` that names the file
(docs/adr/0042).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import stat
from pathlib import Path

from labeltune.core.errors import StorageError

log = logging.getLogger(__name__)

MISSING = "missing (file not found)"
MISSING_SINCE_IMPORT = "missing (moved or deleted since import)"
EMPTY = "empty file (0 bytes)"
NOT_A_FILE = "a folder, not a file"
#: A named pipe, socket or device: opening a pipe waits for a writer forever, so it is never opened.
NOT_REGULAR = "not a regular file (a pipe, socket or device)"
#: A name that is not text: project stores, CSVs, JSON and the screen need text (docs/adr/0037).
NAME_NOT_TEXT = "file name is not valid UTF-8 text (rename the file)"
#: A CSV row naming a file outside the CSV's folder (``../x.jpg``, ``/etc/passwd``): refused unread.
OUTSIDE_CSV_FOLDER = "outside the CSV's folder (not read)"
#: Errors the operating system raised (as opposed to Pillow's decoders, which raise plain OSError).
_SYSTEM_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError)

#: Leading bytes of formats people put in image folders -> the reason shown.  Formats LabelTune reads
#: appear too: if Pillow cannot identify a file that starts like one, its header is damaged.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "damaged JPEG (unreadable header)"),
    (0, b"\x89PNG\r\n\x1a\n", "damaged PNG (unreadable header)"),
    (0, b"GIF8", "damaged GIF (unreadable header)"),
    (0, b"II*\x00", "damaged TIFF (unreadable header)"),
    (0, b"MM\x00*", "damaged TIFF (unreadable header)"),
    (0, b"BM", "damaged BMP (unreadable header)"),
    (8, b"WEBP", "damaged WebP (unreadable header)"),
    (0, b"%PDF", "not an image (a PDF document)"),
    (0, b"PK\x03\x04", "not an image (a ZIP archive or Office document)"),
    (0, b"\x1f\x8b", "not an image (gzip-compressed data)"),
    (0, b"7z\xbc\xaf", "not an image (a 7-Zip archive)"),
    (0, b"\xd0\xcf\x11\xe0", "not an image (an old Office document)"),
    (4, b"ftypheic", "unsupported format (HEIC photo; export it as JPEG)"),
    (4, b"ftypheix", "unsupported format (HEIC photo; export it as JPEG)"),
    (4, b"ftypmif1", "unsupported format (HEIF photo; export it as JPEG)"),
    (4, b"ftypavif", "unsupported format (AVIF image; export it as JPEG or PNG)"),
    (4, b"ftyp", "not an image (a video or audio file)"),
    (0, b"\x00\x00\x00\x0cjP  ", "unsupported format (JPEG 2000)"),
    (0, b"\xff\x4f\xff\x51", "unsupported format (JPEG 2000)"),
    (0, b"8BPS", "unsupported format (Photoshop PSD; export it as PNG or TIFF)"),
    (0, b"%!PS", "unsupported format (PostScript/EPS)"),
    (0, b"\xc5\xd0\xd3\xc6", "unsupported format (PostScript/EPS)"),
    (0, b"\x00\x00\x01\x00", "unsupported format (Windows icon)"),
    (0, b"icns", "unsupported format (macOS icon)"),
    (0, b"SIMPLE  =", "unsupported format (FITS)"),
    (0, b"\x89HDF", "unsupported format (HDF5 data)"),
    (0, b"RIFF", "not an image (a RIFF audio or video file)"),
)


def os_error_reason(exc: OSError) -> str:
    """The reason for a file the operating system would not open or read."""
    if isinstance(exc, FileNotFoundError):
        return MISSING
    if isinstance(exc, IsADirectoryError):
        return NOT_A_FILE
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied)"
    return f"cannot be read ({exc.strerror or exc})"


DISK_FULL = "disk full"
READ_ONLY = "read-only"
PERMISSION_DENIED = "permission denied"
FOLDER_GONE = "folder no longer exists — was a drive removed?"
DRIVE_ERROR = "the drive does not answer (input/output error) — was a drive removed?"
_ERRNO_REASONS = {
    getattr(errno, "EDQUOT", errno.ENOSPC): "disk full (quota exceeded)",  # before ENOSPC: Windows lacks it
    errno.ENOSPC: DISK_FULL,
    errno.EFBIG: "file too large for this drive",
    errno.EROFS: READ_ONLY,
    errno.EACCES: PERMISSION_DENIED,
    errno.EPERM: PERMISSION_DENIED,
    errno.EIO: DRIVE_ERROR,
    errno.ENXIO: DRIVE_ERROR,
    errno.ENODEV: DRIVE_ERROR,
    getattr(errno, "ESTALE", errno.EIO): DRIVE_ERROR,
}
#: SQLite primary result codes (the low byte of ``sqlite_errorcode``) -> the reason shown.
_SQLITE_REASONS = {
    13: DISK_FULL,  # SQLITE_FULL
    8: READ_ONLY,  # SQLITE_READONLY
    3: PERMISSION_DENIED,  # SQLITE_PERM
    23: PERMISSION_DENIED,  # SQLITE_AUTH
    10: DRIVE_ERROR,  # SQLITE_IOERR
    14: "cannot open the database (its folder is missing or cannot be written)",  # SQLITE_CANTOPEN
    11: "the database file is damaged",  # SQLITE_CORRUPT
    26: "the database file is damaged",  # SQLITE_NOTADB
}


def storage_reason(
    exc: BaseException, path: str | os.PathLike[str] | None = None, writing: bool = True
) -> str | None:
    """Words for a failed file-system or SQLite call on ``path``; ``None`` if ``exc`` is no such failure.

    ``ENOENT`` is a vanished folder (a pulled USB stick, a deleted project) when writing or when the folder
    that should hold ``path`` is gone, else (reading) a missing file. A ``sqlite3.Error`` is worded by its
    result code, so SQL mistakes (which are bugs, not disk trouble) give ``None``.
    """
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        reason = None if code is None else _SQLITE_REASONS.get(code & 0xFF)
        if reason is not None and path is not None and not _folder_of(path).is_dir():
            return FOLDER_GONE  # SQLite says "disk I/O error" or "unable to open" for a vanished folder
        return reason
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        where = path if path is not None else exc.filename
        if writing or where is None or not _folder_of(where).is_dir():
            return FOLDER_GONE
        return "file not found"
    return _ERRNO_REASONS.get(exc.errno) or exc.strerror or None


def _folder_of(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.fspath(path))).parent


def storage_error(
    exc: BaseException, path: str | os.PathLike[str] | None = None, action: str = "write"
) -> StorageError:
    """The one-line error for ``exc`` (an ``OSError`` or ``sqlite3.Error``): ``cannot <action> <path>: why``.

    ``path`` defaults to the file the ``OSError`` names; ``action`` "" gives ``<path>: why``.
    """
    if path is None and isinstance(exc, OSError):
        path = exc.filename
    reason = storage_reason(exc, path, writing=action != "read") or str(exc)
    log.info("storage failure on %s: %s: %s", path or "?", type(exc).__name__, exc)
    where = f" {os.fspath(path)}" if path is not None else ""
    code = exc.errno if isinstance(exc, OSError) else None
    if not action:
        return StorageError(f"{where.strip()}: {reason}" if where else reason, errno=code)
    return StorageError(f"cannot {action}{where}: {reason}", errno=code)


#: How writers written in C++ or Rust report a disk that refused: safetensors names the errno
#: (``(os error 28)`` or ``Os { code: 28, ... }``); torch's file writer only says that writing failed.
_LIBRARY_ERRNO = re.compile(r"\(os error (\d+)\)|\bOs \{ code: (\d+)")
_LIBRARY_WRITE_FAILED = ("file write failed", "cannot be opened", "failed writing", "No space left")


def library_write_error(exc: BaseException, path: str | os.PathLike[str]) -> StorageError | None:
    """A :class:`StorageError` for a library writer's failure on ``path`` due to the disk, else ``None``."""
    text = str(exc)
    found = _LIBRARY_ERRNO.search(text)
    if found:
        code = int(found.group(1) or found.group(2))
        return storage_error(OSError(code, os.strerror(code), os.fspath(path)), path)
    if not _folder_of(path).is_dir():
        return storage_error(OSError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path)), path)
    if any(marker in text for marker in _LIBRARY_WRITE_FAILED):
        log.info("library write failure on %s: %s", path, text)
        refused = "the drive refused the write (disk full or read-only?)"
        return StorageError(f"cannot write {os.fspath(path)}: {refused}")
    return None


def kind_problem(path: Path | str) -> str | None:
    """Why ``path`` is no file to open (missing, a folder, a pipe...), from its metadata; or ``None``."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return os_error_reason(exc)
    if stat.S_ISDIR(mode):
        return NOT_A_FILE
    return None if stat.S_ISREG(mode) else NOT_REGULAR


def name_problem(path: Path | str) -> str | None:
    """:data:`NAME_NOT_TEXT` when ``path`` holds bytes that are not UTF-8 (Python keeps them as surrogates).

    Such a name cannot be stored in the project, written to a CSV or JSON file, or printed to a UTF-8
    terminal, so the scan reports the file instead of letting a later step crash on its name.
    """
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return NAME_NOT_TEXT
    return None


def shown_path(path: Path | str) -> str:
    """``path`` as text that can be printed, stored and shown: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def unidentified_reason(path: Path | str) -> str:
    """Why a file that Pillow could not identify as an image of a format we read is not one."""
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        return os_error_reason(exc)
    if size == 0:
        return EMPTY
    for offset, magic, reason in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return reason
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in stripped):
        return "unsupported format (SVG drawing; export it as PNG)"
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "not an image (a web page)"
    if _looks_like_text(head):
        return "not an image (looks like text)"
    return "unsupported format (not an image type LabelTune reads)"


def not_image_type_reason(path: Path | str) -> str:
    """Why a file whose name has no image extension is left out."""
    suffix = Path(path).suffix
    if not suffix:
        return "unsupported format (no extension)"
    return f"unsupported format ({suffix} is not an image type)"


def _format_name(image_format: str | None) -> str:
    names = {"MPO": "JPEG", "WEBP": "WebP", "DIB": "BMP"}
    return names.get(image_format or "", image_format or "image")


def open_failure_reason(path: Path | str, exc: BaseException) -> str:
    """Why opening (reading the header of) a file failed; Pillow's text goes to the log."""
    if isinstance(exc, _SYSTEM_ERRORS):
        return os_error_reason(exc)
    log.debug("cannot open %s: %s: %s", path, type(exc).__name__, exc)
    reason = unidentified_reason(path)
    if reason.startswith(("damaged", "empty", "missing", "cannot", "a folder")):
        return reason
    return "damaged image (unreadable header)"


def decode_failure_reason(path: Path | str, image_format: str | None, exc: BaseException) -> str:
    """Why decoding the pixels of a file whose header was fine failed."""
    log.debug("cannot decode %s: %s: %s", path, type(exc).__name__, exc)
    name = _format_name(image_format)
    if isinstance(exc, MemoryError):
        return f"{name} too large to decode in memory"
    text = str(exc).lower()
    if isinstance(exc, EOFError) or "truncated" in text or "ends early" in text or "premature" in text:
        return f"truncated {name} (image data ends early)"
    if isinstance(exc, _SYSTEM_ERRORS):
        return os_error_reason(exc)
    if image_format == "WEBP" and "decoder" in text:  # libwebp says only "could not create decoder object"
        return f"truncated or damaged {name} (image data cannot be decoded)"
    return f"damaged {name} (image data cannot be decoded)"
