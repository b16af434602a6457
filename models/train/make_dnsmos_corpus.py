"""make_dnsmos_corpus.py -- generate a speech-quality distillation corpus scored by DNSMOS P.835.

What it does: builds N train and M test items, each exactly 144160 samples (9.01 s) of
16 kHz mono 16-bit PCM WAV, by concatenating random speech segments of the item's split
(0..0.5 s silences between, >= ~60 % speech), setting a random level (-35..-15 dBFS RMS)
and applying a random chain of 0..3 degradations (about 10 % of items stay clean):
additive noise (white/pink/brown from sox synth, 50/60 Hz hum + harmonics, babble of 3..6
speech segments of the same split, alsa Noise) at SNR -5..40 dB; codec2 round trip at
8 kHz (3200 2400 1600 1400 1300 1200 700C); band limiting (lowpass 2..7 kHz, highpass
100..600 Hz, telephone 300..3400 Hz); gain + hard clipping at 0.05..0.5 full scale; sox
reverb; packet dropouts (zeroed or repeated 20..200 ms packets, 1..20 % loss); a
competing talker at 0..20 dB; mu-law/a-law 8 kHz round trip; 4..8 bit quantisation.
Every item is scored by the teacher, DNSMOS P.835 run by our C engine
(`snn model run MODEL ITEM.wav --decision`, one JSON line per item).

Outputs in --out DIR: train/NNNNN.wav, test/NNNNN.wav, train.csv and test.csv with
header file,source,chain,SIG_raw,BAK_raw,OVRL_raw,SIG,BAK,OVRL, and stats.txt (counts,
mean/std/min/max of the raw scores per split, OVRL histogram per split in 0.5 bins).

Sources (/work/shared/data/dnsmos/clips, provenance in /work/shared/data/SOURCES.md):
  * codec2_{speech_orig_16k,wia_16kHz,hts1a_8k,vk5qi_8k,ve9qrp_8k}.wav -- Debian bookworm
    package codec2-examples 1.0.5-1, LGPL-2.1 (real speech; vk5qi and ve9qrp are noisy
    HF-radio recordings);
  * pesq_speech.wav, pesq_speech_bab_0dB.wav -- ludlows/PESQ @ 65e68e7b, MIT;
  * alsa_Front_Center_48k.wav, alsa_Noise_48k.wav -- Debian package alsa-utils 1.2.8-1,
    GPL-2 (alsa_Noise is used only as a noise source);
  * synthetic speech generated here with espeak-ng (GPL-3 program; its output audio
    carries no licence restriction), sentences written for this script;
  * with --flite N (train pool only): flite 2.2 (Debian package flite, BSD-style licence),
    voices awb, rms and slt (built from the CMU ARCTIC recordings of three real speakers)
    and kal16, the same sentences, random speed and pitch.
  * with --asterisk SECONDS (train pool only): the voice prompts of Debian's Asterisk sound
    packages (asterisk-core-sounds-{en,es,fr,it,ru}-wav, asterisk-prompt-es-co,
    asterisk-prompt-fr-armelle, asterisk-prompt-it-menardi-wav; licences from each package's
    copyright file: en and es Allison Smith, fr-ca June Wallack, it Menardi / Dal Zot, CC BY-SA
    3.0; it Carlo Flora and ru Maxim Topal, CC BY 3.0; es-co July E. Jimenez, GPL-2; fr Armelle
    Desjardins, BSD-style): real studio speech of eight voices in five languages, 8 kHz; up
    to SECONDS of each voice (its prompts in a seeded random order) joined into one clip.
    Only the trained weights derive from them; no audio is shipped.
  * with --pitch K (train pool only): K copies of every natural train clip (the Asterisk voices
    included, pesq_speech_bab_0dB not) as other speakers might say it, sox `pitch` moving pitch
    and formants together by 150..450 cents up or down and `tempo` by 0.9..1.1 (shifted_speaker).

Split rule (held out BY SOURCE, no speech material shared between splits):
  test speech  = codec2_vk5qi_8k, pesq_speech, the last 22 s of codec2_ve9qrp_8k,
                 espeak-ng with TEST_VOICES x TEST_TEXTS;
  train speech = everything else: codec2_speech_orig_16k, codec2_wia_16kHz,
                 codec2_hts1a_8k, the first 90 s of codec2_ve9qrp_8k,
                 alsa_Front_Center, pesq_speech_bab_0dB (note: the same utterance as
                 the test clip pesq_speech, under babble: train_dnsmos_bam.py drops
                 the items that use it, --exclude-source),
                 espeak-ng with TRAIN_VOICES x TRAIN_TEXTS (and flite with --flite).
  Voices (language AND variant sets) and texts are disjoint between splits.
  Noise sources (synthetic noise, hum, alsa_Noise) are shared; babble and competing
  talkers come from the item's own split.

Deterministic for a given --seed (each item draws from its own generator seeded by
(seed, split, index); sox synth runs with -R).

A second corpus to add to a first one (other seed, train split only, more voices and
reverberation; run 18 in models/zoo/README.md):
  ... --out /work/bamwork/extra --train 1500 --test 0 --seed 2 --flite 48 --reverb-weight 2

Command (needs sox, libsox-fmt-all, codec2 (c2enc/c2dec) and espeak-ng from Debian; numpy
only); the shipped dnsmos-bam was trained on this run (977 s on the 2-vCPU VM):
  /usr/bin/python3 models/train/make_dnsmos_corpus.py --out /tmp/bam/corpus \
      --train 1500 --test 300 --seed 1 --snn build/clients/snn \
      --model models/zoo/dnsmos-p835.onnx --jobs 2
"""
import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

