"""A reader for Qt binary resource files (.rcc), where GCompris keeps its photographs.

Format (Qt's rcc, versions 1-3): the header "qres", version, and the offsets of three tables,
all big-endian. The tree is an array of nodes, 14 bytes each (22 from version 2: + a timestamp):
name offset, flags (1 zlib, 2 directory, 4 zstd), then either (child count, first child index)
or (territory, language, data offset). A name is (uint16 length, uint32 hash, UTF-16BE text);
a file's data is (uint32 size, bytes), and zlib data starts with its uint32 uncompressed size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x01, 0x02, 0x04


class RccError(ValueError):
    pass


def read_rcc(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield (path inside the resource, file bytes) for every file in a .rcc resource."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"qres":
        raise RccError(f"{path} is not a Qt resource file (no 'qres' header)")
    version, tree, data, names = struct.unpack(">4i", buf[4:20])
    if version not in (1, 2, 3):
        raise RccError(f"{path}: unsupported rcc version {version}")
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", buf[names + offset: names + offset + 2])
        start = names + offset + 6  # skip the length and the uint32 hash
        return buf[start: start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">iH", buf[at: at + 6])
        here = prefix + "/" + name(name_offset) if index else ""
        if flags & DIRECTORY:
            count, first = struct.unpack(">ii", buf[at + 6: at + 14])
            for child in range(first, first + count):
                yield from walk(child, here)
            return
        (offset,) = struct.unpack(">i", buf[at + 10: at + 14])
        (size,) = struct.unpack(">I", buf[data + offset: data + offset + 4])
        payload = buf[data + offset + 4: data + offset + 4 + size]
        if flags & COMPRESSED_ZSTD:
            raise RccError(f"{path}:{here} is zstd-compressed, which this reader does not handle")
        if flags & COMPRESSED:
            payload = zlib.decompress(payload[4:])
        yield here, payload

    yield from walk(0, "")
