#!/usr/bin/env python3
"""Decodes PNG files with Python's zlib and a few lines of chunk parsing (an independent decoder,
not the package's): checks the signature, every chunk CRC, IHDR (8-bit grey or RGB, no
interlace), the inflated size and filter bytes, and prints size and a pixel checksum.
Usage: python3 scripts/check_png.py FILE.png [...]   (run by hand; exit 1 on the first bad file)
"""
import struct
import sys
import zlib

for path in sys.argv[1:]:
    raw = open(path, "rb").read()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: bad signature"
    pos, idat, ihdr = 8, b"", None
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, data = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", raw[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"{path}: bad CRC in {kind}"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, color, _, _, interlace = ihdr
    assert depth == 8 and color in (0, 2) and interlace == 0, f"{path}: unexpected IHDR {ihdr}"
    channels = 1 if color == 0 else 3
    pixels = zlib.decompress(idat)
    row = width * channels + 1
    assert len(pixels) == row * height, f"{path}: {len(pixels)} bytes, expected {row * height}"
    assert all(pixels[y * row] == 0 for y in range(height)), f"{path}: unexpected filter type"
    body = b"".join(pixels[y * row + 1:(y + 1) * row] for y in range(height))
    print(f"{path}: {width}x{height} {'grey' if channels == 1 else 'RGB'}, pixel sum {sum(body)}, adler32 {zlib.adler32(body):08x}")
