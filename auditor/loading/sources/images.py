"""A folder of images as data.

Two layouts:

- **class sub-folders** (``test_images/<class>/*.png``, as torchvision's ``ImageFolder``):
  the label of an image is its folder's name, in a column ``label``;
- **a flat folder and a labels table** (``--labels labels.csv``, CSV or Parquet): the table's
  ``file`` column (else its first) names each image relative to the folder, and its other
  columns (the label, sensitive columns, ...) go beside it. With class sub-folders a labels
  table adds columns too (its ``file`` column then holds paths like ``cat/001.png``).

Every example has a ``file`` column (its path relative to the folder). Images are read with
Pillow, several at a time on threads, as float32 in [0, 1], channels first, as the files hold
them: every image must then have the same size and mode, or the run says what to declare
(``--image-size``, ``--image-mode``, or ``image`` in the model's metadata, which may also give
a per-channel ``mean`` and ``std`` to normalise with). Files are taken in sorted order;
dot-files are ignored; any other file that is not an image is an error naming it, as is an
empty class, a corrupt or truncated image, or one past Pillow's decompression-bomb limit.
Symbolic links are not followed into folders (no loops), and a link to a file outside the
folder is refused unless ``--allow-symlinks``.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from auditor.contract.errors import DataError, UsageError
from auditor.loading.sources.base import MODES, ArraySource, ImageSpec

#: Extensions read as images (lower case); other files (but dot-files) are an error.
EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
#: Most files listed in one folder (a guard against a folder that is not a data set).
MAX_FILES = 10_000_000
_THREADS = max(1, min(8, os.cpu_count() or 1))
#: Images of at least this many values a row are decoded on threads (smaller ones are bound by Python, not decoding).
_THREADED_FROM = 1 << 16


def _images_in(folder: Path, root: Path, allow_symlinks: bool, skip: frozenset[Path] = frozenset(),
               strict: bool = True) -> tuple[list[Path], list[Path]]:
    """The image files and the sub-folders directly in ``folder``, sorted; ``skip``: files
    that are not data (the labels table kept in the folder); without ``strict``, other files
    that are not images are passed over instead of refused."""
    files, folders = [], []
    here = folder.resolve()
    passed_over = {p.name for p in skip if p.parent == here}  # resolved once, matched by name
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"The image folder {folder.name} cannot be listed ({exc.strerror or exc}).") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.name in passed_over:
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            folders.append(path)
            continue
        if entry.is_symlink():
            if entry.is_dir():
                raise DataError(f"{path.relative_to(root)} in {root.name} is a symbolic link to a folder; links to "
                                "folders are not followed (they can loop).",
                                hint="Copy or move the images into the data folder.")
            real = Path(os.path.realpath(path))
            if not allow_symlinks and root.resolve() not in real.parents:
                raise UsageError(f"{path.relative_to(root)} in {root.name} is a symbolic link that leads out of the "
                                 "data folder; auditor does not follow such links on its own.",
                                 hint="Pass --allow-symlinks if the links are meant (git-annex, DVC).")
        if not entry.is_file():
            raise DataError(f"{path.relative_to(root)} in {root.name} is not a regular file.",
                            hint="Keep only image files (and their class folders) in the data folder.")
        if path.suffix.lower() not in EXTENSIONS:
            if not strict:
                continue
            raise DataError(f"{path.relative_to(root)} in {root.name} is not an image file (by its name); an image "
                            f"folder holds only images ({', '.join(sorted(EXTENSIONS))}).",
                            hint="Move other files out of the data folder (dot-files are ignored).")
        files.append(path)
        if len(files) > MAX_FILES:
            raise DataError(f"The image folder {root.name} holds more than {MAX_FILES:,} files.")
    return files, folders


@dataclass
class ImageFolder(ArraySource):
    path: Path
    kind: str
    n_rows: int
    input_shape: tuple[int, ...]
    columns: list[str]
    files_: list[Path]
    spec: ImageSpec
    mode: str
    table: pa.Table
    labels_path: Path | None = None
    names_only: bool = False
    skip_unreadable: bool = False  # --skip-unreadable: a few corrupt images are left out and counted
    hashes_while_reading = True  # the pass asks for the digest after reading (see chunks)

    @classmethod
    def open(cls, path: Path, *, labels: Path | None, spec: ImageSpec, allow_symlinks: bool = False,
             names_only: bool = False, skip_unreadable: bool = False) -> ImageFolder:
        """The folder's images, listed; ``names_only``: listed only (no labels table needed,
        no image opened), for a scan of the file names."""
        skip = frozenset([labels.resolve()]) if labels is not None else frozenset()
        top, classes = _images_in(path, path, allow_symlinks, skip, strict=not names_only)
        if top and classes:
            raise DataError(f"The image folder {path.name} holds both images ({top[0].name}, ...) and folders "
                            f"({classes[0].name}, ...).",
                            hint="Use class sub-folders (folder/<class>/<image>) or a flat folder with --labels, not both.")
        columns: dict[str, list[Any]] = {}
        if classes:
            files: list[Path] = []
            names: list[str] = []
            for folder in classes:
                inside, deeper = _images_in(folder, path, allow_symlinks, skip, strict=not names_only)
                if deeper:
                    raise DataError(f"The class folder {folder.name} in {path.name} holds a folder ({deeper[0].name}); "
                                    "class folders hold images only.")
                if not inside:
                    raise DataError(f"The class folder {folder.name} in {path.name} holds no image.",
                                    hint="Remove the empty class folder, or add its images.")
                files += inside
                names += [folder.name] * len(inside)
            columns["label"] = names
        elif top:
            if labels is None and not names_only:
                raise UsageError(f"The image folder {path.name} has no class sub-folders, so the labels must come "
                                 "from a table.", hint="Pass --labels labels.csv (a file column and a label column), "
                                 "or sort the images into class folders (folder/<class>/<image>).")
            files = top
        else:
            raise DataError(f"The image folder {path.name} holds no image.",
                            hint="Point --data at a folder of class sub-folders of images, or of images with --labels.")
        top_level = len(path.parts)
        relative = ["/".join(f.parts[top_level:]) for f in files]
        table = pa.table({"file": relative, **columns})
        if names_only:
            return cls(path=path, kind="images", n_rows=len(files), input_shape=(0, 0, 0), columns=table.column_names,
                       files_=files, spec=spec, mode="", table=table, names_only=True)
        if labels is not None:
            table, files = _join_labels(path, labels, table, files)
        first = _probe_first(files, path, skip_unreadable)
        mode = spec.mode or first[0]
        size = spec.size or first[1]
        channels = MODES.get(mode, 1)
        if spec.mean is not None and len(spec.mean) not in (1, channels) or \
                spec.std is not None and len(spec.std) not in (1, channels):
            raise UsageError(f"The image mean and std need 1 or {channels} values ({mode}).")
        return cls(path=path, kind="images", n_rows=len(files), input_shape=(channels, size[0], size[1]),
                   columns=[c for c in table.column_names], files_=files, spec=spec, mode=mode, table=table,
                   labels_path=labels, skip_unreadable=skip_unreadable)

    def files(self) -> list[Path]:
        return list(self.files_)

    def head(self, rows: int) -> pa.Table:
        return self.table.slice(0, rows)

    def describe(self) -> str:
        if self.names_only:
            return f"a folder of {self.n_rows:,} images (file names" + (", class folders)" if "label" in self.columns
                                                                          else ")")
        return super().describe()

    def chunks(self, rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
        """Images a chunk at a time; each file is read once, for its pixels and its SHA-256
        (the digest). Large images are decoded on several threads (Pillow releases the GIL
        while it decodes); small ones in this thread, where a pool would only add overhead."""
        width = self.n_features
        self._hashes = [""] * self.n_rows
        self.skipped: list[str] = []
        pool = ThreadPoolExecutor(max_workers=_THREADS) if width >= _THREADED_FROM and _THREADS > 1 else None
        load = self._load_or_skip if self.skip_unreadable else self._load
        try:
            for start in range(0, self.n_rows, rows):
                stop = min(start + rows, self.n_rows)
                X = np.empty((stop - start, width), dtype=np.float32)
                files = self.files_[start:stop]
                kept = np.ones(stop - start, dtype=bool)
                for i, (values, digest) in enumerate(pool.map(load, files) if pool else map(load, files)):
                    self._hashes[start + i] = digest
                    if values is None:
                        kept[i] = False
                        continue
                    X[i] = values.reshape(-1)
                table = self.table.slice(start, stop - start)
                if not kept.all():
                    self._check_skipped()
                    table, X = table.filter(pa.array(kept)), X[kept]
                yield table, X
        finally:
            if pool is not None:
                pool.shutdown()

    def _load_or_skip(self, file: Path) -> tuple[np.ndarray | None, str]:
        """As :meth:`_load`, but an image that does not decode is left out (None) and counted."""
        try:
            return self._load(file)
        except DataError as exc:
            if "cannot be read" in exc.message or "not all of one" in exc.message:
                raise  # a file that is gone, or a size or mode to declare: not an unreadable image
            self.skipped.append(file.relative_to(self.path).as_posix())
            try:
                return None, hashlib.sha256(file.read_bytes()).hexdigest()
            except OSError:
                return None, "unreadable"

    def _check_skipped(self) -> None:
        """Leave out a few unreadable images, never many: past 1% of the folder, or all of it,
        the data need fixing, not skipping."""
        most = max(1, self.n_rows // 100)
        if len(self.skipped) > most:
            raise DataError(
                f"{len(self.skipped):,} images in {self.path.name} do not decode (e.g. {self.skipped[0]}), more than "
                f"the 1% (--skip-unreadable leaves out at most {most:,} of {self.n_rows:,}).",
                hint="Find and fix or remove the broken files: this many is a problem with the data set.")

    def digest(self) -> str:
        """The manifest's SHA-256, from the hashes taken while the images were read (the
        files are read again only when they were not all read)."""
        hashes = getattr(self, "_hashes", None)
        if not hashes or not all(hashes):
            return super().digest()
        manifest = hashlib.sha256()
        for file, digest in zip(self.files_, hashes):
            manifest.update(f"{file.relative_to(self.path).as_posix()}\0{digest}\n".encode())
        return manifest.hexdigest()

    def _load(self, file: Path) -> tuple[np.ndarray, str]:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise DataError(f"The image {file.relative_to(self.path)} in {self.path.name} cannot be read "
                            f"({exc.strerror or exc}).") from None
        return self._read(file, data), hashlib.sha256(data).hexdigest()

    def _read(self, file: Path, data: bytes | None = None) -> np.ndarray:
        """One image as float32 (C, H, W) in [0, 1], normalised when declared."""
        shown = file.relative_to(self.path).as_posix()
        image = decode(io.BytesIO(data) if data is not None else file, shown, self.path.name)
        return image_values(image, self.spec, self.mode, self.input_shape, shown, self.path.name)


def image_values(image: Any, spec: ImageSpec, mode: str, shape: tuple[int, ...], shown: str, where: str) -> np.ndarray:
    """A decoded image (closed here) as float32 (C, H, W) in [0, 1], in ``mode`` and of ``shape``
    (converted and resized only when ``spec`` declares it), normalised when declared."""
    try:
        got = _mode_of(image)
        if got != mode:
            if spec.mode is None:
                raise DataError(
                    f"The images in {where} are not all of one mode: {shown} is {got}, the first is {mode}.",
                    hint=f"Declare the mode to convert them to: --image-mode {mode} (or image.mode in the "
                    "model's metadata).")
            image = image.convert(spec.mode)
        elif image.mode != got and not image.mode.startswith("I;16"):  # 16-bit grey stays 16-bit
            image = image.convert(got)
        height, width = shape[1], shape[2]
        if image.size != (width, height):
            if spec.size is None:
                raise DataError(
                    f"The images in {where} are not all of one size: {shown} is "
                    f"{image.size[1]}x{image.size[0]} (height x width), the first {height}x{width}.",
                    hint=f"Declare the size to resize them to: --image-size {height}x{width} (or image.size in "
                    "the model's metadata).")
            from PIL import Image

            image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image)
    finally:
        image.close()
    scale = 65535.0 if array.dtype == np.uint16 else (255.0 if array.dtype == np.uint8 else 1.0)
    values = array.astype(np.float32) / np.float32(scale) if scale != 1.0 else array.astype(np.float32)
    values = values[None, :, :] if values.ndim == 2 else np.moveaxis(values, -1, 0)
    if spec.mean is not None:
        values = values - np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    if spec.std is not None:
        values = values / np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return values


def _mode_of(image: Any) -> str:
    """The mode an image is read as, as the file holds it: palette images as RGB (RGBA when
    transparent), 1-bit and 16-bit grey as L-like grey; others as they are."""
    mode = image.mode
    if mode == "P":
        return "RGBA" if "transparency" in image.info else "RGB"
    if mode in ("1", "I;16", "I;16B", "I;16L", "I", "F"):
        return "L"
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return "RGB"
    if mode == "PA":
        return "RGBA"
    return mode if mode in MODES else "RGB"


def decode(source: Any, shown: str, where: str) -> Any:
    """Open and decode an image (a path or a file object), as a one-line ``DataError`` naming
    it (``shown`` in ``where``) when it is not an image, is corrupt or truncated, or is past
    Pillow's decompression-bomb limit."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"The image {shown} in {where} has more pixels than Pillow reads safely "
                        f"({Image.MAX_IMAGE_PIXELS:,}): it may be a decompression bomb.",
                        hint="Resize it, or remove it from the data.") from None
    except UnidentifiedImageError:
        raise DataError(f"The file {shown} in {where} is not an image Pillow can read.",
                        hint="Remove it, or save it again as PNG or JPEG.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        said = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataError(f"The image {shown} in {where} is corrupt or truncated ({said}).",
                        hint="Remove it, or save it again.") from None
    return image