SR = 16000
N_ITEM = 144160
CLIPS = "/work/shared/data/dnsmos/clips"

TRAIN_VOICES = ["en-us+m1", "en-us+f2", "en-us+m3", "de+m2", "de+f3", "fr+m4",
                "fr+f1", "es+m3", "nl+f2", "sv+m1", "en-us+klatt", "de+klatt3",
                "en-us+f4", "es+f3"]
TEST_VOICES = ["en-gb+m5", "en-gb+f5", "it+m6", "pt+f5", "pl+m7",
               "it+klatt2", "en-gb+m8", "pt+m6"]

TRAIN_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remember to turn off the lights before you leave the office tonight.",
    "We measured the temperature every hour and wrote the numbers in a notebook.",
    "A small boat drifted slowly across the quiet lake in the early morning.",
    "The train to the city leaves at seven fifteen from platform number four.",
    "She opened the window and listened to the birds singing in the garden.",
    "Our team finished the project two days ahead of the planned schedule.",
    "He poured a cup of hot coffee and sat down to read the newspaper.",
    "The children built a sand castle with towers, walls and a deep moat.",
    "Could you tell me the way to the nearest post office, please?",
    "Heavy rain is expected tomorrow afternoon across the northern valleys.",
    "The old clock in the hallway stopped ticking exactly at midnight.",
    "Add two cups of flour, one egg and a pinch of salt to the bowl.",
    "They walked along the beach collecting shells until the sun went down.",
    "The library will be closed on Monday for the annual inventory.",
    "My neighbour grows tomatoes, beans and pumpkins in his back yard.",
    "The pilot announced that we would land twenty minutes early.",
    "Nobody expected the concert to sell out in less than an hour.",
    "Turn left at the second traffic light and park behind the bakery.",
    "The museum has a large collection of paintings from the last century.",
]
TEST_TEXTS = [
    "Seven silver spoons were found under the floor of the ancient kitchen.",
    "The engineer checked every cable twice before switching the power on.",
    "Winter nights are long here, so people gather around the fire to talk.",
    "I would like a ticket for the evening show, if there are any left.",
    "The farmer sold fresh milk and cheese at the market every Saturday.",
    "Bright lanterns hung from the trees during the summer festival.",
    "Our flight was delayed because of fog over the mountains.",
    "The students argued quietly about the answer to the last question.",
    "Grandmother kept her letters in a wooden box tied with a blue ribbon.",
    "A strong wind blew the umbrella out of his hands and down the street.",
]

