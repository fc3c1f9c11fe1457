"""shards.jpeg: frame headers as PIL reads them; every truncation found without decoding."""

from __future__ import annotations

import io

import pytest

from shards.jpeg import jpeg_frame
from tests.shards.dataset import pattern_image


def encode(mode: str, size: tuple[int, int], **save: object) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, 90 if mode == "L" else (200, 90, 40, 0)[: len(mode)]).save(
        buf, format="JPEG", **save
    )
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "save", "components", "process"),
    [
        ("RGB", {}, 3, 0),
        ("RGB", {"progressive": True}, 3, 2),
        ("L", {}, 1, 0),
        ("CMYK", {}, 4, 0),
    ],
)
def test_frame_matches_pil(mode: str, save: dict, components: int, process: int) -> None:
    from PIL import Image

    data = encode(mode, (37, 21), **save)
    frame = jpeg_frame(data)
    assert frame is not None
    with Image.open(io.BytesIO(data)) as img:
        assert (frame.width, frame.height) == img.size == (37, 21)
        assert img.mode == mode
    assert (frame.components, frame.precision, frame.process) == (components, 8, process)
    assert frame.complete


@pytest.mark.parametrize("progressive", [False, True])
def test_every_truncation_is_incomplete(progressive: bool) -> None:
    """A file cut anywhere after its first scan header lacks its EOI (PIL would raise)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(pattern_image(3, (64, 48)))).save(
        buf, format="JPEG", progressive=progressive
    )
    data = buf.getvalue()
    first_scan = data.index(b"\xff\xda")
    cuts = range(first_scan + 14, len(data) - 1)  # past the first SOS header, before EOI
    assert len(cuts) > 100
    assert all(jpeg_frame(data[:cut]).complete is False for cut in cuts)
    for cut in cuts[::97]:  # what a full decode says of the same cuts
        with pytest.raises(OSError, match="truncated"), Image.open(io.BytesIO(data[:cut])) as img:
            img.load()
    assert jpeg_frame(data + b"trailing bytes, as some cameras append").complete


def test_eoi_inside_a_header_segment_is_not_taken_for_the_end() -> None:
    """An EXIF thumbnail (a whole JPEG with its own EOI) sits before the scan; cutting the
    image's scan data must still count as truncated."""
    data = encode("RGB", (40, 40))
    thumbnail = encode("RGB", (8, 8))
    payload = b"Exif\x00\x00" + thumbnail
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    with_thumbnail = data[:2] + app1 + data[2:]
    assert jpeg_frame(with_thumbnail).complete
    assert (jpeg_frame(with_thumbnail).width, jpeg_frame(with_thumbnail).height) == (40, 40)
    assert jpeg_frame(with_thumbnail[:-10]).complete is False


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a",
        b"\xff\xd8",  # SOI only
        b"\xff\xd8\xff\xe0 not really a jpeg",  # the length runs past the end
        b"\xff\xd8\xff\xd9",  # EOI before any frame
        b"\xff\xd8\xff\xda\x00\x08" + bytes(6) + b"\xff\xd9",  # a scan without a frame
    ],
)
def test_unwalkable_is_none(data: bytes) -> None:
    assert jpeg_frame(data) is None


def test_header_cut_short_is_none() -> None:
    data = encode("RGB", (30, 20))
    first_scan = data.index(b"\xff\xda")
    assert all(jpeg_frame(data[:cut]) is None for cut in range(2, first_scan + 4))


def test_a_view_of_a_read_buffer_reads_as_bytes() -> None:
    """Staging hands views of a reused read buffer to the walk: the same frame as from
    bytes at every cut, and nothing past the view's end (the buffer's next file) counts."""
    data = pattern_image(5, (64, 48))
    for blob in (data, data + b"trailing", *(data[:cut] for cut in range(0, len(data), 7))):
        assert jpeg_frame(memoryview(blob)) == jpeg_frame(blob)
    buffer = bytearray(data + data)  # a cut file followed by a complete one
    assert jpeg_frame(memoryview(buffer)[: len(data) - 5]).complete is False
    assert jpeg_frame(memoryview(buffer)[len(data) :]).complete
