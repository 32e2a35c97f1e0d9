"""Audio content types: client aliases, container sniffing and duration.

Phones name the same container in several ways (iOS sends ``audio/x-m4a``,
``audio/m4a`` or ``audio/mp4`` for one AAC file). Every alias is normalised here,
once, to a canonical type that is signed into the upload URL and stored on the note.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass

from functions.errors import PermanentProcessingError
from functions.models import FailureReason

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioType:
    """A canonical audio content type and the file extension used in object names."""

    mime: str
    extension: str
    container: str
    """Container family as sniffed from the bytes: mp4, ogg, webm, mp3, wav, flac, 3gp."""


_CANONICAL: dict[str, AudioType] = {
    "audio/mp4": AudioType("audio/mp4", "m4a", "mp4"),
    "audio/ogg": AudioType("audio/ogg", "ogg", "ogg"),
    "audio/webm": AudioType("audio/webm", "webm", "webm"),
    "audio/mpeg": AudioType("audio/mpeg", "mp3", "mp3"),
    "audio/wav": AudioType("audio/wav", "wav", "wav"),
    "audio/flac": AudioType("audio/flac", "flac", "flac"),
    "audio/3gpp": AudioType("audio/3gpp", "3gp", "mp4"),
    "audio/aac": AudioType("audio/aac", "aac", "aac"),
}

_ALIASES: dict[str, str] = {
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/mp4a-latm": "audio/mp4",
    "audio/opus": "audio/ogg",
    "audio/x-opus+ogg": "audio/ogg",
    "audio/mp3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/3gp": "audio/3gpp",
    "audio/x-aac": "audio/aac",
}

ACCEPTED_TYPES: tuple[str, ...] = tuple(sorted({*_CANONICAL, *_ALIASES}))


def canonical_type(content_type: str) -> AudioType | None:
    """Return the canonical type for a client content type, or None if it is not audio we accept.

    Parameters such as ``; codecs=opus`` and letter case are ignored.
    """
    base = content_type.split(";", 1)[0].strip().lower()
    return _CANONICAL.get(_ALIASES.get(base, base))


def audio_type_for_extension(extension: str) -> AudioType | None:
    """Return the canonical type whose object-name extension is ``extension``."""
    for audio_type in _CANONICAL.values():
        if audio_type.extension == extension:
            return audio_type
    return None


def sniff_container(data: bytes) -> str | None:
    """Name the container family from the first bytes, or None if none matches.

    Returns one of ``mp4`` (also M4A and 3GP, by the ``ftyp`` box), ``ogg``,
    ``webm``, ``mp3``, ``wav``, ``flac`` or ``aac`` (ADTS).
    """
    head = data[:64]
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "aac"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"
    return None


def check_audio(data: bytes, declared: AudioType, *, max_bytes: int) -> str:
    """Check the bytes of an upload against the declared type and the size limit.

    Returns:
        The sniffed container family.

    Raises:
        PermanentProcessingError: with reason ``empty_file``, ``too_large``,
            ``unsupported_audio`` (no audio container recognised) or
            ``type_mismatch`` (the bytes are audio of another container).
    """
    if not data:
        raise PermanentProcessingError("the uploaded file is empty", code=FailureReason.EMPTY_FILE.value)

    if len(data) > max_bytes:
        raise PermanentProcessingError(
            f"the uploaded file has {len(data)} bytes, above the limit of {max_bytes}",
            code=FailureReason.TOO_LARGE.value,
        )

    container = sniff_container(data)
    if container is None:
        raise PermanentProcessingError(
            "the uploaded file is not audio in a supported container "
            "(m4a, 3gp, ogg, opus, webm, mp3, aac, wav or flac)",
            code=FailureReason.UNSUPPORTED_AUDIO.value,
        )

    if container != declared.container and {container, declared.container} != {"mp3", "aac"}:
        raise PermanentProcessingError(
            f"the uploaded file is {container} audio but was declared as {declared.mime}",
            code=FailureReason.TYPE_MISMATCH.value,
        )

    return container


def check_wav_length(data: bytes) -> None:
    """Reject a WAV file whose header promises more audio than the file holds.

    Raises:
        PermanentProcessingError: reason ``corrupt_audio``.
    """
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        chunk_size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk_id == b"data":
            available = len(data) - offset - 8
            # Recorders that stream to disk may leave a size a few bytes off,
            # so only a shortfall of more than 1% counts as corrupt.
            if chunk_size > available * 1.01 + 64:
                raise PermanentProcessingError(
                    f"the WAV header declares {chunk_size} bytes of audio but the file holds {available}",
                    code=FailureReason.CORRUPT_AUDIO.value,
                )
            return
        offset += 8 + chunk_size + (chunk_size & 1)

    raise PermanentProcessingError("the WAV file has no data chunk", code=FailureReason.CORRUPT_AUDIO.value)


def duration_seconds(data: bytes) -> float | None:
    """Read the duration from the container headers without decoding the audio.

    Returns None when the headers carry no duration (raw streams such as ADTS).

    Raises:
        PermanentProcessingError: reason ``corrupt_audio`` when the headers
            cannot be parsed, for example an MP4 without its ``moov`` box.
    """
    import mutagen

    try:
        if sniff_container(data) == "webm":
            # mutagen 1.47 has no Matroska reader, so mutagen.File returns None here.
            return webm_duration_seconds(data)
        parsed = mutagen.File(io.BytesIO(data))
    except (mutagen.MutagenError, IndexError, ValueError, OverflowError, struct.error, EOFError) as err:
        # Crafted headers (a 64-bit box size, a block cut short) surface as
        # these errors from the parsers instead of MutagenError.
        raise PermanentProcessingError(
            f"the audio headers could not be read: {type(err).__name__}", code=FailureReason.CORRUPT_AUDIO.value
        ) from err

    if parsed is None or parsed.info is None:
        return None
    length = getattr(parsed.info, "length", None)
    return float(length) if length else None


# EBML element ids of the Matroska/WebM elements that carry timing.
_EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMECODE_SCALE = 0x2AD7B1
_DURATION = 0x4489
_CLUSTER = 0x1F43B675
_CLUSTER_TIMECODE = 0xE7
_BLOCK_GROUP = 0xA0
_BLOCK = 0xA1
_SIMPLE_BLOCK = 0xA3
# Master elements whose children are read. Every other element is skipped by
# its size, so audio frames are never decoded.
_DESCENDED = frozenset({_SEGMENT, _INFO, _CLUSTER, _BLOCK_GROUP})
_DEFAULT_TIMECODE_SCALE_NS = 1_000_000


def _read_vint(data: bytes, position: int) -> tuple[int, int, bool]:
    """Read an EBML variable-length integer at ``position``.

    Returns:
        ``(value without the length marker, length in bytes, all value bits set)``;
        all bits set marks an element of unknown size.

    Raises:
        ValueError: the first byte is zero or the integer runs past the end.
    """
    first = data[position]
    if first == 0:
        raise ValueError(f"invalid EBML length byte 0 at offset {position}")
    length = 9 - first.bit_length()
    if position + length > len(data):
        raise ValueError(f"EBML integer at offset {position} runs past the end of the file")

    value = first & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    return value, length, value == (1 << (7 * length)) - 1


def _read_element_id(data: bytes, position: int) -> tuple[int, int]:
    """Read an element id, which keeps its length marker bits, and return ``(id, length)``."""
    _, length, _ = _read_vint(data, position)
    return int.from_bytes(data[position : position + length], "big"), length


def webm_duration_seconds(data: bytes) -> float | None:
    """Read the duration of a WebM file from its EBML structure, without decoding audio.

    The Segment's ``Info/Duration`` is used when present. Browsers recording
    with MediaRecorder often leave it out, so the fallback is the timecode of
    the last block found in the clusters, which is the duration minus the last
    frame (about 20 ms for Opus).

    Returns:
        The duration in seconds, or None when the file has neither.

    Raises:
        PermanentProcessingError: reason ``corrupt_audio`` when the file does
            not start with an EBML header.
    """
    import struct

    scale_ns = _DEFAULT_TIMECODE_SCALE_NS
    declared: float | None = None
    cluster_timecode = 0
    last_block: int | None = None

    position = 0
    try:
        element_id, _ = _read_element_id(data, 0)
    except (ValueError, IndexError):
        element_id = None
    if element_id != _EBML_HEADER:
        raise PermanentProcessingError("the WebM file has no EBML header", code=FailureReason.CORRUPT_AUDIO.value)

    while position < len(data):
        try:
            element_id, id_length = _read_element_id(data, position)
            size, size_length, unknown_size = _read_vint(data, position + id_length)
        except (ValueError, IndexError):
            # A file cut short ends the scan; the timings found so far stand.
            break
        body = position + id_length + size_length

        if element_id in _DESCENDED:
            position = body
            continue
        if unknown_size or body + size > len(data):
            break

        if element_id == _TIMECODE_SCALE:
            scale_ns = int.from_bytes(data[body : body + size], "big") or _DEFAULT_TIMECODE_SCALE_NS
        elif element_id == _DURATION and size in (4, 8):
            declared = struct.unpack(">f" if size == 4 else ">d", data[body : body + size])[0]
        elif element_id == _CLUSTER_TIMECODE:
            cluster_timecode = int.from_bytes(data[body : body + size], "big")
        elif element_id in (_BLOCK, _SIMPLE_BLOCK):
            _, track_length, _ = _read_vint(data, body)
            relative = int.from_bytes(data[body + track_length : body + track_length + 2], "big", signed=True)
            last_block = max(last_block or 0, cluster_timecode + relative)
        position = body + size

    if declared is not None and declared > 0:
        return declared * scale_ns / 1e9
    if last_block is not None:
        return last_block * scale_ns / 1e9
    return None
