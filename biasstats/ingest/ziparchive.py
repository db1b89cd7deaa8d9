"""A small zip reader for evaluation logs: members stored, deflated or zstd-compressed.

Python's :mod:`zipfile` does not know zstd (method 93), which Inspect AI writes since
0.3.215. This reader takes the member list from the central directory (zip64 included),
finds each member's data through its local header and decompresses it itself:

* stored (0), deflate (8) and zstd (93, any number of frames) members;
* a byte budget shared by every member read from one archive (``[data]
  max_decompressed_bytes``): decompression stops as soon as it is passed, so a small
  archive cannot fill the memory;
* each member must expand to exactly its declared size and match its CRC-32.

Every failure is a one-line :class:`DataError` naming the file and the member.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from biasstats.errors import DataError
from biasstats.ingest.guards import too_big

__all__ = ["Budget", "ZipArchive"]

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_CHUNK = 1 << 16
_METHODS = {0: "stored", 8: "deflate", 93: "zstd"}


class Budget:
    """Decompressed bytes left for one archive; :meth:`take` raises once they run out."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes, self.left = path, max_bytes, max_bytes

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise too_big(self.path, self.max_bytes)


@dataclass(frozen=True)
class Member:
    name: str
    method: int
    flags: int
    crc: int
    compressed: int
    size: int
    offset: int  # of the local header


class ZipArchive:
    """The members of a zip archive held in ``data`` (the bytes of ``path``)."""

    def __init__(self, path: Path, data: bytes, what: str = "zip archive") -> None:
        self.path, self.data = path, data
        self._bad = f"{path}: not a readable {what}"
        self.members: dict[str, Member] = {}
        for m in self._central_directory():
            self.members[m.name] = m  # a name written twice: the last one wins

    # ------------------------------------------------------------------ structure

    def _fail(self, why: str) -> DataError:
        return DataError(f"{self._bad} ({why})")

    def _unpack(self, fmt: str, offset: int) -> tuple:
        try:
            return struct.unpack_from(fmt, self.data, offset)
        except struct.error:
            raise self._fail("truncated archive") from None

    def _end_record(self) -> tuple[int, int, int]:
        """(entries, central directory size, central directory offset)."""
        data = self.data
        pos = data.rfind(_EOCD, max(0, len(data) - 22 - 65535))
        if pos < 0:
            raise self._fail("no end of central directory record: the file is cut short or not a zip archive")
        (_, _, _, _, entries, cd_size, cd_offset, _) = self._unpack("<4sHHHHIIH", pos)
        if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
            loc = pos - 20
            if loc < 0 or data[loc:loc + 4] != _EOCD64_LOCATOR:
                raise self._fail("zip64 archive without its end record locator")
            (_, _, rec, _) = self._unpack("<4sIQI", loc)
            if data[rec:rec + 4] != _EOCD64:
                raise self._fail("bad zip64 end of central directory record")
            (_, _, _, _, _, _, _, entries, cd_size, cd_offset) = self._unpack("<4sQHHIIQQQQ", rec)
        if cd_offset + cd_size > len(data):
            raise self._fail("central directory runs past the end of the file")
        return entries, cd_size, cd_offset

    def _central_directory(self) -> list[Member]:
        entries, _, pos = self._end_record()
        out = []
        for _ in range(entries):
            if self.data[pos:pos + 4] != _CENTRAL:
                raise self._fail("bad central directory entry")
            (_, _, _, flags, method, _, _, crc, csize, usize, n_name, n_extra, n_comment,
             _, _, _, offset) = self._unpack("<4sHHHHHHIIIHHHHHII", pos)
            raw_name = self.data[pos + 46:pos + 46 + n_name]
            extra = self.data[pos + 46 + n_name:pos + 46 + n_name + n_extra]
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
            if 0xFFFFFFFF in (usize, csize, offset):
                usize, csize, offset = self._zip64(extra, usize, csize, offset)
            out.append(Member(name, method, flags, crc, csize, usize, offset))
            pos += 46 + n_name + n_extra + n_comment
        return out

    def _zip64(self, extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
        i = 0
        while i + 4 <= len(extra):
            tag, size = struct.unpack_from("<HH", extra, i)
            if tag == 1:
                values = extra[i + 4:i + 4 + size]
                fields = [usize, csize, offset]
                j = 0
                for k in range(3):
                    if fields[k] == 0xFFFFFFFF:
                        if j + 8 > len(values):
                            raise self._fail("bad zip64 extra field")
                        fields[k] = struct.unpack_from("<Q", values, j)[0]
                        j += 8
                return fields[0], fields[1], fields[2]
            i += 4 + size
        raise self._fail("zip64 sizes missing")

    # ------------------------------------------------------------------ reading

    def names(self) -> list[str]:
        return list(self.members)

    def declared_size(self, names) -> int:
        return sum(self.members[n].size for n in names if n in self.members)

    def read(self, name: str, budget: Budget) -> bytes:
        """The member's bytes, decompressed, checked against its size and CRC-32."""
        m = self.members[name]
        where = f"{self.path}: {name} in the archive"
        if m.flags & 0x1:
            raise DataError(f"{where} is encrypted")
        if m.method not in _METHODS:
            raise DataError(f"{where} uses compression method {m.method} (expected stored, "
                            f"deflate or zstd)")
        if self.data[m.offset:m.offset + 4] != _LOCAL:
            raise DataError(f"{where}: bad local header")
        (_, _, _, _, _, _, _, _, _, n_name, n_extra) = self._unpack("<4sHHHHHIIIHH", m.offset)
        start = m.offset + 30 + n_name + n_extra
        raw = self.data[start:start + m.compressed]
        if len(raw) != m.compressed:
            raise DataError(f"{where}: truncated (the file ends inside it)")
        chunks, size = [], 0
        for chunk in self._expand(m, raw, where):
            size += len(chunk)
            if size > m.size:
                raise DataError(f"{where} expands past its declared size of {m.size:,} bytes")
            budget.take(len(chunk))
            chunks.append(chunk)
        if size != m.size:
            raise DataError(f"{where} expands to {size:,} bytes, not its declared {m.size:,}")
        out = b"".join(chunks)
        if zlib.crc32(out) != m.crc:
            raise DataError(f"{where} fails its CRC-32 check (the archive is damaged)")
        return out

    def _expand(self, m: Member, raw: bytes, where: str):
        """The member's decompressed bytes, chunk by chunk (at most _CHUNK at a time)."""
        if m.method == 0:
            for i in range(0, len(raw), _CHUNK):
                yield raw[i:i + _CHUNK]
            return
        if m.method == 8:
            d = zlib.decompressobj(-15)
            data = raw
            try:
                while not d.eof:
                    chunk = d.decompress(data, _CHUNK)
                    data = d.unconsumed_tail
                    if not chunk and not data:
                        break
                    yield chunk
            except zlib.error as e:
                raise DataError(f"{where}: not valid deflate data ({e})") from None
            return
        # zstandard is imported only for a zstd member
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
        try:
            while chunk := reader.read(_CHUNK):
                yield chunk
        except zstandard.ZstdError as e:
            raise DataError(f"{where}: not valid zstd data ({e})") from None