def _decoded(file: Path, root: Path, data: bytes | None = None) -> Any:
    return decode(io.BytesIO(data) if data is not None else file, file.relative_to(root).as_posix(), root.name)


def _probe_first(files: list[Path], root: Path, skip_unreadable: bool) -> tuple[str, tuple[int, int]]:
    """The mode and size of the first image (of the first that decodes, when unreadable ones
    may be skipped: at most 1% of them are tried)."""
    tries = max(1, len(files) // 100) + 1 if skip_unreadable else 1
    for file in files[:tries]:
        try:
            image = _decoded(file, root)
        except DataError:
            if file == files[:tries][-1] or not skip_unreadable:
                raise
            continue
        try:
            return _mode_of(image), (image.size[1], image.size[0])
        finally:
            image.close()
    raise AssertionError("unreachable")


def _join_labels(root: Path, labels: Path, listed: pa.Table, files: list[Path]) -> tuple[pa.Table, list[Path]]:
    """The labels table's rows in the order of its file column, each joined to its image."""
    from auditor.loading.sample_rows import read_table

    table = read_table(labels).table
    if table.num_rows == 0:
        raise DataError(f"The labels table {labels.name} has no rows.")
    key = "file" if "file" in table.column_names else table.column_names[0]
    names = [str(v) for v in table.column(key).to_pylist()]
    index = {name: i for i, name in enumerate(listed.column("file").to_pylist())}
    missing = [name for name in names if name not in index]
    if missing:
        raise DataError(f"The labels table {labels.name} names {len(missing):,} file(s) not in the folder "
                        f"{root.name}, e.g. {missing[0]!r}.",
                        hint=f"Its {key!r} column must hold paths relative to {root.name}, like "
                        f"{listed.column('file')[0].as_py()!r}.")
    if len(set(names)) != len(names):
        raise DataError(f"The labels table {labels.name} names a file twice in its {key!r} column.")
    order = [index[name] for name in names]
    joined = {"file": pa.array(names)}
    for column in listed.column_names:
        if column != "file" and column not in table.column_names:
            joined[column] = listed.column(column).take(pa.array(order))
    for column in table.column_names:
        if column != key:
            joined[column] = table.column(column)
    return pa.table(joined), [files[i] for i in order]
