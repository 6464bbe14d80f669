"""Video and audio files people upload or other servers send, checked and cleaned with Debian's
ffmpeg. The type is decided by probing the bytes (ffprobe), never by the file's name or a server's
Content-Type: a file is taken when it holds one video stream and/or one audio stream of a codec
browsers play, in a container we serve (MP4/MOV, WebM, Ogg, MP3, FLAC). It is then written again
with stream copy (no re-encoding) and without metadata (-map_metadata -1: a phone puts its GPS
position, a title or its model there), dropping every other stream (data tracks, chapters, cover
pictures). Videos also give a poster frame (JPEG), which the caller cleans in the image worker.

ffprobe and ffmpeg parse hostile input: each runs as its own process with a CPU-time limit, an
address-space limit, a file-size limit (RLIMIT_FSIZE: the output cannot grow past it), a lower
priority and a wall-clock deadline after which it is killed. The server only waits on pipes, so the
event loop stays free while a file is probed."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class InvalidMedia(ValueError):
    """Not a video or audio file we take (message for the person)."""


@dataclass(frozen=True)
class AVLimits:
    cpu_seconds: int = 30
    memory_mb: int = 1024
    timeout_seconds: float = 60.0
    max_output_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class CleanAV:
    data: bytes
    content_type: str
    extension: str
    kind: str  # video | audio
    width: int | None
    height: int | None
    duration: float | None
    poster_jpeg: bytes | None  # a frame of a video, for the image worker to clean
    # A video's frames per second as ffprobe gives it ("30/1", "30000/1001"), as Mastodon's meta shows.
    frame_rate: str | None = None
    # Whether it has a sound track (a video without one is Mastodon's looping `gifv`).
    has_audio: bool = True


# ffprobe's format_name -> (container we write with ffmpeg's -f, allowed video codecs, allowed
# audio codecs). MP4 and MOV are one demuxer ("mov,mp4,m4a,3gp,3g2,mj2"); MOV is written as MP4.
_MP4_VIDEO = {"h264", "hevc", "vp9", "av1"}
_MP4_AUDIO = {"aac", "mp3", "opus"}
CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("mp4", _MP4_VIDEO, _MP4_AUDIO),
    "matroska,webm": ("webm", {"vp8", "vp9", "av1"}, {"opus", "vorbis"}),
    "ogg": ("ogg", set(), {"opus", "vorbis", "flac"}),
    "mp3": ("mp3", set(), {"mp3"}),
    "flac": ("flac", set(), {"flac"}),
}
# (muxer, kind) -> (content type, extension) of what we write and serve.
OUTPUTS = {
    ("mp4", "video"): ("video/mp4", "mp4"), ("mp4", "audio"): ("audio/mp4", "m4a"),
    ("webm", "video"): ("video/webm", "webm"), ("webm", "audio"): ("audio/webm", "weba"),
    ("ogg", "audio"): ("audio/ogg", "ogg"), ("mp3", "audio"): ("audio/mpeg", "mp3"),
    ("flac", "audio"): ("audio/flac", "flac"),
}
EXTENSIONS = {extension: content_type for content_type, extension in OUTPUTS.values()}
MAX_SIDE = 8192
MAX_DURATION_SECONDS = 6 * 3600
NOT_MEDIA = "the file is not a video (MP4, MOV, WebM) or audio file (MP3, Ogg, M4A, FLAC) we can play"
TOO_LONG = "the file takes too long to process"
FAILED = "the file could not be processed"


def available() -> bool:
    return all(shutil.which(tool) is not None for tool in ("ffprobe", "ffmpeg", "prlimit", "nice"))


def _bounded(args: list[str], limits: AVLimits) -> list[str]:
    """The command under util-linux's prlimit and nice, which set the limits and exec it (same pid,
    so killing it kills ffmpeg). Not a preexec_fn: forking a process with threads (the database's,
    the default pool's) and running Python in the child before exec can deadlock."""
    return ["prlimit", f"--cpu={limits.cpu_seconds}", f"--as={limits.memory_mb * 1024 * 1024}",
            f"--fsize={limits.max_output_bytes}", "--core=0", "--", "nice", "-n", "10", *args]


async def _run(args: list[str], limits: AVLimits, deadline: float) -> tuple[int, bytes]:
    """Run one bounded ffmpeg/ffprobe; (exit status, stdout capped at max_output_bytes)."""
    loop = asyncio.get_running_loop()
    left = deadline - loop.time()
    if left <= 0:
        raise InvalidMedia(TOO_LONG)
    try:
        proc = await asyncio.create_subprocess_exec(
            *_bounded(args, limits), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        log.exception("could not start %s", args[0])
        raise InvalidMedia(f"{FAILED}; try again later") from None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(left):
            chunks, size = [], 0
            while chunk := await proc.stdout.read(1024 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > limits.max_output_bytes:
                    raise InvalidMedia(FAILED)
            out = b"".join(chunks)
            code = await proc.wait()
    except TimeoutError:
        log.warning("%s still running after %.0f s: stopped (pid %d)", args[0], limits.timeout_seconds, proc.pid)
        raise InvalidMedia(TOO_LONG) from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code, out


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number and 0 < number < float("inf") else None


@dataclass(frozen=True)
class _Probe:
    muxer: str
    kind: str
    video_index: int | None
    audio_index: int | None
    width: int | None
    height: int | None
    duration: float | None
    frame_rate: str | None = None


def _frame_rate(stream: dict) -> str | None:
    rate = stream.get("avg_frame_rate")
    if not isinstance(rate, str) or not re.fullmatch(r"[1-9]\d{0,6}/[1-9]\d{0,6}", rate):
        return None
    return rate


def _judge(info: object) -> _Probe:
    """What ffprobe saw, checked against what we take."""
    if not isinstance(info, dict) or not isinstance(info.get("format"), dict):
        raise InvalidMedia(NOT_MEDIA)
    container = CONTAINERS.get(info["format"].get("format_name"))
    if container is None:
        raise InvalidMedia(NOT_MEDIA)
    muxer, video_codecs, audio_codecs = container
    videos, audios = [], []
    for stream in info.get("streams") or []:
        if not isinstance(stream, dict):
            continue
        disposition = stream.get("disposition") if isinstance(stream.get("disposition"), dict) else {}
        if stream.get("codec_type") == "video" and not disposition.get("attached_pic"):
            videos.append(stream)
        elif stream.get("codec_type") == "audio":
            audios.append(stream)
        # Data, subtitle and cover-picture streams are left out of the copy.
    if len(videos) > 1 or len(audios) > 1 or not (videos or audios):
        raise InvalidMedia("the file must hold one video stream and/or one audio stream")
    video = videos[0] if videos else None
    audio = audios[0] if audios else None
    if video is not None and video.get("codec_name") not in video_codecs:
        raise InvalidMedia(f"video in {video.get('codec_name')!s:.20} is not taken; use H.264, VP9 or AV1")
    if audio is not None and audio.get("codec_name") not in audio_codecs:
        raise InvalidMedia(f"audio in {audio.get('codec_name')!s:.20} is not taken; use AAC, MP3, Opus, Vorbis or FLAC")
    width = height = None
    if video is not None:
        width, height = video.get("width"), video.get("height")
        if not (isinstance(width, int) and isinstance(height, int) and 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise InvalidMedia(f"a video may be at most {MAX_SIDE} pixels wide and high")
    duration = _number(info["format"].get("duration"))
    if duration is None:
        raise InvalidMedia("the file could not be read (damaged or cut short?)")
    if duration > MAX_DURATION_SECONDS:
        raise InvalidMedia(f"the file may last at most {MAX_DURATION_SECONDS // 3600} hours")
    kind = "video" if video is not None else "audio"
    if (muxer, kind) not in OUTPUTS:
        raise InvalidMedia(NOT_MEDIA)
    return _Probe(muxer, kind, int(video["index"]) if video else None, int(audio["index"]) if audio else None,
                  width, height, round(duration, 3), _frame_rate(video) if video else None)


async def clean(data: bytes, limits: AVLimits) -> CleanAV:
    """Probe, check and rewrite data without metadata (and a poster frame for a video); raises
    InvalidMedia with a message for the person."""
    deadline = asyncio.get_running_loop().time() + limits.timeout_seconds
    folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="fedserver-av-")
    try:
        source = Path(folder) / "in"
        await asyncio.to_thread(source.write_bytes, data)
        return await _clean_file(source, limits, deadline)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


async def _clean_file(source: Path, limits: AVLimits, deadline: float) -> CleanAV:
    code, out = await _run(["ffprobe", "-v", "error", "-hide_banner", "-probesize", "20000000",
                            "-print_format", "json", "-show_format", "-show_streams", str(source)], limits, deadline)
    try:
        info = json.loads(out) if code == 0 else None
    except ValueError:
        info = None
    if info is None:
        raise InvalidMedia(NOT_MEDIA)
    probe = _judge(info)
    content_type, extension = OUTPUTS[(probe.muxer, probe.kind)]
    target = source.with_name(f"out.{extension}")
    maps = [arg for index in (probe.video_index, probe.audio_index) if index is not None
            for arg in ("-map", f"0:{index}")]
    extra = {"mp4": ["-movflags", "+faststart"], "mp3": ["-id3v2_version", "0", "-write_xing", "0"]}.get(probe.muxer, [])
    code, _ = await _run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), *maps, "-map_metadata", "-1",
                          "-map_chapters", "-1", "-c", "copy", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                          "-flags:a", "+bitexact", "-fs", str(limits.max_output_bytes), *extra, "-f", probe.muxer,
                          "-y", str(target)], limits, deadline)
    if code != 0 or not target.is_file():
        raise InvalidMedia("the file could not be read (damaged or cut short?)")
    poster = None
    if probe.kind == "video":
        at = min(1.0, (probe.duration or 0) / 2)
        code, poster = await _run(["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{at:.3f}", "-i", str(target),
                                   "-map", "0:v:0", "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg",
                                   "-q:v", "3", "pipe:1"], limits, deadline)
        if code != 0 or not poster:
            raise InvalidMedia("the video has no frame to show (damaged or cut short?)")
    data = await asyncio.to_thread(target.read_bytes)
    return CleanAV(data, content_type, extension, probe.kind, probe.width, probe.height, probe.duration, poster,
                   probe.frame_rate, probe.audio_index is not None)
