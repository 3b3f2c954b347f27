import dataclasses

import librosa
import numpy as np
import pytest
import torch

from avssl.data.logmel import (
    CRISSCROSS_LOGMEL,
    LOG_OFFSET,
    XDC_LOGMEL,
    LogMelConfig,
    LogMelSpectrogram,
    mel_filterbank,
)
from avssl.errors import ConfigError


def chirp_with_noise(config: LogMelConfig, seed: int = 0) -> np.ndarray:
    """A 100 Hz -> 7 kHz sweep over light noise, with the last quarter silent.

    The sweep crosses every mel band; the silent tail yields powers near the log offset, where
    the comparison with librosa is most fragile.
    """
    sr, n = config.sample_rate, config.num_samples
    t = np.arange(n) / sr
    wave = 0.5 * np.sin(2 * np.pi * (100 * t + (7000 - 100) / (2 * config.duration) * t**2))
    wave += 0.01 * np.random.default_rng(seed).standard_normal(n)
    wave[3 * n // 4 :] = 0.0
    return wave.astype(np.float32)


def librosa_logmel(wave: np.ndarray, config: LogMelConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=wave,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=config.n_mels,
        fmin=config.f_min,
        fmax=config.f_max,
        htk=False,
        norm="slaney",
    )
    return mel[:, : config.num_frames].astype(np.float64)


@pytest.mark.parametrize(
    "n_fft, n_mels, sample_rate, f_min, f_max",
    [
        (1024, 40, 16000, 0.0, None),
        (1024, 80, 16000, 0.0, None),
        (512, 64, 22050, 50.0, 8000.0),
        (2048, 128, 48000, 20.0, None),
    ],
)
def test_filterbank_equals_librosa(n_fft, n_mels, sample_rate, f_min, f_max):
    ours = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max)
    ref = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=False, norm="slaney"
    )
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, atol=1e-9)


def test_filterbank_rejects_empty_filters():
    with pytest.raises(ConfigError, match="cover no FFT bin"):
        mel_filterbank(65, 128, 16000)  # n_fft=128: 125 Hz bins, far wider than the low mel bands


@pytest.mark.parametrize("config", [XDC_LOGMEL, CRISSCROSS_LOGMEL], ids=["xdc", "crisscross"])
def test_matches_librosa_on_chirp_and_noise(config):
    wave = chirp_with_noise(config)
    ours = LogMelSpectrogram(config)(torch.from_numpy(wave))[0, 0].double().numpy()
    ref_power = librosa_logmel(wave, config)

    audible = ref_power > LOG_OFFSET
    assert audible.mean() > 0.5 and (~audible).any()  # both regimes are exercised
    # Tolerance 1e-3 in log units (a 0.1% power error); the measured gap is ~3e-5, float32 FFT noise.
    np.testing.assert_allclose(ours[audible], np.log(ref_power[audible] + LOG_OFFSET), atol=1e-3, rtol=0)
    # Near the floor the log amplifies tiny absolute power errors, so allow 1e-2 there.
    np.testing.assert_allclose(ours[~audible], np.log(ref_power[~audible] + LOG_OFFSET), atol=1e-2, rtol=0)


@pytest.mark.parametrize(
    "config, shape", [(XDC_LOGMEL, (40, 100)), (CRISSCROSS_LOGMEL, (80, 200))], ids=["xdc", "crisscross"]
)
def test_preset_shapes(config, shape):
    module = LogMelSpectrogram(config)
    assert module(torch.zeros(config.num_samples)).shape == (1, 1, *shape)
    assert module(torch.zeros(3, config.num_samples)).shape == (3, 1, *shape)


def test_presets_follow_the_papers():
    xdc, crisscross = XDC_LOGMEL, CRISSCROSS_LOGMEL
    assert (xdc.sample_rate, xdc.duration, xdc.n_mels, xdc.num_frames) == (16000, 2.0, 40, 100)
    assert (crisscross.n_mels, crisscross.hop_length, crisscross.n_fft) == (80, 160, 1024)
    assert xdc.num_samples == crisscross.num_samples == 32000


def test_batched_equals_unbatched():
    config = CRISSCROSS_LOGMEL
    module = LogMelSpectrogram(config)
    waves = torch.from_numpy(np.stack([chirp_with_noise(config, seed) for seed in range(3)]))
    batched = module(waves)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], module(waves[i]), rtol=0, atol=1e-5)


