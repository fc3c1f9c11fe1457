"""Read a JPEG's frame header and check that it is complete, without decoding any pixels.

    frame = jpeg_frame(data)    # JpegFrame(width, height, components, precision, process,
                                #           complete) or None when `data` is no JPEG we
                                # can walk (not a JPEG, a broken segment, no frame header)

The walk follows the marker segments from SOI to the first SOS (start of scan): each
segment is a 0xFF marker and a 2-byte big-endian length, so a header costs a few
microseconds however large the image is. The frame header (SOFn) gives the size, the
number of components (3 is what PIL opens as mode RGB, 1 is L, 4 is CMYK), the sample
precision and the coding process (`process` = n of SOFn: 0 baseline, 1 extended, 2
progressive Huffman; the others are lossless, hierarchical or arithmetic-coded).

`complete` says that an EOI marker (FF D9) follows the first scan's data. Entropy-coded data
never holds FF D9 (a coded 0xFF is always followed by 0x00, or is a restart marker D0-D7),
so a file cut short anywhere after its header has no EOI there. That is the failure a full
decode catches: PIL raises on every truncated JPEG, but on corrupted scan data libjpeg only
warns and PIL decodes garbage (5 of 500 noise and block JPEGs with 3 flipped scan bytes
raised, measured while writing this module), so decoding buys little over this check.
A table segment between progressive scans could hold the bytes FF D9 by chance; a file cut
after them would pass here and fail in `curate verify`, which decodes every image.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
SOS = 0xDA
# SOFn markers are C0-CF except DHT (C4), JPG (C8) and DAC (CC).
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length field: TEM and the restart markers RST0-7.
STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


class JpegFrame(NamedTuple):
    """What the frame header says, and whether the file reaches its EOI marker."""

    width: int
    height: int
    components: int  # 1 grayscale, 3 YCbCr/RGB, 4 CMYK/YCCK
    precision: int  # bits per sample: 8 for nearly every JPEG, 12 for some medical images
    process: int  # n of the SOFn marker: 0 baseline, 1 extended sequential, 2 progressive
    complete: bool  # an EOI marker follows the first scan's data


def jpeg_frame(data: bytes | memoryview) -> JpegFrame | None:
    """The frame header of the JPEG `data` (bytes, or a memoryview of a read buffer), or
    None when the segments before the first scan cannot be walked (not a JPEG, a segment
    running past the end, no SOFn, zero height)."""
    if data[:2] != SOI:
        return None
    size = len(data)
    pos = 2
    frame: tuple[int, int, int, int, int] | None = None
    while True:
        if pos + 2 > size or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte: markers may be preceded by any number of them
            pos += 1
            continue
        if marker in STANDALONE:
            pos += 2
            continue
        if marker in (0x00, 0xD8, 0xD9) or pos + 4 > size:
            return None  # a stuffed byte, a second SOI, or EOI before any scan
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > size:
            return None
        if marker in SOF_MARKERS:
            if length < 8:
                return None
            precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 4)
            frame = (width, height, components, precision, marker - 0xC0)
        elif marker == SOS:
            if frame is None or frame[1] == 0:  # height 0: given later by a DNL marker
                return None
            return JpegFrame(*frame, complete=_has_eoi(data, end))
        pos = end


def _has_eoi(data: bytes | memoryview, start: int) -> bool:
    """Whether EOI occurs at or after `start`. Nearly every file ends with it; the others
    (cut short, or with bytes appended after EOI) are searched whole."""
    if len(data) - 2 >= start and data[-2:] == EOI:
        return True
    return EOI in bytes(data[start:])