CODEC2_MODES = ["3200", "2400", "1600", "1400", "1300", "1200", "700C"]
DEGRADATIONS = ["noise", "codec2", "band", "clip", "reverb", "drop", "talker",
                "g711", "bits"]
# acoustic effects first, then channel effects
STAGE = {"reverb": 0, "talker": 1, "noise": 2, "clip": 3, "band": 4, "bits": 5,
         "g711": 6, "codec2": 7, "drop": 8}
DEG_WEIGHTS = np.array([3.0, 2.0, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])


# ---------------------------------------------------------------- audio I/O

def read_wav(path):
    """Mono 16-bit WAV -> (float64 samples in int16 units, rate)."""
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return x.astype(np.float64), w.getframerate()


def write_wav(path, x):
    """float samples (int16 units) -> 16 kHz mono s16 WAV, saturating."""
    y = np.clip(np.round(x), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(y.tobytes())


def to_i16(x):
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def sox_raw(x, rate_in, out_args, effects=(), in_fmt=("-e", "signed", "-b", "16"),
            out_rate=None):
    """Pipe raw int16 mono x through sox; returns raw output bytes."""
    cmd = ["sox", "-R", "-V1", "-t", "raw", "-r", str(rate_in), *in_fmt, "-c", "1", "-",
           "-t", "raw", *out_args, "-c", "1", "-", *effects]
    data = x if isinstance(x, (bytes, bytearray)) else to_i16(x)
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def resample(x, rate_in, rate_out):
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float64)
    out = sox_raw(x, rate_in, ["-r", str(rate_out), "-e", "signed", "-b", "16"])
    return np.frombuffer(out, dtype="<i2").astype(np.float64)


def sox_effect(x, effects):
    """Apply sox effects at 16 kHz; result trimmed/padded to len(x)."""
    out = sox_raw(x, SR, ["-r", str(SR), "-e", "signed", "-b", "16"], effects)
    return fit(np.frombuffer(out, dtype="<i2").astype(np.float64), len(x))


def fit(y, n):
    if len(y) >= n:
        return y[:n].copy()
    return np.concatenate([y, np.zeros(n - len(y))])


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def db_to_lin(db):
    return 10.0 ** (db / 20.0)


# ---------------------------------------------------------------- sources

def load_clip(name):
    x, r = read_wav(os.path.join(CLIPS, name))
    return resample(x, r, SR)


def synthesize(argv):
    """Runs a speech synthesiser whose ARGV writes a WAV to the path ARGV receives; the
    utterance at 16 kHz with leading and trailing digital silence trimmed."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(argv(f.name), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        x, r = read_wav(f.name)
    x = resample(x, r, SR)
    nz = np.nonzero(np.abs(x) > 30)[0]
    return x[nz[0]:nz[-1] + 1] if len(nz) else x


def espeak(voice, text, speed, pitch):
    """One utterance from espeak-ng (synthesize's conventions)."""
    return synthesize(lambda path: ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                                    "-w", path, text])


def flite(voice, text, stretch, f0):
    """One utterance from flite (Debian package flite: CMU's synthesiser; awb, rms and slt are
    voices built from the CMU ARCTIC recordings of three real speakers, kal16 a diphone voice),
    synthesize's conventions."""
    return synthesize(lambda path: ["flite", "-voice", voice, "--setf", "duration_stretch=%.2f" % stretch,
                                    "--setf", "int_f0_target_mean=%d" % f0, "-t", text, "-o", path])


ASTERISK_DIR = "/usr/share/asterisk/sounds"
# voice directory -> file extension of its prompts (es and fr hold the GSM prompts of
# asterisk-prompt-es-co and asterisk-prompt-fr-armelle)
ASTERISK_VOICES = [("en_US_f_Allison", ".wav"), ("es_MX_f_Allison", ".wav"),
                   ("fr_CA_f_June", ".wav"), ("it_IT_f_Menardi", ".wav"),
                   ("it_IT_m_Carlo", ".wav"), ("ru_RU_f_IvrvoiceRU", ".wav"),
                   ("es", ".gsm"), ("fr", ".gsm")]


