"""Real, decodable pictures for simulated devices: a car in front of a barrier (160×120
JPEG, for plate cameras and the environment camera) and an ID card (PNG, for the robot's
ID camera).

Drawn once in a browser canvas and kept as bytes, so photos from ``eppark sim`` and
``eppark demo`` show in the back office and on the robot's screen instead of a
broken image.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable
from typing import Final

CAR_JPEG: Final = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEA"
    "AAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRi"
    "WFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAA"
    "ADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABi"
    "mQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKn"
    "AAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMA"
    "LgAgADIAMAAxADb/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNS"
    "Mj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09P"
    "T09PT09PT09PT0//wAARCAB4AKADASIAAhEBAxEB/8QAGgABAAMBAQEAAAAAAAAAAAAAAAIFBgQHA//EADgQAAEABQgH"
    "BgUFAAAAAAAAAAABAgMEBQYRFRZUoqPREhRSU4Ky0hMhNWSh4TQ2cYGxMUFCUWH/xAAYAQEBAQEBAAAAAAAAAAAAAAAA"
    "AwIBBP/EAB8RAQEAAgEFAQEAAAAAAAAAAAABAhIDERMUYWKRMf/aAAwDAQACEQMRAD8AswAeh5gAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAJM2a7VohRmidZP6IInTDvjmf3/CRXZ/Sj3rdXkZij3rdXkZls+PbBxdV"
    "3l6admxUm0lpkpmnTMjuR/qSrrbArdgr9JPeqaRGj3rdXkZij3rdXkZkq2wK3YK/SK2wK3YK/SN6aRGj3rdXkZij3rdX"
    "kZkq2wK3YK/SK2wK3YK/SN6aRGj3rdXkZij3rdXkZkq2wK3YK/SK2wK3YK/SN6aRGj3rdXkZij3rdXkZkq2wK3YK/SK2"
    "wK3YK/SN6aRGj3rdXkZij3rdXkZkq2wK3YK/SWjm9sH51UeXVp2jFefRWmSieZMye5P+oG9NIomjNdk0So0RMsj9UETp"
    "iPxzT7fhBzFInf6AAOAKmmvL3/YU15e/7Gdo1rVsdMO+OZ/f8JKCmvL3/Y74JE9YizBl2OjpaXfpT/xSn+hcp0dmN6rK"
    "WXyu+cHOqeXnqEsvld84OdU8vJqgAAAAAAAAAAHqEjfldz4+dY8vPUJG/K7nx86wEYj8c0+34Qcx8I3E9Xizdl2Olo6P"
    "fpTfxQn+jgpry9/2KTKdErjeq2BU015e/wCwpry9/wBhtHNaqQATWC1kz4+7cXKkqi1kz4+7cXKkDegAAAZSJRCMryja"
    "Q6GNZ0pm7NnoqbCFk96yPqU4uK8lslZyymMasGY1aW2x6sRq0ttj1YlPH+8f1nueq04Mxq0ttj1YjVpbbHqxHj/eP6dz"
    "1WnBlIbEIypKNnDom1mSiftGeipsJWR3qo+hqyfLxXjslrWOUygACbTBSm8feeHlQVRaym8feeHlQVQAAAAAALWTPj7t"
    "xcqSqPq7PDZ0eFW7uvoNFJ5lpkJmnRN+4HpoMFWKLWvDUyFYota8NTIDemUiUPjKko2kRhjKZKJuzaaSmwhVPcsn6lbW"
    "KLWvDUyFYota8NTIpxct47bIzljMottZltt+jEazLbb9GJU1ii1rw1MhWKLWvDUyKeR8Y/jPb91bazLbb9GI1mW236MS"
    "prFFrXhqZCsUWteGpkPI+Mfw7furKGw+MryjZxGJsp0pn7RppKbCVUdyqfoaswVYota8NTIVii1rw1MifLy3kstjWOMx"
    "jegwVYota8NTIVii1rw1MibRKbx954eVBVH1eXhs9vCzd4X02i8060yETzIm/Y+QAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAH//Z"
)


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """A truecolour PNG of ``width``×``height`` whose colour at (x, y) is ``pixel(x, y)``."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def id_card_png(seed: int = 1) -> bytes:
    """An ID card held up to the robot's ID camera (160×100 PNG): a portrait and text lines.

    ``seed`` varies the card's tint and line lengths, so several photos differ.
    """
    tint = (180 + seed * 23 % 60, 205 + seed * 11 % 40, 235)
    lines = [(24 + (seed * 7 + i * 13) % 50) for i in range(4)]

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if x < 6 or x >= 154 or y < 6 or y >= 94:
            return (60, 60, 60)  # the hand-held card's dark surround
        if 14 <= x < 52 and 16 <= y < 66:  # the portrait
            head = (x - 33) ** 2 + (y - 34) ** 2 < 110
            inside = head or (x - 33) ** 2 // 3 + (y - 66) ** 2 < 330
            return (90, 70, 60) if inside else (230, 230, 230)
        for index, length in enumerate(lines):
            top = 20 + index * 14
            if top <= y < top + 5 and 62 <= x < 62 + length + 30:
                return (40, 40, 90)
        if 76 <= y < 84 and 14 <= x < 146:  # the number line
            return (120, 40, 40) if (x // 6) % 2 else tint
        return tint

    return png(160, 100, pixel)
