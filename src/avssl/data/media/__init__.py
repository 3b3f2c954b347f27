"""Decode video frames and audio samples from media files into numpy arrays.

Time axis: every ``start``/``duration`` argument and every duration reported here is in seconds on
one axis shared by audio and video, whose zero is the first video frame (the first audio sample in
a file without video). Stream timestamps (including mp4 edit lists and the AAC encoder's priming
delay, which FFmpeg's demuxer and decoder account for) are converted onto that axis, so a flash at
video time t and a click at audio time t land at the same place. Audio before the first video
frame is dropped; audio that starts after it reads as silence up to its first sample.

Every problem with a file (missing, empty, not media, corrupt, truncated, missing a stream, window
past the end) raises :class:`~avssl.errors.MediaError` naming the file; bad arguments raise
``ValueError``.

Layout: :mod:`.source` (opening a file, the time axis, header info), :mod:`.video` (frame picking
and RGB conversion), :mod:`.audio` (the audio window), :mod:`.decode` (the entry points below).

Usage::

    from avssl.data.media import decode_clip, probe
"""
from .decode import decode_audio, decode_clip, decode_full, decode_video, probe
from .source import AUDIO_SLACK, MediaInfo

__all__ = ["AUDIO_SLACK", "MediaInfo", "decode_audio", "decode_clip", "decode_full", "decode_video", "probe"]