def asterisk_voice(rng, voice, ext, seconds):
    """Up to SECONDS of one Asterisk voice: its prompts (files ending in EXT under
    ASTERISK_DIR/VOICE) in RNG's order, each at 16 kHz with silence below 1 % of its peak
    trimmed at both ends, joined with 0.15 s gaps. A prompt with fewer than SR / 2 samples
    above that level is skipped; None if no prompt is left (or the voice is not installed)."""
    root = os.path.join(ASTERISK_DIR, voice)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root, followlinks=True)
                   for f in fs if f.endswith(ext))
    if not files:
        return None
    parts, total, gap = [], 0, np.zeros(int(0.15 * SR))
    for i in rng.permutation(len(files)):
        raw = subprocess.run(["sox", "-R", "-V1", files[i], "-t", "raw", "-r", str(SR), "-e",
                              "signed", "-b", "16", "-c", "1", "-"], stdout=subprocess.PIPE,
                             check=True).stdout  # -R: no random dither, as --seed promises
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        a = np.abs(x)
        nz = np.nonzero(a > 0.01 * a.max(initial=1.0))[0]  # a few prompts are empty
        if len(nz) < SR // 2:
            continue
        parts += [x[nz[0]:nz[-1] + 1], gap]
        total += nz[-1] + 1 - nz[0]
        if total >= seconds * SR:
            break
    return np.concatenate(parts) if parts else None


FLITE_VOICES = ["awb", "rms", "slt", "kal16"]
FLITE_F0 = {"awb": (95, 140), "rms": (85, 130), "slt": (150, 220), "kal16": (90, 130)}


def shifted_speaker(rng, x):
    """X as another speaker might say it: sox's pitch effect moves pitch and formants together
    by a random -450..-150 or +150..+450 cents (a shorter or longer vocal tract), tempo by a
    random factor 0.9..1.1; returns (the shifted samples, a label naming the shift)."""
    cents = float(rng.uniform(150, 450)) * (1 if rng.random() < 0.5 else -1)
    tempo = float(rng.uniform(0.9, 1.1))
    out = sox_raw(x, SR, ["-r", str(SR), "-e", "signed", "-b", "16"],
                  ["pitch", "%.0f" % cents, "tempo", "-s", "%.3f" % tempo])
    return np.frombuffer(out, dtype="<i2").astype(np.float64), "%+.0fc_x%.2f" % (cents, tempo)