def test_keeps_the_first_frames_and_drops_the_padded_last_one():
    # A click near the end of the clip shows in the last kept frame only if frames are not shifted.
    config = XDC_LOGMEL
    wave = torch.zeros(config.num_samples)
    wave[-config.hop_length - 1] = 1.0
    full = LogMelSpectrogram(dataclasses.replace(config, num_frames=101))(wave)
    cropped = LogMelSpectrogram(config)(wave)
    torch.testing.assert_close(cropped, full[..., :100], rtol=0, atol=0)
    assert cropped[0, 0, :, -1].max() > np.log(LOG_OFFSET) + 1


def test_float64_input_gives_float64_output():
    wave = torch.from_numpy(chirp_with_noise(XDC_LOGMEL)).double()
    out = LogMelSpectrogram(XDC_LOGMEL)(wave)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), LogMelSpectrogram(XDC_LOGMEL)(wave.float()), rtol=0, atol=1e-3)


def test_buffers_move_with_the_module_but_stay_out_of_the_state_dict():
    module = LogMelSpectrogram(XDC_LOGMEL)
    assert module.state_dict() == {}
    assert {name for name, _ in module.named_buffers()} == {"window", "mel_fb"}


@pytest.mark.parametrize(
    "wave, error",
    [
        (torch.zeros(32001), ValueError),
        (torch.zeros(2, 2, 32000), ValueError),
        (torch.zeros(32000, dtype=torch.int16), TypeError),
    ],
)
def test_rejects_bad_waveforms(wave, error):
    with pytest.raises(error):
        LogMelSpectrogram(XDC_LOGMEL)(wave)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"n_mels": -1}, "n_mels"),
        ({"hop_length": 0}, "hop_length"),
        ({"duration": 0.0}, "duration"),
        ({"duration": float("nan")}, "duration"),
        ({"duration": 1.00001}, "duration"),  # not a whole number of samples
        ({"win_length": 2048}, "win_length"),
        ({"n_fft": 1023, "win_length": 640}, "n_fft"),
        ({"f_max": 9000.0}, "f_max"),
        ({"f_min": 8000.0}, "f_min"),
        ({"num_frames": 50}, "num_frames"),
        ({"num_frames": 102}, "num_frames"),
        ({"n_mels": 2.5}, "n_mels"),
    ],
)
def test_config_validation_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=rf"LogMelConfig\.{field}"):
        dataclasses.replace(XDC_LOGMEL, **changes)


def test_config_accepts_both_frame_conventions():
    assert dataclasses.replace(XDC_LOGMEL, num_frames=101).num_frames == 101
    assert dataclasses.replace(CRISSCROSS_LOGMEL, num_frames=201).num_frames == 201


def _plain_logmel(module: LogMelSpectrogram, wave: torch.Tensor) -> torch.Tensor:
    """The straightforward chain: centred STFT, |X|^2, mel matrix, log, then drop the frames past
    ``num_frames``; (B, 1, n_mels, num_frames)."""
    cfg = module.config
    spec = torch.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                      window=module.window, center=True, pad_mode="reflect", return_complex=True)
    power = spec.real**2 + spec.imag**2
    return torch.log(module.mel_fb @ power + LOG_OFFSET)[..., : cfg.num_frames].unsqueeze(1)


@pytest.mark.parametrize("config", [XDC_LOGMEL, CRISSCROSS_LOGMEL], ids=["xdc", "crisscross"])
def test_forward_and_of_clip_match_the_plain_chain_on_a_decoded_file(media_files, config):
    """On audio decoded from a real AAC file: the module (kept frames only, power and log in place)
    equals the plain chain to float rounding, and ``of_clip`` (gain and reflect padding in one pass)
    equals the module on the scaled waveform bit for bit, with and without a gain."""
    from avssl.data.media import decode_audio

    wave = decode_audio(media_files("tone"), 0.4, config.duration, config.sample_rate)
    assert wave.dtype == np.float32 and wave.shape == (config.num_samples,) and np.abs(wave).max() > 0.05
    module = LogMelSpectrogram(config)
    waves = torch.stack([torch.from_numpy(wave), torch.from_numpy(wave[::-1].copy())])
    torch.testing.assert_close(module(waves), _plain_logmel(module, waves), rtol=0, atol=1e-5)
    for gain in (None, 0.9137, 1.0821):
        scaled = torch.from_numpy(wave) * gain if gain is not None else torch.from_numpy(wave)
        got = module.of_clip(wave, gain)
        assert got.shape == (1, config.n_mels, config.num_frames) and got.dtype == torch.float32
        assert torch.equal(got, module(scaled)[0])
        torch.testing.assert_close(got, _plain_logmel(module, scaled[None])[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="float32 numpy waveform"):
        module.of_clip(wave[:-1])
    with pytest.raises(ValueError, match="float32 numpy waveform"):
        module.of_clip(wave.astype(np.float64))
