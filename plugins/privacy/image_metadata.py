"""What the metadata of image files give away: GPS positions, camera serial numbers, owners.

Photos carry EXIF tags the pixels do not show: where they were taken (GPS), the camera's and
lens's serial numbers (which tie images to one device, hence one person), the owner's or
artist's name, and free-text descriptions; PNG files can carry text chunks (Author, ...).
Each image of a sample is opened for its metadata only (no pixel is decoded) and counted by
the kinds it holds; no value is ever kept or reported.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

#: EXIF tags (base IFD and the Exif sub-IFD) by the kind of personal data they hold.
EXIF_KINDS = {
    0x8825: "GPS position",  # GPSInfo
    0xA431: "camera serial number",  # BodySerialNumber
    0xC62F: "camera serial number",  # CameraSerialNumber (DNG)
    0xA435: "lens serial number",  # LensSerialNumber
    0xA430: "owner name",  # CameraOwnerName
    0x013B: "artist name",  # Artist
    0x9C9D: "author name",  # XPAuthor
    0x010E: "free-text description",  # ImageDescription
    0x9286: "free-text comment",  # UserComment
    0x9C9C: "free-text comment",  # XPComment
}
#: Text keys of PNG (and other formats') info that name people.
TEXT_KINDS = {"author": "author name", "artist": "artist name", "owner": "owner name", "comment": "free-text comment",
              "description": "free-text description"}
_EXIF_IFD = 0x8769


def kinds_in(file: Path) -> set[str]:
    """The kinds of personal metadata ``file`` holds (empty when none, or unreadable)."""
    from PIL import Image

    found: set[str] = set()
    try:
        with Image.open(file) as image:
            exif = image.getexif()
            tags = dict(exif)
            try:
                tags.update(exif.get_ifd(_EXIF_IFD))
            except (KeyError, ValueError, TypeError):
                pass
            for tag, value in tags.items():
                kind = EXIF_KINDS.get(int(tag))
                if kind and value not in (None, b"", "", 0):
                    found.add(kind)
            for key, value in (image.info or {}).items():
                kind = TEXT_KINDS.get(str(key).lower())
                if kind and isinstance(value, (str, bytes)) and value.strip():
                    found.add(kind)
    except Exception:  # noqa: BLE001 - a file Pillow cannot open holds nothing we can read; the loader judges it
        return set()
    return found


def scan(files: Iterable[Path]) -> tuple[Counter[str], int]:
    """How many of ``files`` hold each kind, and how many were scanned."""
    counts: Counter[str] = Counter()
    scanned = 0
    for file in files:
        scanned += 1
        counts.update(kinds_in(file))
    return counts, scanned
