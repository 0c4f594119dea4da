"""A messy class-folder dataset for the reliability tests: good images mixed with every odd and bad kind.

:func:`write_corpus` writes, into a folder, what a field biologist's image folder looks like after a
season: three classes of small photos good enough to train on, and next to them every kind of file that
has broken an image tool somewhere (empty, truncated, text named ``.jpg``, a decompression bomb, HEIC,
16-bit, CMYK, animated, multi-page, non-UTF-8 and very long names, a symlink loop, ...), plus CSV label
files (BOM, extra and quoted columns, a missing column, paths outside the CSV's folder).

Each kind is returned as a :class:`Kind` whose ``expected`` says what every stage must do with it:

- ``"used"``: readable; it must be imported, shown and trained on (or predicted);
- ``"skipped"``: reported with a reason naming the file; the rest goes on;
- ``"ignored"``: not a file to use (an empty folder, a link loop): no class, no error, no hang.

Two kinds need the test's help, since they are not a state of the disk: ``unreadable`` (the test makes
``open`` of that path raise ``EACCES``: tests run as root, so ``chmod`` proves nothing) and
``changes_while_read`` (a good image the test rewrites, truncated, after the scan and before the decode).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

#: Class folder name -> the class's colour: clearly different, so even random-weight features separate them.
CLASSES = {"healthy": (40, 190, 40), "rust": (200, 90, 30), "Blatt fäule 葉": (50, 60, 210)}
#: A class with a single image (trained on, never validated on).
SINGLE_CLASS = "single"
GOOD_PER_CLASS = 6
#: The name the non-UTF-8 kind gets: bytes that are not UTF-8 (``os.fsdecode`` gives surrogates).
NON_UTF8_NAME = b"\xff\xfe leaf.jpg"


@dataclass(frozen=True)
class Kind:
    """One kind of input: its name, the file (or folder) that is it, and what the stages must do."""

    name: str
    path: Path
    expected: str  # "used", "skipped" or "ignored"
    reason: str = ""
    """For ``skipped``: words the shown reason must contain."""
    label: str | None = None
    """For ``used``: the class it is filed under (``None``: unlabeled)."""


def _pixels(colour: tuple[int, int, int], size: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-30, 30, (size[1], size[0], 3))
    return np.clip(np.array(colour, dtype=np.int16) + noise, 0, 255).astype(np.uint8)


def _photo(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40), seed: int = 0) -> Image.Image:
    return Image.fromarray(_pixels(colour, size, seed))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _bomb_png() -> bytes:
    """A PNG of under 100 bytes whose header claims 100 000 x 100 000 RGB pixels (30 GB decoded)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _good_images(root: Path) -> list[Kind]:
    kinds = []
    for k, (name, colour) in enumerate(CLASSES.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(GOOD_PER_CLASS):
            fmt = "png" if i % 2 else "jpg"
            path = folder / f"leaf {i:02d}.{fmt}"
            _photo(colour, seed=100 * k + i).save(path, quality=92)
            kind = f"good_{k}_{i}" if (k, i) != (2, 0) else "unicode_space_class_folder"  # "Blatt fäule 葉"
            kinds.append(Kind(kind, path, "used", label=name))
    return kinds


def _odd_images(root: Path) -> list[Kind]:
    """Readable but unusual images: each must be used, filed under the class its folder names."""
    healthy, rust, blatt = (root / name for name in CLASSES)
    green, orange, blue = CLASSES.values()
    kinds: list[tuple[str, Path, Image.Image | bytes]] = []

    def add(name: str, path: Path, content: Image.Image | bytes) -> None:
        kinds.append((name, path, content))

    add("one_pixel", healthy / "dot.png", Image.new("RGB", (1, 1), green))
    add("wide_10000x10", rust / "strip.png", _photo(orange, (10_000, 10), 1))
    gray16 = Image.fromarray((np.full((40, 48), 150, np.uint16) * 257).astype(np.uint16))
    add("png_16bit", healthy / "gray16.png", _encoded(gray16, "PNG"))
    add("tiff_16bit", rust / "gray16.tif", _encoded(gray16, "TIFF"))
    add("cmyk_jpeg", blatt / "cmyk.jpg", _encoded(_photo(blue, seed=3).convert("CMYK"), "JPEG"))
    palette = _photo(orange, seed=4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    add("palette_png_transparency", rust / "palette.png", _encoded(palette, "PNG", transparency=0))
    rgba = _photo(green, seed=5).convert("RGBA")
    rgba.putalpha(200)
    add("rgba_png", healthy / "alpha.png", _encoded(rgba, "PNG"))
    add("grayscale_jpeg", blatt / "gray.jpg", _encoded(_photo(blue, seed=6).convert("L"), "JPEG"))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    add("exif_rotated_jpeg", healthy / "rotated.jpg", _encoded(_photo(green, (40, 56), 7), "JPEG", exif=exif))
    frames = [_photo(orange, seed=s) for s in (8, 9, 10)]
    add(
        "animated_gif",
        rust / "anim.gif",
        _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
    )
    add(
        "multipage_tiff",
        blatt / "pages.tif",
        _encoded(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
    )
    add("webp", blatt / "leaf.webp", _encoded(_photo(blue, seed=11), "WEBP"))
    mpo = _encoded(_photo(green, seed=12), "MPO", save_all=True, append_images=[_photo(green, seed=13)])
    add("mpo_camera_jpeg", healthy / "DSCF0001.JPG", mpo)
    add("png_named_jpg", rust / "really png.jpg", _encoded(_photo(orange, seed=14), "PNG"))
    add("long_name", blatt / ("l" * 240 + ".jpg"), _encoded(_photo(blue, seed=15), "JPEG"))
    add("comma_in_name", healthy / "leaf, left.jpg", _encoded(_photo(green, seed=16), "JPEG"))
    add("bmp", blatt / "scan.bmp", _encoded(_photo(blue, seed=18), "BMP"))
    add("one_bit_png", rust / "mask.png", _encoded(_photo(orange, seed=19).convert("1"), "PNG"))
    depth = Image.fromarray(np.linspace(0.0, 3.5, 40 * 48, dtype=np.float32).reshape(40, 48), mode="F")
    add("float_tiff", blatt / "depth.tif", _encoded(depth, "TIFF"))
    add(
        "progressive_jpeg",
        healthy / "progressive.jpg",
        _encoded(_photo(green, seed=22), "JPEG", progressive=True),
    )
    add("upper_case_extension", rust / "LEAF.JPEG", _encoded(_photo(orange, seed=23), "JPEG"))
    add("jfif_extension", blatt / "leaf.jfif", _encoded(_photo(blue, seed=24), "JPEG"))
    add("ppm", rust / "frame.ppm", _encoded(_photo(orange, seed=25), "PPM"))

    out = []
    for name, path, content in kinds:
        data = content if isinstance(content, bytes) else _encoded(content, "PNG")
        path.write_bytes(data)
        out.append(Kind(name, path, "used", label=path.parent.name))
    # A name that is not UTF-8 (Linux allows any bytes): written through the bytes API.
    raw = os.path.join(os.fsencode(rust), NON_UTF8_NAME)
    with open(raw, "wb") as handle:
        handle.write(_encoded(_photo(orange, seed=17), "JPEG"))
    # Not text: it cannot be stored, written to a CSV or shown as it is, so it is skipped (ADR 0037).
    out.append(Kind("non_utf8_name", Path(os.fsdecode(raw)), "skipped", "not valid UTF-8 text"))
    # A class folder named in Latin-1 (an old Windows ZIP): each file in it has a name that is not text.
    folder = os.path.join(os.fsencode(root), b"Bl\xe4tter")
    os.mkdir(folder)
    inner = os.path.join(folder, b"leaf.jpg")
    with open(inner, "wb") as handle:
        handle.write(_encoded(_photo(green, seed=26), "JPEG"))
    out.append(Kind("non_utf8_class_folder", Path(os.fsdecode(inner)), "skipped", "not valid UTF-8 text"))
    return out


def _bad_files(root: Path) -> list[Kind]:
    """Files that cannot be used: each must be skipped, named, with the reason."""
    healthy, rust, blatt = (root / name for name in CLASSES)
    good_jpeg = _encoded(_photo(CLASSES["healthy"], (96, 80), 20), "JPEG", quality=95)
    good_png = _encoded(_photo(CLASSES["rust"], (96, 80), 21), "PNG")
    bad: list[tuple[str, Path, bytes, str]] = [
        ("zero_bytes", healthy / "empty.jpg", b"", "empty file (0 bytes)"),
        ("truncated_jpeg", healthy / "cut.jpg", good_jpeg[: len(good_jpeg) // 2], "truncated JPEG"),
        ("truncated_png", rust / "cut.png", good_png[: len(good_png) // 2], "truncated PNG"),
        ("text_named_jpg", blatt / "notes.jpg", b"leaf 12 photographed twice\n" * 20, "looks like text"),
        (
            "html_named_png",
            rust / "saved page.png",
            b"<!DOCTYPE html>\n<html><head><title>Leaf</title></head><body>404</body></html>\n",
            "a web page",
        ),
        ("decompression_bomb", healthy / "bomb.png", _bomb_png(), "possible decompression bomb"),
        (
            "heic_photo",
            blatt / "IMG_0001.HEIC",
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
            "unsupported format",
        ),
        ("heic_named_jpg", blatt / "IMG_0002.jpg", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, "HEIC"),
        (
            "pdf_named_png",
            rust / "report.png",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n" + b"\x00" * 32,
            "a PDF",
        ),
    ]
    kinds = []
    for name, path, data, reason in bad:
        path.write_bytes(data)
        kinds.append(Kind(name, path, "skipped", reason))
    dangling = blatt / "moved away.jpg"
    dangling.symlink_to(root / "no such file.jpg")
    kinds.append(Kind("dangling_symlink", dangling, "skipped", "missing (file not found)"))
    if hasattr(os, "mkfifo"):  # opening a named pipe waits for a writer: a scan that opens it hangs
        os.mkfifo(rust / "pipe.jpg")
        kinds.append(Kind("named_pipe", rust / "pipe.jpg", "skipped", "not a regular file"))
    (blatt / "a.jpg").symlink_to("b.jpg")  # two links naming each other
    (blatt / "b.jpg").symlink_to("a.jpg")
    kinds.append(Kind("file_symlink_loop", blatt / "a.jpg", "skipped", "symbolic links"))
    kinds.append(Kind("file_symlink_loop_other_end", blatt / "b.jpg", "skipped", "symbolic links"))
    locked = healthy / "locked.jpg"
    locked.write_bytes(good_jpeg)
    kinds.append(Kind("unreadable", locked, "skipped", "permission denied"))
    return kinds


def _structure(root: Path) -> list[Kind]:
    """Folders: an empty class, a class of one image, a link loop, the same file under two classes."""
    kinds = []
    empty = root / "empty class"
    empty.mkdir()
    kinds.append(Kind("empty_class_folder", empty, "ignored"))
    single = root / SINGLE_CLASS
    single.mkdir()
    _photo((200, 200, 200), seed=30).save(single / "only.png")
    kinds.append(Kind("class_with_one_image", single / "only.png", "used", label=SINGLE_CLASS))
    loop = root / "healthy" / "loop"
    loop.symlink_to("..", target_is_directory=True)  # healthy/loop -> the dataset root
    kinds.append(Kind("symlink_loop", loop, "ignored"))
    link = root / "healthy" / "link to leaf 00.jpg"
    link.symlink_to("leaf 00.jpg")
    kinds.append(Kind("file_symlink", link, "used", label="healthy"))
    apple = root / "healthy" / "._leaf 00.jpg"  # macOS metadata beside each file on a FAT card
    apple.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 64)
    kinds.append(Kind("apple_double_file", apple, "ignored"))
    (root / "rust" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)  # Windows
    kinds.append(Kind("windows_thumbs_db", root / "rust" / "Thumbs.db", "ignored"))
    (root / "rust" / "folder.jpg").mkdir()
    kinds.append(Kind("folder_named_jpg", root / "rust" / "folder.jpg", "ignored"))
    twin = _encoded(_photo((120, 120, 60), seed=31), "JPEG")
    for name in ("healthy", "rust"):
        (root / name / "twin.jpg").write_bytes(twin)
        kinds.append(Kind(f"duplicate_in_{name}", root / name / "twin.jpg", "used", label=name))
    changing = root / "rust" / "changing.jpg"
    changing.write_bytes(_encoded(_photo(CLASSES["rust"], (96, 80), 32), "JPEG", quality=95))
    kinds.append(Kind("changes_while_read", changing, "used", label="rust"))
    return kinds


def _csv_files(root: Path) -> list[Kind]:
    """Label CSVs next to the class folders (``.csv`` files are not images: a folder scan passes them by)."""
    outside = root.parent / "outside.jpg"
    _photo((10, 10, 10), seed=40).save(outside)
    good = root / "labels.csv"
    rows = [
        "Path,Label,notes,group",  # extra columns, capitalised header, BOM (below)
        "healthy/leaf 00.jpg,healthy,first,plate 1",
        '"healthy/leaf, left.jpg",healthy,"quoted, with a comma",plate 1',
        "rust/leaf 01.png,rust,,plate 2",
        "Blatt fäule 葉/leaf 02.jpg,Blatt fäule 葉,,plate 3",
        "../outside.jpg,rust,outside the CSV's folder,",
        "/etc/passwd,rust,absolute path outside,",
        "healthy/loop/../outside.jpg,rust,out through the link loop,",  # lexically inside; really not
    ]
    good.write_bytes(b"\xef\xbb\xbf" + ("\n".join(rows) + "\n").encode("utf-8"))
    missing = root / "no path column.csv"
    missing.write_text("file,label\nhealthy/leaf 00.jpg,healthy\n", encoding="utf-8")
    return [
        Kind("csv_bom_extra_quoted", good, "used"),
        Kind("csv_missing_column", missing, "skipped", "'path' column"),
        Kind("csv_parent_path", outside, "skipped", "outside"),
        Kind("csv_absolute_path", Path("/etc/passwd"), "skipped", "outside"),
        Kind("csv_dotdot_after_link", outside, "skipped", "outside"),
    ]


def write_corpus(folder: Path) -> list[Kind]:
    """Write the mixed corpus into ``folder/data`` (one file outside it, for the CSVs); every kind."""
    root = Path(folder) / "data"
    root.mkdir(parents=True)
    return _good_images(root) + _odd_images(root) + _bad_files(root) + _structure(root) + _csv_files(root)


def corpus_root(kinds: list[Kind]) -> Path:
    """The class folder :func:`write_corpus` wrote ``kinds`` into."""
    return next(k.path for k in kinds if k.name == "good_0_0").parent.parent


def shown(path: Path) -> str:
    """``path`` as the app prints and shows it (bytes that are not UTF-8 as U+FFFD)."""
    return os.fsencode(path).decode("utf-8", "replace")


def by_name(kinds: list[Kind]) -> dict[str, Kind]:
    """``kinds`` by name."""
    return {k.name: k for k in kinds}


def folder_kinds(kinds: list[Kind]) -> list[Kind]:
    """The kinds a scan of the class folder meets (not the CSV ones)."""
    return [k for k in kinds if not k.name.startswith("csv_")]