def build_pools(seed, n_flite=0, asterisk_s=0.0, n_pitch=0):
    """Speech pools per split: list of (source name, 16 kHz float array). N_FLITE > 0 adds that
    many flite utterances of TRAIN_TEXTS to the train pool only, ASTERISK_S > 0 up to that many
    seconds of each installed Asterisk voice (asterisk_voice) to the train pool only, N_PITCH > 0
    that many shifted_speaker copies of each natural train clip but pesq_speech_bab_0dB (all
    drawn after everything else, so the defaults give the pools of earlier corpora unchanged)."""
    rng = np.random.default_rng([seed, 7])
    ve9 = load_clip("codec2_ve9qrp_8k.wav")
    cut = len(ve9) - 22 * SR
    train = [("codec2_speech_orig_16k", load_clip("codec2_speech_orig_16k.wav")),
             ("codec2_wia_16kHz", load_clip("codec2_wia_16kHz.wav")),
             ("codec2_hts1a_8k", load_clip("codec2_hts1a_8k.wav")),
             ("codec2_ve9qrp_8k[0:90s]", ve9[:cut]),
             ("alsa_Front_Center", load_clip("alsa_Front_Center_48k.wav")),
             ("pesq_speech_bab_0dB", load_clip("pesq_speech_bab_0dB.wav"))]
    test = [("codec2_vk5qi_8k", load_clip("codec2_vk5qi_8k.wav")),
            ("pesq_speech", load_clip("pesq_speech.wav")),
            ("codec2_ve9qrp_8k[-22s:]", ve9[cut:])]
    for pool, voices, texts, n in ((train, TRAIN_VOICES, TRAIN_TEXTS, 48),
                                   (test, TEST_VOICES, TEST_TEXTS, 20)):
        for i in range(n):
            v = voices[i % len(voices)]
            t = texts[int(rng.integers(len(texts)))]
            sp = int(rng.integers(120, 201))
            pi = int(rng.integers(20, 81))
            pool.append(("espeak:%s" % v, espeak(v, t, sp, pi)))
    for i in range(n_flite):
        v = FLITE_VOICES[i % len(FLITE_VOICES)]
        t = TRAIN_TEXTS[int(rng.integers(len(TRAIN_TEXTS)))]
        st = float(rng.uniform(0.8, 1.3))
        f0 = int(rng.integers(*FLITE_F0[v]))
        train.append(("flite:%s" % v, flite(v, t, st, f0)))
    if asterisk_s > 0:
        for v, ext in ASTERISK_VOICES:
            x = asterisk_voice(rng, v, ext, asterisk_s)
            if x is None:
                print("asterisk voice %s: not installed or no usable prompt, skipped" % v,
                      flush=True)
                continue
            train.append(("asterisk:%s" % v, x))
    natural = [(n, x) for n, x in train if not n.startswith(("espeak:", "flite:", "pesq_speech_bab"))]
    for i in range(n_pitch):
        for n, x in natural:
            y, how = shifted_speaker(rng, x)
            train.append(("pitch%s:%s" % (how, n), y))
    return {"train": train, "test": test}


def build_noises():
    """Shared noise sources: 60 s of white/pink/brown (sox synth -R), alsa Noise."""
    out = {}
    for kind in ("whitenoise", "pinknoise", "brownnoise"):
        raw = subprocess.run(["sox", "-R", "-V1", "-n", "-r", str(SR), "-e", "signed",
                              "-b", "16", "-c", "1", "-t", "raw", "-", "synth", "60",
                              kind, "vol", "0.5"],
                             stdout=subprocess.PIPE, check=True).stdout
        out[kind[:-5]] = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    out["alsa"] = load_clip("alsa_Noise_48k.wav")
    return out


POOLS = None
NOISES = None


# ---------------------------------------------------------------- item synthesis

def pick_weights(rng, pool):
    """Per-item source weights: natural-only (50 %), synthetic-only (20 %: espeak, flite) or mixed
    (30 %, natural 65 % of segments); within a group by sqrt(duration)."""
    d = np.array([len(x) for _, x in pool], dtype=np.float64)
    syn = np.array([n.startswith(("espeak:", "flite:")) for n, _ in pool])
    u = rng.random()
    share = 1.0 if u < 0.5 else (0.0 if u < 0.7 else 0.65)
    w = np.sqrt(d)
    w[~syn] *= share / w[~syn].sum()
    w[syn] *= (1.0 - share) / w[syn].sum()
    return w / w.sum()


def segment(rng, pool, w, min_s=0.8, max_s=4.0):
    i = int(rng.choice(len(pool), p=w))
    name, x = pool[i]
    n = int(rng.uniform(min_s, max_s) * SR)
    if n >= len(x):
        return name, x.copy()
    o = int(rng.integers(0, len(x) - n + 1))
    return name, x[o:o + n].copy()


def speech_track(rng, pool, w, n):
    """Concatenate segments with 0..0.5 s silences to exactly n samples."""
    parts, names, total, speech = [], [], 0, 0
    while total < n:
        if parts:
            s = int(rng.uniform(0.0, 0.5) * SR)
            parts.append(np.zeros(s))
            total += s
        name, seg = segment(rng, pool, w)
        # short fades to avoid clicks at segment edges
        f = min(80, len(seg) // 2)
        ramp = np.linspace(0.0, 1.0, f)
        seg[:f] *= ramp
        seg[len(seg) - f:] *= ramp[::-1]
        parts.append(seg)
        names.append(name)
        total += len(seg)
        speech += len(seg)
    x = np.concatenate(parts)[:n]
    return x, names


def loop_to(x, n, rng):
    o = int(rng.integers(0, len(x)))
    reps = (n + o) // len(x) + 1
    return np.tile(x, reps)[o:o + n]


def deg_noise(rng, x, pool, w):
    kind = str(rng.choice(["white", "pink", "brown", "hum", "babble", "alsa"],
                          p=[0.15, 0.2, 0.15, 0.15, 0.2, 0.15]))
    n = len(x)
    if kind in ("white", "pink", "brown"):
        src = NOISES[kind]
        o = int(rng.integers(0, len(src) - n))
        nz = src[o:o + n].copy()
    elif kind == "alsa":
        nz = loop_to(NOISES["alsa"], n, rng)
    elif kind == "hum":
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        t = np.arange(n) / SR
        nz = np.zeros(n)
        for h in range(1, int(rng.integers(2, 9))):
            nz += rng.uniform(0.1, 1.0) / h ** rng.uniform(0.0, 1.0) * \
                np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
        kind = "hum%d" % int(f0)
    else:
        k = int(rng.integers(3, 7))
        nz = np.zeros(n)
        for _ in range(k):
            tr, _ = speech_track(rng, pool, w, n)
            nz += tr / rms(tr)
        kind = "babble%d" % k
    snr = rng.uniform(-5.0, 40.0)
    nz *= rms(x) / rms(nz) / db_to_lin(snr)
    return x + nz, "noise:%s@%.1fdB" % (kind, snr)


def deg_codec2(rng, x):
    mode = str(rng.choice(CODEC2_MODES))
    x8 = resample(x, SR, 8000)
    peak = np.max(np.abs(x8)) + 1e-9
    with tempfile.TemporaryDirectory() as d:
        fi, fb, fo = (os.path.join(d, s) for s in ("in.raw", "b.bit", "out.raw"))
        with open(fi, "wb") as f:
            f.write(to_i16(x8 if peak < 32767 else x8 * 32000 / peak))
        subprocess.run(["c2enc", mode, fi, fb], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["c2dec", mode, fb, fo], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        y = np.fromfile(fo, dtype="<i2").astype(np.float64)
    if peak >= 32767:
        y *= peak / 32000
    return fit(resample(y, 8000, SR), len(x)), "codec2:%s" % mode


def deg_band(rng, x):
    kind = int(rng.integers(3))
    if kind == 0:
        f = int(rng.uniform(2000, 7000))
        return sox_effect(x, ["lowpass", str(f)]), "lp:%d" % f
    if kind == 1:
        f = int(rng.uniform(100, 600))
        return sox_effect(x, ["highpass", str(f)]), "hp:%d" % f
    return sox_effect(x, ["sinc", "300-3400"]), "tel:300-3400"


def deg_clip(rng, x):
    c = rng.uniform(0.05, 0.5)
    lvl = c * 32767
    # gain so that the speech RMS sits 0..+20 dB relative to the clip level - 10 dB
    g = db_to_lin(rng.uniform(-10.0, 10.0)) * lvl / rms(x)
    return np.clip(x * g, -lvl, lvl), "clip:%.2f" % c


def deg_reverb(rng, x):
    rev = int(rng.uniform(20, 100))
    damp = int(rng.uniform(0, 100))
    room = int(rng.uniform(20, 100))
    pre = int(rng.uniform(0, 40))
    # default wet+dry mix; input halved to leave headroom, output re-levelled
    y = sox_effect(x * 0.5, ["reverb", str(rev), str(damp), str(room), "100", str(pre)])
    return y * (rms(x) / rms(y)), "reverb:%d/%d" % (rev, room)


def deg_drop(rng, x):
    pk = int(rng.uniform(0.02, 0.2) * SR)
    loss = rng.uniform(0.01, 0.2)
    rep = rng.random() < 0.5
    y = x.copy()
    for i in range(1, len(x) // pk):
        if rng.random() < loss:
            a = i * pk
            y[a:a + pk] = y[a - pk:a] if rep else 0.0
    return y, "drop:%s%dms@%d%%" % ("rep" if rep else "zero", pk * 1000 // SR,
                                    round(loss * 100))


def deg_talker(rng, x, pool, w):
    tr, names = speech_track(rng, pool, w, len(x))
    sir = rng.uniform(0.0, 20.0)
    return x + tr * (rms(x) / rms(tr) / db_to_lin(sir)), "talker@%.1fdB" % sir


def deg_g711(rng, x):
    law = "u-law" if rng.random() < 0.5 else "a-law"
    enc = sox_raw(x, SR, ["-r", "8000", "-e", law, "-b", "8"])
    dec = sox_raw(enc, 8000, ["-r", str(SR), "-e", "signed", "-b", "16"],
                  in_fmt=("-e", law, "-b", "8"))
    y = np.frombuffer(dec, dtype="<i2").astype(np.float64)
    return fit(y, len(x)), "g711:%s" % ("mu" if law == "u-law" else "a")


def deg_bits(rng, x):
    b = int(rng.integers(4, 9))
    q = 2.0 ** (16 - b)
    return np.round(x / q) * q, "bits:%d" % b


def make_item(split, idx, seed):
    """Returns (samples, source string, chain string)."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, idx])
    pool = POOLS[split]
    w = pick_weights(rng, pool)
    x, names = speech_track(rng, pool, w, N_ITEM)
    lvl = rng.uniform(-35.0, -15.0)
    x *= 32768.0 * db_to_lin(lvl) / rms(x)
    if rng.random() < 0.10:
        k = 0
    else:
        k = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    degs = list(rng.choice(DEGRADATIONS, size=k, replace=False,
                           p=DEG_WEIGHTS / DEG_WEIGHTS.sum()))
    degs.sort(key=lambda d: STAGE[d])
    chain = []
    for d in degs:
        if d == "noise":
            x, c = deg_noise(rng, x, pool, w)
        elif d == "talker":
            x, c = deg_talker(rng, x, pool, w)
        else:
            x, c = globals()["deg_" + d](rng, x)
        chain.append(c)
    x = fit(x, N_ITEM)
    src = "|".join(sorted(set(names)))
    return x, src, ("clean@%.1fdBFS" % lvl) if not chain else "+".join(chain)


# ---------------------------------------------------------------- worker

ARGS = None
FIELDS = ["SIG_raw", "BAK_raw", "OVRL_raw", "SIG", "BAK", "OVRL"]


def work(job):
    split, idx = job
    x, src, chain = make_item(split, idx, ARGS.seed)
    rel = "%s/%05d.wav" % (split, idx)
    path = os.path.join(ARGS.out, rel)
    write_wav(path, x)
    # retry: the snn binary may be relinked by a concurrent build while we run
    for attempt in range(5):
        try:
            r = subprocess.run([ARGS.snn, "model", "run", ARGS.model, path, "--decision"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode == 0:
                break
            err = r.stderr.strip()
        except OSError as e:
            err = str(e)
        time.sleep(2.0)
    else:
        raise RuntimeError("snn failed on %s: %s" % (path, err))
    line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
    s = json.loads(line)
    return split, idx, [rel, src, chain] + ["%.6f" % float(s[f]) for f in FIELDS]


def stats_text(rows):
    out = []
    for split in ("train", "test"):
        rs = rows[split]
        out.append("[%s] items: %d  clean: %d" % (
            split, len(rs), sum(1 for r in rs if r[2].startswith("clean"))))
        for j, f in enumerate(FIELDS):
            v = np.array([float(r[3 + j]) for r in rs])
            if len(v) == 0:
                continue
            if f.endswith("_raw"):
                out.append("  %-9s mean %.3f  std %.3f  min %.3f  max %.3f" % (
                    f, v.mean(), v.std(), v.min(), v.max()))
        v = np.array([float(r[8]) for r in rs])
        out.append("  OVRL histogram (0.5 bins):")
        for lo in np.arange(0.5, 5.0, 0.5):
            c = int(np.sum((v >= lo) & (v < lo + 0.5)))
            out.append("    [%.1f,%.1f) %5d %s" % (lo, lo + 0.5, c,
                                                   "#" * int(round(60 * c / max(1, len(v))))))
        out.append("")
    return "\n".join(out)


def main():
    global ARGS, POOLS, NOISES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--snn", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--flite", type=int, default=0, help="add this many flite utterances (voices "
                    "awb, rms, slt, kal16; Debian package flite) to the TRAIN speech pool; 0 keeps "
                    "the pools of the shipped corpus")
    ap.add_argument("--reverb-weight", type=float, default=1.0, help="multiply the chance that an "
                    "item's chain includes reverb by about this factor (its weight among the "
                    "degradations; 1 is the shipped corpus's)")
    ap.add_argument("--asterisk", type=float, default=0.0, metavar="SECONDS", help="add up to "
                    "SECONDS of each voice of Debian's Asterisk prompt packages (real speech, "
                    "8 kHz; see the docstring) to the TRAIN speech pool; 0 (default) adds none")
    ap.add_argument("--pitch", type=int, default=0, metavar="K", help="add K copies of each "
                    "natural TRAIN clip (Asterisk voices included) as other speakers might say it: "
                    "pitch and formants shifted by 150..450 cents up or down, tempo 0.9..1.1 "
                    "(sox pitch, tempo); 0 (default) adds none")
    ARGS = ap.parse_args()
    if ARGS.flite < 0 or ARGS.reverb_weight <= 0 or ARGS.asterisk < 0 or ARGS.pitch < 0:
        sys.exit("--flite, --asterisk and --pitch must be >= 0 and --reverb-weight > 0")
    if ARGS.asterisk and not os.path.isdir(ASTERISK_DIR):
        sys.exit("--asterisk: %s is missing (apt-get install asterisk-core-sounds-en-wav "
                 "asterisk-core-sounds-es-wav ...; see the docstring)" % ASTERISK_DIR)
    if ARGS.flite and not shutil.which("flite"):
        sys.exit("--flite %d: the flite program is missing (apt-get install flite)" % ARGS.flite)
    DEG_WEIGHTS[DEGRADATIONS.index("reverb")] *= ARGS.reverb_weight
    # the jobs already fill the cores: a multi-threaded OpenBLAS in each snn child oversubscribes
    # them (measured: 5.1 s per item instead of 1.3 s with two jobs on 2 vCPUs)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    t0 = time.time()
    for s in ("train", "test"):
        os.makedirs(os.path.join(ARGS.out, s), exist_ok=True)
    POOLS = build_pools(ARGS.seed, ARGS.flite, ARGS.asterisk, ARGS.pitch)
    NOISES = build_noises()
    for s in ("train", "test"):
        dur = sum(len(x) for _, x in POOLS[s]) / SR
        print("%s pool: %d clips, %.1f s speech" % (s, len(POOLS[s]), dur), flush=True)
    print("pools ready in %.1f s" % (time.time() - t0), flush=True)
    jobs = [("train", i) for i in range(ARGS.train)] + [("test", i) for i in range(ARGS.test)]
    rows = {"train": [None] * ARGS.train, "test": [None] * ARGS.test}
    with multiprocessing.get_context("fork").Pool(ARGS.jobs) as p:
        for n, (split, idx, row) in enumerate(p.imap_unordered(work, jobs, chunksize=4), 1):
            rows[split][idx] = row
            if n % 100 == 0 or n == len(jobs):
                print("%d/%d items, %.1f s elapsed" % (n, len(jobs), time.time() - t0),
                      flush=True)
    header = "file,source,chain," + ",".join(FIELDS)
    for s in ("train", "test"):
        with open(os.path.join(ARGS.out, s + ".csv"), "w") as f:
            f.write(header + "\n")
            for r in rows[s]:
                f.write(",".join(r) + "\n")
    st = stats_text(rows)
    with open(os.path.join(ARGS.out, "stats.txt"), "w") as f:
        f.write(st + "\n")
    print(st)
    print("done in %.1f s" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
