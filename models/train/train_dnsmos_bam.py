#!/usr/bin/python3
"""train_dnsmos_bam.py -- distil DNSMOS P.835 into a binary-activation network
with 8-bit weights (Nilsson, Miccini, Laroche, Piechowiak, Zenke 2024: binary
activation maps + quantisation-aware training), and export it for snnd.

The student keeps DNSMOS P.835's architecture (its learned STFT front end, four
3x3 convolutions at full resolution, three 2x2 max pools with a convolution
after each, pooling over time and frequency, three dense layers) at reduced
widths (WIDTHS below, or --widths; the teacher's are 128, 64, 64, 32, 32, 32, 64), with:
  - the teacher's STFT kernels quantised to int8 per frequency row, applied to
    16-bit PCM (integer dot products);
  - log10 power features quantised to int8: q = clamp(round(16 log10 P), -128, 127),
    computed by counting bounds exceeded (bit-identical in snnd);
  - every convolution followed by batch normalisation and a Heaviside step
    (surrogate gradient 1 / (1 + 2|z|)^2), so every activation map is binary;
    max pooling of bits is OR; the last map is averaged (popcount / positions);
  - int8 weights (symmetric, per output channel) everywhere, trained through
    straight-through fake quantisation;
  - a dense head 64 -> 128 -> 64 -> 3 on the 64 firing rates (ReLU, int8
    weights, float activations: 0.2 % of the operations).
models/bam.h states the inference equations; the export below folds each
batch norm into an integer threshold per channel, so snnd's kernel only adds
int8 weights where input bits are set and compares the sum with a threshold.

Data: the corpus of make_dnsmos_corpus.py (9.01 s windows with the teacher's
raw scores, split by source into train and test). The teacher (rebuilt in torch
from the ONNX file, class Teacher) ends in a global max over its last feature
map; that map is computed once per window (cached, 0.57 MB per window) so a
crop of any length gets the teacher's exact score for that crop: the window's
own score is a poor label for a 2 s crop (correlation 0.75-0.83 measured on the
test split). Training uses crops of 2-4 s labelled that way, plus an auxiliary
loss asking the student's 64 firing rates to predict the teacher's 64 pooled
features; the last 25 % of the time budget trains on whole windows (--full-after).
Evaluation uses whole windows. A run trained on crops alone (--full-after 1, for the
teacher's widths a whole-window batch is too slow) leaves its head fitted to crops'
firing rates: --refit-head STEPS refits the dense head on whole windows before export.
--hint W adds a dense loss: a 1x1 read-out of the last convolution's z must
reproduce the teacher's whole last map (measured: from scratch, lower training loss and higher test correlation at equal epochs than
without it; models/zoo/README.md, run 9). --hint-mid W adds the same kind of loss
one step earlier, where the student is limited (item 5 there): the 2x2-pooled z of
the convolution before the first pool must reproduce the teacher's conv2d_3 map
after its first pool (cached per window, 4.6 MB each; teacher_maps_ort.mjs).

Outputs (--out DIR): dnsmos-bam.safetensors (for models/zoo), dnsmos-bam-float.onnx
(the same network in float, for ONNX Runtime in tests/bench), bam.pt (the float weights
the export was folded from, after --recalibrate and --refit-head: --resume it to write the
same file again), eval.json (test Pearson correlations against the teacher, raw and mapped),
and with --ref-clips the reference outputs the conformance test compares snnd with.

  /usr/bin/python3 models/train/train_dnsmos_bam.py --corpus /tmp/bam/corpus \
      --teacher models/zoo/dnsmos-p835.onnx --out /tmp/bam/out --minutes 45
(--init CKPT continues from an earlier run's bam.pt or an exported .safetensors;
with --widths wider than CKPT's, grow() adds channels that start with no effect,
so a trained model gains capacity without starting over; models/zoo/README.md
lists the runs behind the shipped model. A run writes OUT/train_state.pt after
every epoch; an interrupted run carries on with the same command plus --continue.
--bf16 F trains the first share F of the time budget under bfloat16 autocast: about
twice the steps per minute on a CPU with AVX512-BF16, with rounded convolution sums;
evaluation, the rest of the budget and the export stay float32.
--val-source S ... holds out the training windows whose source names one of S (they are
never trained on) and exports the evaluation best on them instead of the last one, so a
run's moving average can be kept at its peak without choosing on the test split.
--act relu trains the same network with float (ReLU) activations as a control: what
binarisation costs at given widths and recipe; it writes eval.json and test_pred.csv only.
--init-teacher --anneal F binarises the teacher gradually: the network starts as the teacher
itself (its weights, each activation its ReLU, with a read-out of maxima its dense head on
maxima floored at 0, the file's readout.floor), and over the first share F of the budget every
activation turns into the step (act). Measured at the start (run 33, models/zoo/README.md):
test Pearson 0.993 / 0.997 / 0.997 (the same network with bits instead: SIG about 0).)
--anneal-order layerwise turns the layers into steps one after another from the input on
(layer_beta), each over 1/7 of the anneal, while the later layers are still the teacher's.
--dither N (an experiment; snnd does not run its files yet, so it writes eval.json and
test_pred.csv only) moves each step's threshold with the position: the bit is
[z > dith_c o(t, f)], o an N x N ordered-dither pattern (dither_offsets) and dith_c learned per
channel. With --init-teacher a bit then stands for twice the teacher's mean positive
activation, and the bits' local density follows the activation (halftoning) instead of
keeping only its sign. Measured at the start (run 35, models/zoo/README.md item 39).
"""
import argparse
import copy
import csv
import json
import math
import os
import struct
import sys
import time
import wave

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_writer  # noqa: E402

WIN = 144160
NT = 900
NF = 161
WIDTHS = (16, 16, 16, 16, 32, 32, 64)
POOL_AFTER = (3, 4, 5)  # a 2x2 max pool follows these convolutions
XSCALE = 10.0  # --x-scale; runs 1-5 used 16
HEAD = (128, 64)
CROP = 200
ACT = "step"  # --act: "relu" trains a float-activation control that is evaluated, never exported
SCORE_W = torch.ones(3)  # --score-weights: SIG, BAK, OVRL in the score loss (mean 1)
READOUT = "rate"  # --readout: what new Bams' heads read of the last convolution (Bam.forward)
BETA = 1.0  # --anneal: the step's share of each activation (act); 1 outside an annealing run
ANNEAL_ORDER = "together"  # --anneal-order: all layers at once, or one after another (act)
DITHER = 0  # --dither N: each step's threshold moves with the position (dither_offsets)
NCONV = len(WIDTHS)
# ordered-dither index matrices: Bayer for N = 2 and 4, a magic square for N = 3
DITHER_INDEX = {2: [[0, 2], [3, 1]],
                3: [[0, 7, 3], [6, 5, 2], [4, 1, 8]],
                4: [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]}


def bounds(xscale):
    """q = #{j : p > bounds[j]} - 128: the rounding of xscale log10 p (models/bam.h)."""
    return torch.from_numpy((10.0 ** ((np.arange(255) - 127.5) / xscale)).astype(np.float32))


POLY = {  # dnsmos_local.py, numpy poly1d order (highest power first)
    "SIG": (-0.08397278, 1.22083953, 0.0052439),
    "BAK": (-0.13166888, 1.60915514, -0.39604546),
    "OVRL": (-0.06766283, 1.11546468, 0.04602535),
}
NAMES = ("SIG", "BAK", "OVRL")


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def teacher_stft(onnx_path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(onnx_path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    re = init["time2freq/stft-real/kernel:0"][:, :, 0].astype(np.float32)
    im = init["time2freq/stft-imag/kernel:0"][:, :, 0].astype(np.float32)
    return re, im


class Teacher:
    """DNSMOS P.835 rebuilt in torch from its ONNX initializers, split where it pools globally:
    maps(pcm) is the last convolution's ReLU output [B, 64, 112, 20] (time x frequency at 1/8
    resolution), head(v) the dense layers on a pooled vector v [B, 64]. The window's raw scores
    are head(max of maps over all positions); a crop's exact scores are head(max over the
    positions the crop covers), so training crops get the teacher's own label, not the window's."""

    def __init__(self, onnx_path):
        import onnx
        from onnx import numpy_helper
        m = onnx.load(onnx_path)
        init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
        self.kre = init["time2freq/stft-real/kernel:0"][:, :, 0].T.contiguous()
        self.kim = init["time2freq/stft-imag/kernel:0"][:, :, 0].T.contiguous()
        self.layers = []  # ("conv", w, b) | ("pool",) in graph order, up to conv2d_6's ReLU
        for n in m.graph.node:
            if n.op_type == "Conv" and init[n.input[1]].dim() == 4:
                b = init[n.input[2]] if len(n.input) > 2 else None
                self.layers.append(("conv", init[n.input[1]], b))
            elif n.op_type == "MaxPool" and self.layers:
                self.layers.append(("pool",))
        p = "mos_estimator_logpow/%s/%s/ReadVariableOp/resource:0"
        self.dense = [(init[p % (d, "MatMul")], init[p % (d, "BiasAdd")]) for d in ("dense", "dense_1", "dense_3")]

    def maps(self, pcm, stop=None):
        """int16 PCM windows [B, WIN] -> the last map (or with stop, see convs), from the
        teacher's own features."""
        return self.convs(self.features(pcm), stop)

    def convs(self, x, stop=None, act=None):
        """log10 power features [B, NT, NF] -> the last map (dnsmos_feature_ceiling.py feeds it
        the student's features instead, q / x_scale); with stop=k, the map after the first k
        layers instead (k = 5: conv2d_3's ReLU after the first max pool, the --hint-mid map).
        ACT(k, z, a), if given, may replace convolution k's output a = max(z, 0) by returning
        a tensor (None keeps a): dnsmos_act_ceiling.py quantises activations this way."""
        with torch.no_grad():
            x = x.unsqueeze(1)
            k = 0
            for layer in self.layers[:stop]:
                if layer[0] == "pool":
                    x = F.max_pool2d(x, 2)
                    continue
                z = F.conv2d(x, layer[1], layer[2], padding=1)
                x = F.relu(z)
                if act is not None:
                    r = act(k, z, x)
                    x = x if r is None else r
                k += 1
            return x

    def features(self, pcm):
        """int16 PCM windows [B, WIN] -> the teacher's own log10 power features [B, NT, NF]."""
        with torch.no_grad():
            x = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
            fr = x.unfold(-1, 320, 160)[..., :NT, :]
            p = (fr @ self.kre) ** 2 + (fr @ self.kim) ** 2
            return torch.log10(torch.clamp(p, min=1e-12))

    def head(self, v):
        for k, (w, b) in enumerate(self.dense):
            v = v @ w + b
            if k < len(self.dense) - 1:
                v = F.relu(v)
        return v


def quant_rows(k):
    """int8 per row: k ~= q * s[:, None]."""
    s = np.abs(k).max(axis=1) / 127.0
    s[s == 0] = 1.0
    q = np.clip(np.round(k / s[:, None]), -127, 127).astype(np.int8)
    return q, s.astype(np.float32)


class FrontEnd:
    """int16 PCM window -> int8 features [900, 161] (the equations of models/bam.h)."""

    def __init__(self, re, im, xscale=None):
        """xscale: feature steps per decade (default: the module's XSCALE, set from --x-scale)."""
        self.bounds = bounds(xscale or XSCALE)
        self.qre, self.sre = quant_rows(re)
        self.qim, self.sim = quant_rows(im)
        self.kre = torch.from_numpy(self.qre.astype(np.float64)).T
        self.kim = torch.from_numpy(self.qim.astype(np.float64)).T

    def __call__(self, pcm):
        x = torch.from_numpy(pcm.astype(np.float64))
        fr = x.unfold(-1, 320, 160)[..., :NT, :]
        # integer dot products (exact in float64), then the row scale in float32
        are = (fr @ self.kre).float() * torch.from_numpy(self.sre) / 32768.0
        aim = (fr @ self.kim).float() * torch.from_numpy(self.sim) / 32768.0
        p = are * are + aim * aim
        # round(xscale log10 p) clamped to [-128, 127], exactly as snnd computes it
        idx = torch.searchsorted(self.bounds, p.contiguous(), right=False)
        return (idx - 128).to(torch.int8)


def fake_quant(w):
    """Per-output-channel symmetric int8 with a straight-through gradient."""
    dims = tuple(range(1, w.dim()))
    s = w.detach().abs().amax(dim=dims, keepdim=True).clamp(min=1e-8) / 127.0
    q = torch.clamp(torch.round(w / s), -127, 127) * s
    return w + (q - w).detach()


class Heaviside(torch.autograd.Function):
    """The step H(z) = [z > 0] with the surrogate gradient 1 / (1 + 2|z|)^2. Under --bf16's
    autocast the bits come out in bfloat16 (exact), the type the next convolution reads, so
    neither the map nor its gradient is cast; the surrogate is computed in place in one buffer
    as g / (4 (|z| + 1/2)^2), the same numbers, where the plain expression allocates a map per
    operation. Measured (2026-12-07, Intel AMX VM, 2 threads, 16 crops of 300 frames, rate+max):
    a training step 2.64 -> 1.97 s at widths 32 (..., 64), 6.2 -> 4.6 s at the teacher's, under
    bfloat16; 3.2 -> 2.8 s at widths 32 in float32. The float32 gradients are the same to all
    printed digits; under bfloat16 their norm moved by 1.4e-5 relative, as max pooling of
    bfloat16 bits may pass a tie's gradient to another position of the 2 x 2 window."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        dt = torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else torch.float32
        return (z > 0).to(dt)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        d = z.abs().add_(0.5).square_()
        return torch.div(g, d, out=d).mul_(0.25)


def dither_phase(n, shape):
    """p(t, f) = (t mod n) n + (f mod n) over a map of SHAPE [..., H, W], counted from the map's
    first row and column: the row of an exported [n^2, C] threshold tensor (conv_export)."""
    h, w = shape[-2], shape[-1]
    return (torch.arange(h)[:, None] % n) * n + torch.arange(w)[None, :] % n


def dither_offsets(n, shape):
    """o(t, f) = (D[t mod n][f mod n] + 1/2) / n^2 over a map of SHAPE [..., H, W], with D
    DITHER_INDEX[n]: n^2 offsets in (0, 1), each once per n x n block. A step whose threshold
    is u o(t, f) turns an activation a in [0, u] into a bit pattern whose local density is
    about a / u (ordered dither, as in halftoning), where one threshold for every position
    keeps only [a > 0]."""
    d = (torch.tensor(DITHER_INDEX[n], dtype=torch.float32) + 0.5) / (n * n)
    return d.flatten()[dither_phase(n, shape)]


def layer_beta(layer):
    """The step's share in convolution LAYER (0 .. NCONV - 1) at annealing progress BETA: BETA
    itself with --anneal-order together; with layerwise, min(1, max(0, NCONV BETA - layer)):
    the layers turn into steps one after another from the input on, each over 1 / NCONV of the
    anneal, while the later ones are still the teacher's ReLUs and can make up for it."""
    if ANNEAL_ORDER == "layerwise":
        return min(1.0, max(0.0, NCONV * BETA - layer))
    return BETA


def act(z, gain=None, layer=0):
    """The activation: the Heaviside step (surrogate gradient), or ReLU for --act relu. While
    --anneal binarises a network started from the teacher, BETA < 1 and a layer with a GAIN
    (per channel, set by init_from_teacher) blends the step with the teacher's own ReLU,
        a = b H(z) + (1 - b) gain ReLU(z),   b = layer_beta(layer),
    where gain ReLU(z) is the teacher's activation in the units the next layer's weights take
    (a bit stands for the channel's mean positive activation), so b = 0 is the teacher."""
    if ACT == "relu":
        return F.relu(z)
    h = Heaviside.apply(z)
    b = layer_beta(layer)
    if b >= 1.0 or gain is None:
        return h
    return b * h + (1.0 - b) * F.relu(z) * gain[None, :, None, None].to(z.dtype)


class QConv(nn.Module):
    def __init__(self, ci, co):
        super().__init__()
        self.conv = nn.Conv2d(ci, co, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(co)
        self.gain = None  # act's ReLU gain while annealing (not a buffer: exports never hold it)
        self.layer = 0  # its index in Bam.convs (act's layer)
        # --dither: the step fires where z > dith_c o(t, f) (dither_offsets), dith_c learned
        self.dith = nn.Parameter(torch.zeros(co)) if DITHER else None

    def shift(self, z):
        """z minus the position's threshold (--dither), what the step compares with 0."""
        if self.dith is None:
            return z
        o = dither_offsets(DITHER, z.shape).to(z.dtype)
        return z - self.dith.to(z.dtype)[None, :, None, None] * o

    def pre(self, x):
        """The batch-normalised sum z before the step (the hint loss reads the last one's). The
        weights go to the convolution channels-last, so oneDNN keeps every map channels-last (a
        layout: the same products, summed in another order). Measured (2026-12-07, Intel AMX VM,
        2 threads, 16 crops of 300 frames, forward, backward and Adam under bfloat16): a step of
        Bam with rate+max 1.84 -> 1.54 s at widths 32 (..., 64), median of 5; the seven
        convolutions with their steps alone 4.7 -> 3.7 s at the teacher's widths. One 64-channel
        convolution runs 2.7 times faster (oneDNN's AMX kernels); the element-wise rest does not
        change."""
        w = fake_quant(self.conv.weight).contiguous(memory_format=torch.channels_last)
        return self.bn(F.conv2d(x, w, padding=1))

    def forward(self, x):
        return act(self.shift(self.pre(x)), self.gain, self.layer)


class QLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, fake_quant(self.weight), self.bias)


class Bam(nn.Module):
    def __init__(self, widths=None, readout=None, floor=False):
        """FLOOR (read-outs of maxima only): the maxima pass through max(0, .), as the teacher's
        global max of a ReLU map does (buffer ro_floor, exported as readout.floor)."""
        super().__init__()
        widths = tuple(widths or WIDTHS)
        self.readout = readout or READOUT
        self.register_buffer("ro_floor", torch.zeros(widths[-1]) if floor and self.readout != "rate" else None)
        chans = (1,) + widths
        self.convs = nn.ModuleList(QConv(chans[i], chans[i + 1]) for i in range(len(widths)))
        for i, c in enumerate(self.convs):
            c.layer = i
        dims = (widths[-1] * (2 if self.readout == "rate+max" else 1),) + HEAD + (3,)
        self.fcs = nn.ModuleList(QLinear(dims[i], dims[i + 1]) for i in range(len(dims) - 1))
        self.register_buffer("out_mean", torch.zeros(3))
        self.register_buffer("out_std", torch.ones(3))

    def forward(self, q, rates=False):
        """q: int8-valued features [B, T, 161] -> raw scores [B, 3] (and with rates=True also
        the last map's firing rates [B, 64], which the auxiliary loss reads, and the last
        convolution's z [B, 64, T / 8, 20], which the hint loss reads, and the z of the
        convolution before the first pool, max-pooled 2x2 [B, C, T / 2, 80], which --hint-mid
        reads: the pool of the bits is the step of the pooled z)."""
        x = (q.float() / XSCALE).unsqueeze(1)
        zmid = None
        for i, c in enumerate(self.convs):
            if i == len(self.convs) - 1 or i == POOL_AFTER[0]:
                z = c.pre(x)
                x = act(c.shift(z), c.gain, i)
                if i == POOL_AFTER[0]:
                    zmid = F.max_pool2d(z, 2)
            else:
                x = c(x)
            if i in POOL_AFTER:
                x = F.max_pool2d(x, 2)
        # readout rate: the last map's firing rates; max: the global maximum of the last
        # convolution's z over positions, the teacher's own read-out (a global max over its
        # last ReLU map), in the exported file an affine map of max(dir S) (models/bam.h);
        # rate+max: both, rates first
        r = pool_readout(self.readout, x.float(), z.float(), 1.0, 0.0, self.ro_floor)
        v = self.head(r)
        return (v, r, z, zmid) if rates else v

    def head(self, r):
        """The dense read-out: the last map's firing rates r [B, 64] -> raw scores [B, 3]."""
        with torch.autocast("cpu", enabled=False):  # the head stays float32 under --bf16
            v = r
            for i, f in enumerate(self.fcs):
                v = f(v)
                if i < len(self.fcs) - 1:
                    v = F.relu(v)
            return v * self.out_std + self.out_mean


def poly(name, x):
    a, b, c = POLY[name]
    return a * x * x + b * x + c


def score_loss(p, y, ym, ys):
    """The score loss: the mean over windows and scores of SCORE_W times the squared error of the
    raw scores P against Y [B, 3], each standardised by the training targets' YM and YS (plain
    MSE with the default weights)."""
    return (SCORE_W * ((p - y) / ys) ** 2).mean()


def pearson(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def load_split(corpus, split, fe, cache, exclude=()):
    """int8 features of the split's windows (cached in CACHE/SPLIT_feats.npy, or
    SPLIT_feats_x<XSCALE>.npy for an x-scale other than 16), their teacher raw
    scores, their csv rows and their row numbers in SPLIT.csv (items whose source names one of
    EXCLUDE are left out)."""
    path = os.path.join(cache, split + ("_feats.npy" if XSCALE == 16 else "_feats_x%g.npy" % XSCALE))
    rows = list(csv.DictReader(open(os.path.join(corpus, split + ".csv"))))
    keep = [i for i, r in enumerate(rows) if not any(x in r["source"] for x in exclude)]
    rows = [rows[i] for i in keep]
    y = np.array([[float(r[n + "_raw"]) for n in NAMES] for r in rows], np.float32)
    if os.path.exists(path) and np.load(path, mmap_mode="r").shape[0] == len(rows):
        return np.load(path), y, rows, np.array(keep)
    feats = np.empty((len(rows), NT, NF), np.int8)
    t0 = time.time()
    for i, r in enumerate(rows):
        feats[i] = fe(read_wav16(os.path.join(corpus, r["file"]))[:WIN]).numpy()
        if (i + 1) % 500 == 0:
            print("  features %s %d/%d (%.0f s)" % (split, i + 1, len(rows), time.time() - t0), flush=True)
    np.save(path, feats)
    return feats, y, rows, np.array(keep)


TMAP = (64, NT // 8, NF // 8)  # the teacher's last map per window: channels, time, frequency


def load_teacher_maps(corpus, split, teacher, cache):
    """The teacher's last feature map of every window of SPLIT.csv, float32 [N, 64, 112, 20],
    memory-mapped from CACHE/SPLIT_tmaps.f32 (computed with Teacher.maps if absent). Checks that
    the teacher's head on each map's global maximum gives the corpus's raw scores."""
    path = os.path.join(cache, split + "_tmaps.f32")
    rows = list(csv.DictReader(open(os.path.join(corpus, split + ".csv"))))
    per = int(np.prod(TMAP))
    if not (os.path.exists(path) and os.path.getsize(path) == len(rows) * per * 4):
        t0 = time.time()
        with open(path + ".tmp", "wb") as f:
            for i, r in enumerate(rows):
                pcm = read_wav16(os.path.join(corpus, r["file"]))[:WIN]
                f.write(teacher.maps(pcm[None]).numpy().astype("<f4").tobytes())
                if (i + 1) % 100 == 0:
                    print("  teacher maps %s %d/%d (%.0f s)" % (split, i + 1, len(rows), time.time() - t0),
                          flush=True)
        os.replace(path + ".tmp", path)
    maps = np.memmap(path, dtype=np.float32, mode="r", shape=(len(rows),) + TMAP)
    y = np.array([[float(r[n + "_raw"]) for n in NAMES] for r in rows], np.float32)
    worst = 0.0
    for i in range(0, len(rows), 64):
        v = torch.from_numpy(np.asarray(maps[i:i + 64]).max(axis=(2, 3)))
        worst = max(worst, float(np.abs(teacher.head(v).numpy() - y[i:i + 64]).max()))
    print("teacher maps %s: head(global max) vs corpus raw scores max |diff| %.2e" % (split, worst), flush=True)
    if worst > 1e-3:
        sys.exit("teacher maps in %s disagree with the corpus scores (%.3g): delete it" % (path, worst))
    return maps


MIDMAP = (32, NT // 2, NF // 2)  # the teacher's conv2d_3 ReLU after the first pool, per window
MID_STOP = 5  # Teacher.layers up to and including that pool


def load_teacher_mid(corpus, split, teacher, cache):
    """The --hint-mid target of every window of SPLIT.csv: the teacher's conv2d_3 ReLU after the
    first 2x2 max pool, float32 [N, 32, 450, 80] (4.6 MB per window), memory-mapped from
    CACHE/SPLIT_tmaps_mid.f32. Absent, it is computed here with the torch rebuild (slow: about
    2 s per window; teacher_maps_ort.mjs with TEACHER_MAP=mid is faster). Three windows of the
    cache are checked against the torch rebuild before training on it."""
    path = os.path.join(cache, split + "_tmaps_mid.f32")
    rows = list(csv.DictReader(open(os.path.join(corpus, split + ".csv"))))
    per = int(np.prod(MIDMAP))
    if not (os.path.exists(path) and os.path.getsize(path) == len(rows) * per * 4):
        t0 = time.time()
        with open(path + ".tmp", "wb") as f:
            for i, r in enumerate(rows):
                pcm = read_wav16(os.path.join(corpus, r["file"]))[:WIN]
                f.write(teacher.maps(pcm[None], MID_STOP).numpy().astype("<f4").tobytes())
                if (i + 1) % 50 == 0:
                    print("  teacher mid maps %s %d/%d (%.0f s)" % (split, i + 1, len(rows), time.time() - t0),
                          flush=True)
        os.replace(path + ".tmp", path)
    maps = np.memmap(path, dtype=np.float32, mode="r", shape=(len(rows),) + MIDMAP)
    worst = 0.0
    for i in (0, len(rows) // 2, len(rows) - 1):
        pcm = read_wav16(os.path.join(corpus, rows[i]["file"]))[:WIN]
        ref = teacher.maps(pcm[None], MID_STOP)[0].numpy()
        worst = max(worst, float(np.abs(ref - maps[i]).max() / max(1e-6, np.abs(ref).max())))
    print("teacher mid maps %s: 3 windows against the torch rebuild, max |diff| / max %.2e" % (split, worst),
          flush=True)
    if worst > 1e-3:
        sys.exit("teacher mid maps in %s disagree with the teacher (%.3g): delete it" % (path, worst))
    return maps


def figures(p, y, resamples=0):
    """Raw scores P [N, 3] against the teacher's Y: per score the Pearson correlation of the raw
    and of the mapped scores, the raw RMSE and, with RESAMPLES > 0, a 95 % bootstrap interval of
    the mapped correlation (that many seeded resamples of the N windows: how finely the split
    resolves a difference between two files)."""
    res = {}
    rng = np.random.RandomState(0)
    draws = [rng.randint(0, len(p), len(p)) for _ in range(resamples)]
    for k, n in enumerate(NAMES):
        a, b = poly(n, p[:, k]), poly(n, y[:, k])
        res[n + "_raw"] = pearson(p[:, k], y[:, k])
        res[n] = pearson(a, b)
        if draws:
            res[n + "_ci95"] = [float(v) for v in np.percentile([pearson(a[d], b[d]) for d in draws], [2.5, 97.5])]
        res[n + "_rmse"] = float(np.sqrt(np.mean((p[:, k] - y[:, k]) ** 2)))
    return res


def evaluate(model, feats, y, bs=16):
    """figures() of the trained (QAT, float32) model on FEATS, and its raw scores."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(feats), bs):
            out.append(model(torch.from_numpy(feats[i:i + bs].astype(np.float32))).numpy())
    model.train()
    p = np.concatenate(out)
    return figures(p, y), p


def recalibrate(model, feats, bs=16):
    """Re-estimates every batch norm's running mean and variance on whole training windows
    (training saw 2 s crops, and the running averages lag the weights; a binary network's
    thresholds are sensitive to both). Weights are not changed."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative average over the passes below
    model.train()
    with torch.no_grad():
        for i in range(0, len(feats), bs):
            model(torch.from_numpy(feats[i:i + bs].astype(np.float32)))
    for b in bns:
        b.momentum = 0.1


def window_rates(model, feats, bs=8):
    """The last map's firing rates [N, 64] of whole windows (the head's input), batch norms in
    evaluation mode, float32, as the exported model computes them."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(feats), bs):
            out.append(model(torch.from_numpy(feats[i:i + bs].astype(np.float32)), rates=True)[1].numpy())
    model.train()
    return np.concatenate(out)


def refit_head(model, feats, y, steps, lr=3e-4, batch=64, seed=1):
    """Training labels crops (--crop-min..--crop-max frames) but snnd scores whole 9.01 s windows,
    and the head's input, the last map's firing rates, is not distributed the same on both (run
    24's epoch-19 average: test SIG 0.789 before, 0.867 after this). Refits the dense head alone,
    its weights fake-quantised as in training, on whole training windows' rates against their
    teacher scores: a seeded fifth of the windows is held out, checked 20 times, and the head
    with the best mean Pearson correlation on it is kept (the test split chooses nothing).
    Convolutions and batch norms are unchanged. Returns (held-out r before, after) per score."""
    t0 = time.time()
    r = window_rates(model, feats)
    print("  head refit: rates of %d whole training windows (%.0f s)" % (len(r), time.time() - t0), flush=True)
    perm = np.random.RandomState(seed).permutation(len(r))
    va, tr = perm[:len(r) // 5], perm[len(r) // 5:]
    R, Y = torch.from_numpy(r[tr]), torch.from_numpy(y[tr])
    Rv = torch.from_numpy(r[va])
    ym, ys = Y.mean(0), Y.std(0)

    def held_out():
        with torch.no_grad():
            p = model.head(Rv).numpy()
        return [pearson(poly(n, p[:, k]), poly(n, y[va, k])) for k, n in enumerate(NAMES)]
    before = best = held_out()
    keep = copy.deepcopy(model.fcs.state_dict())
    opt = torch.optim.Adam(model.fcs.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for s in range(1, steps + 1):
        b = torch.randint(0, len(R), (batch,), generator=g)
        loss = score_loss(model.head(R[b]), Y[b], ym, ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s % max(1, steps // 20) == 0:
            cur = held_out()
            if sum(cur) > sum(best):
                best, keep = cur, copy.deepcopy(model.fcs.state_dict())
    model.fcs.load_state_dict(keep)
    return before, best


# ---- export ------------------------------------------------------------------

def conv_export(c, in_scale):
    """Folds conv + BN + Heaviside into int8 weights and a threshold per channel:
    bit = dir * (S - thr) > 0 with S the integer sum (models/bam.h). With --dither N the
    threshold is per phase too, thr [N^2, C]: row p for the positions with (t mod N) N +
    (f mod N) = p, where the step compares z - dith o_p (QConv.shift)."""
    w = c.conv.weight.detach().double()
    s = w.abs().amax(dim=(1, 2, 3)).clamp(min=1e-8) / 127.0
    bn = c.bn
    inv = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    a = inv * s * in_scale                     # z = a S + d
    d = bn.bias.detach().double() - inv * bn.running_mean.double()
    if c.dith is not None:
        o = dither_offsets(DITHER, (DITHER, DITHER)).flatten().double()  # row p: phase p
        rows = [conv_threshold(a, d - c.dith.detach().double() * op) for op in o]
        return (conv_weights_int8(w, s), torch.stack([r[0] for r in rows]).float(), rows[0][1].to(torch.int8),
                a, d)
    thr, dirn = conv_threshold(a, d)
    return conv_weights_int8(w, s), thr.float(), dirn.to(torch.int8), a, d


def conv_weights_int8(w, s):
    """W [O, I, 3, 3] in steps of its per-output-channel scale S [O], rounded to int8 in
    -127..127 (fake_quant's grid)."""
    return torch.clamp(torch.round(w / s[:, None, None, None]), -127, 127).to(torch.int8)


def conv_threshold(a, d):
    """The integer sum's threshold and direction where z = a S + d changes sign."""
    thr = torch.empty_like(a)
    dirn = torch.empty_like(a)
    for k in range(len(a)):
        if a[k] > 0:
            thr[k], dirn[k] = -d[k] / a[k], 1
        elif a[k] < 0:
            thr[k], dirn[k] = -d[k] / a[k], -1
        else:
            thr[k], dirn[k] = (-math.inf if d[k] > 0 else math.inf), 1
    # S is an integer, so only floor(dir thr) matters (bam.c fires when dir S > floor(dir thr)).
    # Stored as that integer + 0.5 (times dir), exact in float32: a threshold just below an
    # integer (say 2365.99998) would otherwise round up to it in float32, and every sum equal
    # to it (conv 0 over silence repeats one sum at thousands of positions) would stop firing.
    fin = torch.isfinite(thr) & (thr.abs() < 2.0 ** 22)
    snapped = dirn * (torch.floor(dirn * thr) + 0.5)
    return torch.where(fin, snapped, thr), dirn


def linear_export(f):
    w = f.weight.detach().double()
    s = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.clamp(torch.round(w / s[:, None]), -127, 127)
    return q.to(torch.int8), s.float(), f.bias.detach().float()


def pool_readout(readout, bits, z, scale, bias, floor=None):
    """The head's input from the last convolution's bits and z [B, C, H, W] (in an exported
    file z = dir S, scaled per channel by SCALE plus BIAS): per channel the firing rate, the
    maximum of z over positions, or both (readout "rate", "max", "rate+max"); with FLOOR [C]
    each maximum is at least its floor (0: the teacher's max over a ReLU map)."""
    rates = bits.mean(dim=(2, 3))
    if readout == "rate":
        return rates
    m = z.amax(dim=(2, 3)) * scale + bias
    if floor is not None:
        m = torch.maximum(m, floor.to(m.dtype))
    return m if readout == "max" else torch.cat([rates, m], 1)


def file_readout(T):
    """The read-out of exported tensors T: "rate" without readout.scale, else "rate+max" when
    the first dense layer reads two values per channel, else "max"."""
    if "readout.scale" not in T:
        return "rate"
    return "rate+max" if T["fc0.w"].shape[1] == 2 * T["readout.scale"].shape[0] else "max"


def export_tensors(model, fe):
    T = {"stft.re": torch.from_numpy(fe.qre), "stft.re_scale": torch.from_numpy(fe.sre),
         "stft.im": torch.from_numpy(fe.qim), "stft.im_scale": torch.from_numpy(fe.sim)}
    for i, c in enumerate(model.convs):
        q, thr, dirn, a, d = conv_export(c, 1.0 / XSCALE if i == 0 else 1.0)
        T["conv%d.w" % i], T["conv%d.thr" % i], T["conv%d.dir" % i] = q, thr, dirn
    if model.readout != "rate":  # max over positions of z = a S + d is |a| max(dir S) + d
        T["readout.scale"], T["readout.bias"] = a.abs().float(), d.float()
        if model.ro_floor is not None:  # in units of the read-out, as z
            T["readout.floor"] = model.ro_floor.detach().float().clone()
    for i, f in enumerate(model.fcs):
        q, s, b = linear_export(f)
        T["fc%d.w" % i], T["fc%d.scale" % i], T["fc%d.b" % i] = q, s, b
    T["out.mean"] = model.out_mean.detach().float()
    T["out.std"] = model.out_std.detach().float()
    return T


def integer_forward(T, q):
    """The inference of models/bam.h on exported tensors (float32 where the C
    kernel uses float): features q [T, 161] int8 -> raw scores [3], or a batch
    q [B, T, 161] -> [B, 3]."""
    x = torch.from_numpy(np.asarray(q).astype(np.float32))
    one = x.dim() == 2
    x = x[None, None] if one else x[:, None]
    for i in range(len(WIDTHS)):
        S = F.conv2d(x, T["conv%d.w" % i].float(), padding=1)  # exact: |S| < 2^24
        thr = T["conv%d.thr" % i]
        if thr.dim() == 2:  # per dither phase [N^2, C] (conv_export): each position its row
            thr = thr[dither_phase(int(round(math.sqrt(thr.shape[0]))), S.shape)].permute(2, 0, 1)[None]
        else:
            thr = thr[None, :, None, None]
        dirn = T["conv%d.dir" % i].float()[None, :, None, None]
        x = (dirn * (S - thr) > 0).float()
        if i in POOL_AFTER:
            x = F.max_pool2d(x, 2)
    ro = file_readout(T)
    r = pool_readout(ro, x, dirn * S, *((T["readout.scale"], T["readout.bias"]) if ro != "rate" else (1, 0)),
                     T.get("readout.floor"))
    for i in range(len(HEAD) + 1):
        r = (r @ T["fc%d.w" % i].float().T) * T["fc%d.scale" % i] + T["fc%d.b" % i]
        if i < len(HEAD):
            r = torch.relu(r)
    r = (r * T["out.std"] + T["out.mean"]).numpy()
    return r[0] if one else r


def integer_evaluate(T, feats, y, bs=8):
    """figures() of the exported file itself (integer_forward: what snnd computes), with
    bootstrap intervals, and its raw scores."""
    with torch.no_grad():
        p = np.concatenate([integer_forward(T, feats[i:i + bs]) for i in range(0, len(feats), bs)])
    return figures(p, y, resamples=1000), p


def model_from_export(T, feats, xs_file=None, bs=8):
    """A trainable Bam whose inference (eval mode) reproduces exported tensors T, so a shipped
    dnsmos-bam.safetensors can be trained further (--init FILE.safetensors). export_tensors
    drops each convolution's weight scale and its batch norm, keeping int8 weights q and a
    threshold per channel: the weights become q * s with s giving PyTorch's default weight
    spread, and each batch norm is rebuilt from the statistics of the conv output u on FEATS
    (computed on the exact bits of the exported network) so that z = dir (u - c) / sigma with
    c the threshold in units of u: the same bits, a surrogate gradient on the data's scale.
    XS_FILE: the file's x_scale; conv 0's thresholds (integer sums of features at that scale)
    are rescaled to XSCALE's features, so a file trained at another scale starts close to its
    own function (not bit-identical: the features are rounded differently)."""
    model = Bam([int(T["conv%d.w" % i].shape[0]) for i in range(len(WIDTHS))], file_readout(T),
                "readout.floor" in T)
    x_all = [torch.from_numpy(feats[i:i + bs].astype(np.float32))[:, None] for i in range(0, len(feats), bs)]
    with torch.no_grad():
        for i, c in enumerate(model.convs):
            q = T["conv%d.w" % i].double()
            fan_in = q[0].numel()
            s = (1.0 / math.sqrt(3.0 * fan_in)) / q.std().item()
            in_scale = 1.0 / XSCALE if i == 0 else 1.0
            c.conv.weight.copy_((q * s).float())
            thr = T["conv%d.thr" % i].double()
            if i == 0 and xs_file:
                thr = thr * (XSCALE / xs_file)
            dirn = T["conv%d.dir" % i].double()
            s1 = s2 = None
            n = 0
            outs = []
            for x in x_all:
                S = F.conv2d(x, q.float(), padding=1)  # exact: integer sums below 2^24
                u = S.double() * (s * in_scale)
                s1 = u.sum(dim=(0, 2, 3)) if s1 is None else s1 + u.sum(dim=(0, 2, 3))
                s2 = (u * u).sum(dim=(0, 2, 3)) if s2 is None else s2 + (u * u).sum(dim=(0, 2, 3))
                n += u.numel() // u.shape[1]
                b = (dirn[None, :, None, None] * (S - thr[None, :, None, None]) > 0).float()
                outs.append(F.max_pool2d(b, 2) if i in POOL_AFTER else b)
            x_all = outs
            m = s1 / n
            var = (s2 / n - m * m).clamp(min=1e-12)
            sd = torch.sqrt(var + c.bn.eps)
            cu = thr * s * in_scale
            fin = torch.isfinite(cu)
            gamma = torch.where(fin, dirn, torch.zeros_like(dirn))
            beta = torch.where(fin, -dirn * (torch.where(fin, cu, m) - m) / sd,
                               torch.where(cu < 0, torch.ones_like(m), -torch.ones_like(m)))
            if i == len(model.convs) - 1 and "readout.scale" in T:
                # --readout max: z = |a| dir S + d exactly (the head reads its maximum), so
                # gamma / sd = dir |a| / s and beta = d + dir |a| m / s (u = s S, m its mean)
                ra, rb = T["readout.scale"].double(), T["readout.bias"].double()
                gamma = dirn * ra * sd / s
                beta = rb + dirn * ra * m / s
            c.bn.weight.copy_(gamma.float())
            c.bn.bias.copy_(beta.float())
            c.bn.running_mean.copy_(m.float())
            c.bn.running_var.copy_(var.float())
        for i, f in enumerate(model.fcs):
            f.weight.copy_(T["fc%d.w" % i].float() * T["fc%d.scale" % i][:, None])
            f.bias.copy_(T["fc%d.b" % i])
        if model.ro_floor is not None:
            model.ro_floor.copy_(T["readout.floor"])
        model.out_mean.copy_(T["out.mean"])
        model.out_std.copy_(T["out.std"])
    return model


def grow(old, widths):
    """A Bam of WIDTHS (each at least OLD's) whose outputs equal OLD's: OLD's channels are
    copied, every added channel gets fresh incoming weights and zero outgoing weights (the next
    convolution's, or the first dense layer's), so it changes nothing until training gives it
    a use. Lets a trained model continue with more capacity instead of starting over."""
    new = Bam(widths, old.readout, old.ro_floor is not None)  # floors stay 0
    with torch.no_grad():
        for a, b in zip(old.convs, new.convs):
            co, ci = a.conv.weight.shape[:2]
            b.conv.weight[:co, :ci] = a.conv.weight
            b.conv.weight[:, ci:] = 0.0
            for k in ("weight", "bias", "running_mean", "running_var"):
                getattr(b.bn, k)[:co] = getattr(a.bn, k)
            if a.dith is not None:  # added channels' offsets start at 0
                b.dith[:co] = a.dith
        n = old.fcs[0].weight.shape[1]
        new.fcs[0].weight.zero_()
        new.fcs[0].weight[:, :n] = old.fcs[0].weight
        new.fcs[0].bias.copy_(old.fcs[0].bias)
        for a, b in zip(old.fcs[1:], new.fcs[1:]):
            b.load_state_dict(a.state_dict())
        new.out_mean.copy_(old.out_mean)
        new.out_std.copy_(old.out_std)
    return new


def add_max_inputs(old):
    """A --readout rate+max Bam whose outputs equal OLD's (a rate model): the same weights, and
    the first dense layer's weights for the 64 max inputs zero, so they change nothing until
    training gives them a use."""
    new = Bam([int(c.conv.weight.shape[0]) for c in old.convs], "rate+max")
    sd = old.state_dict()
    w = sd["fcs.0.weight"]
    sd["fcs.0.weight"] = torch.cat([w, torch.zeros_like(w)], 1)
    new.load_state_dict(sd)
    return new


def init_from_teacher(teacher, feats, anneal=False):
    """A Bam of the teacher's widths whose steps fire where the teacher's ReLUs are positive, as
    far as bits can: convolution l gets the teacher's weights, each input channel c scaled by
    m_c, the teacher's mean positive activation of c (a bit stands for "c > 0", m_c for how much),
    and its batch norm is set so that z = (sum + teacher bias) / sd on FEATS (int8 windows, a
    calibration batch; with --dither a bit stands for 2 m_c and its step's threshold is
    2 m_c o(t, f), so the bits' local density follows the teacher's activation). The sums are
    those of the bits path, or with ANNEAL of the teacher's
    float path (inputs t_c / m_c), and each layer gets act's gain sd / m, so that at BETA = 0 the
    network computes the teacher's maps. With a read-out of maxima the dense head starts as the
    teacher's (the max of z times the last sd is the teacher's global max before its ReLU); a
    rate head starts fresh. Prints, per layer, how often the student's bit equals [teacher ReLU
    > 0]."""
    convs = [l for l in teacher.layers if l[0] == "conv"]
    if DITHER and anneal:
        raise ValueError("init_from_teacher: --dither with --anneal is not implemented")
    model = Bam(tuple(int(l[1].shape[0]) for l in convs), floor=True)  # a max read-out is floored
    with torch.no_grad():
        t = (torch.from_numpy(feats.astype(np.float32)) / XSCALE).unsqueeze(1)  # the teacher's path
        s = t  # the student's path: the same features, then bits
        f = t  # the teacher's path in the student's units (t_c / m_c), for ANNEAL
        m, li, sd = None, 0, None
        for layer in teacher.layers:
            if layer[0] == "pool":
                t, s, f = F.max_pool2d(t, 2), F.max_pool2d(s, 2), F.max_pool2d(f, 2)
                continue
            w, b = layer[1], layer[2]
            c = model.convs[li]
            c.conv.weight.copy_(w if m is None else w * m[None, :, None, None])
            ys = F.conv2d(s, fake_quant(c.conv.weight), padding=1)
            y = F.conv2d(f, fake_quant(c.conv.weight), padding=1) if anneal else ys
            mu, var = y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3))
            sd = torch.sqrt(var + c.bn.eps)
            c.bn.running_mean.copy_(mu)
            c.bn.running_var.copy_(var)
            c.bn.weight.fill_(1.0)
            c.bn.bias.copy_((mu + b) / sd)
            t = F.relu(F.conv2d(t, w, b, padding=1))
            pos = (t > 0).float()
            m = t.sum(dim=(0, 2, 3)) / pos.sum(dim=(0, 2, 3)).clamp(min=1.0)
            if c.dith is None:
                s = ((ys + b[None, :, None, None]) > 0).float()
            else:  # --dither: a bit stands for u = 2 m and fires where the sum passes u o(t, f)
                m = 2.0 * m
                c.dith.copy_(m / sd)
                s = ((ys + b[None, :, None, None]) > m[None, :, None, None] * dither_offsets(DITHER, ys.shape)).float()
            if anneal:
                f = t / m.clamp(min=1e-12)[None, :, None, None]
                c.gain = torch.where(m > 0, sd / m.clamp(min=1e-12), torch.zeros_like(m))
            print("  conv%d: bits agree with the teacher's ReLU > 0 at %.1f %% of positions, %.1f %% set"
                  % (li, 100.0 * float((s == pos).float().mean()), 100.0 * float(s.mean())), flush=True)
            li += 1
        if model.readout != "rate":
            (w0, b0), rest = teacher.dense[0], teacher.dense[1:]
            fc0 = model.fcs[0]
            fc0.weight.zero_()
            fc0.weight[:, fc0.weight.shape[1] - w0.shape[0]:] = w0.T * sd[None, :]
            fc0.bias.copy_(b0)
            for fc, (w, b) in zip(model.fcs[1:], rest):
                fc.weight.copy_(w.T)
                fc.bias.copy_(b)
            model.out_mean.zero_()
            model.out_std.fill_(1.0)
    return model


class FloatNet(nn.Module):
    """The same network in float32 for ONNX Runtime: samples in [-1, 1] [1, 144160] in (as
    DNSMOS P.835 takes them), raw scores out; dequantised weights, float convolutions, the
    Heaviside as Greater + Cast, features rounded from a float log10 (not bound counting)."""

    def __init__(self, T):
        super().__init__()
        k = np.concatenate([T["stft.re"].numpy() * T["stft.re_scale"].numpy()[:, None],
                            T["stft.im"].numpy() * T["stft.im_scale"].numpy()[:, None]])
        self.k = nn.Parameter(torch.from_numpy(k.astype(np.float32) / 32768.0)[:, None, :])
        self.w = nn.ParameterList(nn.Parameter(T["conv%d.w" % i].float()) for i in range(len(WIDTHS)))
        self.thr = [T["conv%d.thr" % i].clone() for i in range(len(WIDTHS))]
        self.dirn = [T["conv%d.dir" % i].float() for i in range(len(WIDTHS))]
        self.fw = nn.ParameterList(nn.Parameter(T["fc%d.w" % i].float() * T["fc%d.scale" % i][:, None])
                                   for i in range(len(HEAD) + 1))
        self.fb = [T["fc%d.b" % i] for i in range(len(HEAD) + 1)]
        self.om, self.os = T["out.mean"], T["out.std"]
        self.readout = file_readout(T)
        self.ro = (T["readout.scale"], T["readout.bias"]) if self.readout != "rate" else (1.0, 0.0)
        self.floor = T.get("readout.floor")

    def forward(self, pcm):
        pcm = torch.clamp(torch.round(pcm * 32768.0), -32768, 32767)
        y = F.conv1d(pcm[:, None, :WIN], self.k, stride=160)  # [1, 322, 900]
        p = y[:, :NF] ** 2 + y[:, NF:] ** 2
        v = torch.log10(torch.clamp(p, min=1e-12))
        x = torch.clamp(torch.round(v * XSCALE), -128, 127).transpose(1, 2)[:, None]
        for i in range(len(WIDTHS)):
            S = F.conv2d(x, self.w[i], padding=1)
            x = ((S - self.thr[i][None, :, None, None]) * self.dirn[i][None, :, None, None] > 0).float()
            if i in POOL_AFTER:
                x = F.max_pool2d(x, 2)
        r = pool_readout(self.readout, x, S * self.dirn[-1][None, :, None, None], *self.ro, self.floor)
        for i in range(len(HEAD) + 1):
            r = F.linear(r, self.fw[i], self.fb[i])
            if i < len(HEAD):
                r = torch.relu(r)
        return r * self.os + self.om


def ridge_readout(pairs, lam):
    """Least squares W [k, d], b [k] with G ~= X W^T + b over every row of PAIRS, an iterable of
    (X [n, d], G [n, k]) batches (normal equations summed in float64, so batches need not be
    kept), with a ridge of LAM per row on W and b; also returns the mean squared residual."""
    ata = atb = None
    gtg, n = 0.0, 0
    for X, G in pairs:
        A = torch.cat([X.double(), torch.ones(len(X), 1, dtype=torch.float64)], 1)
        G = G.double()
        ata = A.T @ A if ata is None else ata + A.T @ A
        atb = A.T @ G if atb is None else atb + A.T @ G
        gtg += float((G * G).sum())
        n += len(A)
    sol = torch.linalg.solve(ata + lam * n * torch.eye(ata.shape[0], dtype=torch.float64), atb)
    resid = (gtg - 2 * float((sol * atb).sum()) + float((sol * (ata @ sol)).sum())) / (n * atb.shape[1])
    return sol[:-1].T.float(), sol[-1].float(), resid


def trained_outputs(model, feats, idx, bs=8):
    """(idx batch, model(..., rates=True)) for the windows IDX in batches of BS, in eval mode
    and without gradients: what the read-out fits below are fitted on."""
    model.eval()
    with torch.no_grad():
        for i in range(0, len(idx), bs):
            j = idx[i:i + bs]
            yield j, model(torch.from_numpy(feats[j].astype(np.float32)), rates=True)
    model.train()


def fit_aux(model, feats, tmaps, keep, gmean, gstd, every=8):
    """The auxiliary head of a trained MODEL, fitted by least squares (not random): the firing
    rates of every EVERY-th training window (whole windows) against the teacher's standardised
    pooled features, so a continued run's auxiliary gradient starts from the best linear
    read-out of the trained rates instead of from a random head's."""
    idx = np.arange(0, len(feats), every)
    pairs = ((out[1], (torch.from_numpy(np.stack([np.asarray(tmaps[keep[k]]).max(axis=(1, 2)) for k in j]))
                       - gmean) / gstd) for j, out in trained_outputs(model, feats, idx))
    # ridge 1e-3 in all: the rates of a binary map are few and correlated; it keeps W bounded
    w, b, resid = ridge_readout(pairs, 1e-3 / len(idx))
    aux = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        aux.weight.copy_(w)
        aux.bias.copy_(b)
    print("auxiliary head fitted on %d training windows: loss %.4f" % (len(idx), resid), flush=True)
    return aux


def hint_stats(tmaps, keep, every=16):
    """Per-channel mean and standard deviation of a teacher map (the last, or the mid) over
    every EVERY-th training window: the hint losses compare standardised maps, so each channel
    counts alike."""
    m = np.stack([np.asarray(tmaps[keep[j]]) for j in range(0, len(keep), every)]).astype(np.float64)
    mean = m.mean(axis=(0, 2, 3))
    std = m.std(axis=(0, 2, 3))
    std = np.where(std > 1e-6, std, 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def fit_hint(model, feats, tmaps, keep, hmean, hstd, every=16, out=2):
    """The hint read-out (a 1x1 convolution from the student's last z to the teacher's last map;
    with out=3, from the pooled z before the first pool to the teacher's mid map) of a trained
    MODEL, fitted by least squares over every position of every EVERY-th training window, so a
    continued run's hint gradient starts from the best linear read-out."""
    idx = np.arange(0, len(feats), every)
    k_out = out

    def rows(m):  # [B, C, T, F] -> one row per position [B T F, C]
        return m.permute(0, 2, 3, 1).reshape(-1, m.shape[1])

    pairs = ((rows(out[k_out]), rows((torch.from_numpy(np.stack([np.asarray(tmaps[keep[k]]) for k in j]))
                                  - hmean[None, :, None, None]) / hstd[None, :, None, None]))
             for j, out in trained_outputs(model, feats, idx))
    w, b, resid = ridge_readout(pairs, 1e-3)
    ro = nn.Conv2d(w.shape[1], w.shape[0], 1)
    with torch.no_grad():
        ro.weight.copy_(w[:, :, None, None])
        ro.bias.copy_(b)
    print("hint read-out fitted on %d training windows: loss %.4f" % (len(idx), resid), flush=True)
    return ro


# options that define a run's training (--continue refuses a change to any of them)
RUN_OPTIONS = ("lr", "batch", "seed", "aux", "hint", "ema", "x_scale", "widths", "crop_min",
               "crop_max", "full_after", "exclude_source", "init", "hint_mid", "val_source", "act",
               "init_teacher", "readout", "anneal", "anneal_order", "dither", "score_weights")
ADDED_LATER = {"hint_mid": 0.0, "val_source": [], "act": "step", "init_teacher": False, "readout": "rate",
               "anneal": 0.0, "anneal_order": "together", "dither": 0, "score_weights": "1,1,1"}  # options newer than some saved states: their value there


def save_state(path, **state):
    """Writes the training state to path atomically (a temporary file renamed over it), so an
    interrupted write leaves the previous epoch's state."""
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_state(path, args):
    """The state save_state wrote for this --out directory, after checking that args repeats the
    run's training options; exits with the option that differs."""
    if not os.path.exists(path):
        sys.exit("--continue: no %s (a run writes it after its first epoch)" % path)
    state = torch.load(path)
    for k in RUN_OPTIONS:
        was = state["args"].get(k, ADDED_LATER.get(k))
        if was != getattr(args, k):
            sys.exit("--continue: --%s is %r here but %r in the interrupted run (%s)"
                     % (k.replace("_", "-"), getattr(args, k), was, path))
    if state["args"]["minutes"] != args.minutes:
        print("--continue: budget %g minutes (the run had %g)" % (args.minutes, state["args"]["minutes"]),
              flush=True)
    return state


def ema_update(avg, model, decay):
    """avg <- decay avg + (1 - decay) model, over every parameter and batch norm statistic (the
    average's thresholds then follow its weights); integer buffers (batch counts) are copied."""
    with torch.no_grad():
        for a, m in zip(avg.state_dict().values(), model.state_dict().values()):
            if a.dtype.is_floating_point:
                a.mul_(decay).add_(m, alpha=1.0 - decay)
            else:
                a.copy_(m)


def keep_freed_memory(widths, whole_only):
    """Re-executes this script with glibc's malloc told to keep freed memory: each training step
    allocates and frees maps of tens of MB, which glibc otherwise returns to the kernel and
    faults back in, page by page, on the next step. Measured on the 2-vCPU VM: 20 s per step
    of 16 x 3 s crops without, 1.2-2.1 s with (most of the difference was kernel time).
    With a layer wider than 64 (the teacher's 128) a step's maps reach 0.5 GB, and with crops of
    varying length keeping them all grew the process past 24 GB (killed by the OOM killer, run
    24): there, maps of 256 MB and more are returned to the kernel and two arenas are used
    (measured: 12-14 GB, slower steps). When every batch is whole windows (WHOLE_ONLY, i.e.
    --full-after 0) the sizes repeat and freed memory is reused, so it is kept at any width:
    measured on the teacher's widths (forward, backward and Adam step on 8 whole windows in
    bf16, 30 steps, 2 threads) 3.6 s per step at a steady 6.3 GB, against 8.7 s returning the
    large maps (run 25 in models/zoo/README.md spent about a third of its time in page faults).
    A MALLOC_MMAP_THRESHOLD_ already in the environment is left as it is."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return
    if max(widths) > 64 and not whole_only:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 28), MALLOC_TRIM_THRESHOLD_=str(1 << 28),
                   MALLOC_ARENA_MAX="2")
    else:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 32), MALLOC_TRIM_THRESHOLD_=str(1 << 32),
                   MALLOC_TOP_PAD_=str(1 << 30))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    global WIDTHS, XSCALE, ACT, READOUT, BETA, ANNEAL_ORDER, DITHER, SCORE_W
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--epochs", type=int, default=200, help="at most; --minutes usually ends it")
    ap.add_argument("--eval-every", type=int, default=4, help="epochs between test evaluations")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ref-clips", nargs="*", default=[], help="16 kHz WAVs: write reference outputs")
    ap.add_argument("--val-source", nargs="*", default=[],
                    help="hold out the train windows whose source names one of these as a validation "
                         "split (never trained on): evaluated with the test split, and the model (with "
                         "--ema its average) with the best mean of the three mapped Pearson correlations "
                         "on it is the one exported, so no choice is made on the test split")
    ap.add_argument("--exclude-source", nargs="*", default=["pesq_speech_bab"],
                    help="drop train items whose source names these (pesq_speech_bab_0dB is the "
                         "test clip pesq_speech's utterance with babble)")
    ap.add_argument("--recalibrate", type=int, default=0, help="1: re-estimate batch norm statistics "
                    "on whole training windows before export")
    ap.add_argument("--refit-head", type=int, default=0, metavar="STEPS", help="before export, "
                    "refit the dense head on whole training windows' firing rates for STEPS Adam "
                    "steps (e.g. 6000), keeping the best on a held-out fifth of them (refit_head: "
                    "training labels crops, snnd scores whole windows)")
    ap.add_argument("--refit-stride", type=int, default=1, help="--refit-head reads every N-th "
                    "training window (the rates cost one float forward pass per window)")
    ap.add_argument("--resume", help="a checkpoint .pt to export without training")
    ap.add_argument("--continue", dest="cont", action="store_true", help="carry on this --out "
                    "directory's interrupted run from its train_state.pt (written after every "
                    "epoch): weights, moving average, read-outs, optimiser, random generators and "
                    "the minutes already spent, so the schedule resumes where it stopped; the "
                    "run's training options must be repeated unchanged (checked), except --minutes, "
                    "which may extend the budget, and --epochs")
    ap.add_argument("--init", help="start training from a checkpoint .pt (bam.pt: the exported "
                    "weights; a run's train_state.pt: its last weights, not their moving average), "
                    "or from an exported dnsmos-bam.safetensors (e.g. the shipped one; batch norms "
                    "rebuilt from data); read-outs are refitted, the optimiser and schedule start afresh")
    ap.add_argument("--init-teacher", action="store_true", help="start from the teacher's own "
                    "convolution weights (init_from_teacher); --widths must be the teacher's, "
                    "128,64,64,32,32,32,64 (about 12-14 GB of memory, see keep_freed_memory)")
    ap.add_argument("--crop-min", type=int, default=200, help="shortest training crop in frames "
                    "(10 ms); crops are labelled by the teacher on the crop itself")
    ap.add_argument("--crop-max", type=int, default=400, help="longest training crop in frames "
                    "(short crops train ~2.5x more frames per second than whole windows here)")
    ap.add_argument("--full-after", type=float, default=0.75, help="share of the time budget after "
                    "which every batch is whole 9.01 s windows")
    ap.add_argument("--aux", type=float, default=0.5, help="weight of the loss on the teacher's "
                    "pooled features")
    ap.add_argument("--hint", type=float, default=0.0, help="weight of the hint loss: a 1x1 "
                    "convolution (used only in training) from the last convolution's z must "
                    "reproduce the teacher's last map at every position (standardised per channel), "
                    "a dense target where the score loss gives 3 numbers per window")
    ap.add_argument("--hint-mid", type=float, default=0.0, help="weight of a second hint loss, on the "
                    "layers that limit the student (models/zoo/README.md, item 5): a 1x1 convolution "
                    "from the 2x2-pooled z of the convolution before the first pool must reproduce the "
                    "teacher's conv2d_3 map after its first pool (32 x 450 x 80 per window, "
                    "standardised per channel; cached in OUT/train_tmaps_mid.f32, 6.9 GB for the "
                    "1 500 train windows, see teacher_maps_ort.mjs)")
    ap.add_argument("--ema", type=float, default=0.0, help="if > 0, also keep an exponential moving "
                    "average of the weights and batch norm statistics with this decay per step "
                    "(e.g. 0.998: a half-life of ~350 steps) and export it instead of the last weights")
    ap.add_argument("--x-scale", type=float, default=XSCALE, help="feature steps per decade of power: "
                    "q = round(x_scale log10 P) clamped to [-128, 127] covers 10^(-128 / x_scale) .. "
                    "10^(127 / x_scale); the teacher floors P at 1e-12, which 10 reaches and 16 (runs "
                    "1-5) clips at 1e-8, costing the teacher itself BAK correlation (see models/zoo/README.md)")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="the seven convolutions' "
                    "widths, multiples of 8 up to 128 (snnd's limits); with --init from a narrower "
                    "model, its channels are kept and the added ones start with no effect (grow)")
    ap.add_argument("--bf16", type=float, default=0.0, help="share of the time budget (from its start) "
                    "trained under bfloat16 autocast: the convolutions run about twice as fast on a CPU "
                    "with AVX512-BF16, but their sums are rounded to 8 significant bits, which flips "
                    "bits near the thresholds (measured on run 12's model: 0.2 %% of conv 0's, 10 %% "
                    "of conv 6's); the rest of the budget, evaluation and export are float32. "
                    "May change on --continue")
    ap.add_argument("--act", choices=("step", "relu"), default="step", help="relu: a control, the "
                    "same network with float (ReLU) activations, to measure what binarisation costs; "
                    "it is evaluated on the test split (eval.json, test_pred.csv) and not exported")
    ap.add_argument("--score-weights", default="1,1,1", help="weights of SIG, BAK and OVRL in the "
                    "score loss (and the head refit), scaled to mean 1: e.g. 2,1,1 asks more of SIG")
    ap.add_argument("--readout", choices=("rate", "max", "rate+max"), default="rate", help="what the dense head "
                    "reads of the last convolution: rate, its map's 64 firing rates (runs 1-26); max, "
                    "the global maximum over positions of its batch-normalised sum z, the teacher's "
                    "own read-out (in snnd: max of dir S, an integer, then one multiply-add per "
                    "channel; that layer's map is never stored); rate+max, both (128 head inputs). "
                    "With --init of a rate model: for max the head is first refitted on the new "
                    "read-out of whole training windows; for rate+max the max inputs start with zero "
                    "weights, so training starts from the rate model's own outputs")
    ap.add_argument("--anneal", type=float, default=0.0, help="with --init-teacher: binarise "
                    "gradually. Every activation starts as the teacher's ReLU (in the units its bits "
                    "stand for) and becomes the step over this share of the time budget (BETA in act "
                    "rises linearly from 0 to 1); the rest trains the binary network. With --readout "
                    "max or rate+max the head starts as the teacher's dense layers, so training starts "
                    "from the teacher's own scores")
    ap.add_argument("--dither", type=int, choices=(0,) + tuple(sorted(DITHER_INDEX)), default=0,
                    help="N > 0: every step's threshold moves with the position, dith_c o(t, f) with o an N x N "
                    "ordered-dither pattern in (0, 1) and dith_c learned per channel (with "
                    "--init-teacher: twice the teacher's mean positive activation, so a bit's local "
                    "density follows the activation; dnsmos_act_ceiling.py dN measures what that "
                    "keeps). An experiment: the thresholds export per phase ([N^2, C]), which "
                    "snnd's kernels do not run yet, so only eval.json is written")
    ap.add_argument("--anneal-order", choices=("together", "layerwise"), default="together",
                    help="with --anneal: every layer's step share rises at once (together), or the "
                    "layers turn into steps one after another from the input on, each over 1/7 of "
                    "the anneal, the later ones still the teacher's ReLUs (layerwise; layer_beta)")
    args = ap.parse_args()
    if not 0.0 <= args.anneal < 1.0:
        sys.exit("--anneal %g: a share of the time budget, from 0 (off) to below 1" % args.anneal)
    if args.anneal > 0 and not args.init_teacher:
        sys.exit("--anneal %g: needs --init-teacher (it starts from the teacher's own activations)"
                 % args.anneal)
    if args.anneal > 0 and args.act != "step":
        sys.exit("--anneal %g: anneals towards the step; not with --act %s" % (args.anneal, args.act))
    if not 0.0 <= args.bf16 <= 1.0:
        sys.exit("--bf16 %g: a share of the time budget, from 0 to 1" % args.bf16)
    if args.cont and args.resume:
        sys.exit("--continue and --resume: choose one (--resume exports a finished checkpoint)")
    if args.hint < 0:
        sys.exit("--hint %g: a loss weight, must be 0 (off) or positive" % args.hint)
    if args.hint_mid < 0:
        sys.exit("--hint-mid %g: a loss weight, must be 0 (off) or positive" % args.hint_mid)
    if args.refit_head < 0 or args.refit_stride < 1:
        sys.exit("--refit-head %d --refit-stride %d: steps must be 0 (off) or positive, the stride "
                 "1 or more" % (args.refit_head, args.refit_stride))
    if not 1.0 <= args.x_scale <= 64.0:
        sys.exit("--x-scale %g: must be from 1 to 64" % args.x_scale)
    XSCALE = args.x_scale
    try:
        w = [float(v) for v in args.score_weights.split(",")]
    except ValueError:
        w = []
    if len(w) != 3 or min(w) < 0 or sum(w) <= 0:
        sys.exit("--score-weights %s: three weights (SIG,BAK,OVRL), none negative, not all 0"
                 % args.score_weights)
    SCORE_W = torch.tensor(w) * 3 / sum(w)
    ACT = args.act
    READOUT = args.readout
    ANNEAL_ORDER = args.anneal_order
    DITHER = args.dither
    if DITHER and (args.anneal > 0 or args.act != "step"):
        sys.exit("--dither %d: a step's threshold; not with --anneal or --act relu" % DITHER)
    if args.anneal_order != "together" and args.anneal <= 0:
        sys.exit("--anneal-order %s: needs --anneal" % args.anneal_order)
    try:
        WIDTHS = tuple(int(v) for v in args.widths.split(","))
    except ValueError:
        sys.exit("--widths %s: not a list of integers" % args.widths)
    if len(WIDTHS) != 7:
        sys.exit("--widths %s: %d widths, need 7 (one per convolution)" % (args.widths, len(WIDTHS)))
    for i, w in enumerate(WIDTHS):
        if w % 8 or not 8 <= w <= 128:
            sys.exit("--widths %s: conv%d's %d is not a multiple of 8 from 8 to 128 (snnd's limits)"
                     % (args.widths, i, w))
    if args.init_teacher and args.init:
        sys.exit("--init-teacher and --init: choose one")
    keep_freed_memory(WIDTHS, args.full_after <= 0)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    fe = FrontEnd(*teacher_stft(args.teacher))
    print("features ...", flush=True)
    ftr, ytr, rtr, ktr = load_split(args.corpus, "train", fe, args.out, args.exclude_source)
    fva = yva = None
    if args.val_source:
        isval = np.array([any(x in r["source"] for x in args.val_source) for r in rtr])
        if not 0 < isval.sum() < len(rtr):
            sys.exit("--val-source %s: names %d of the %d training windows (need some, not all)"
                     % (" ".join(args.val_source), int(isval.sum()), len(rtr)))
        fva, yva = ftr[isval], ytr[isval]
        ftr, ytr, ktr = ftr[~isval], ytr[~isval], ktr[~isval]
        print("validation: %d training windows held out (sources naming %s)"
              % (len(fva), " ".join(args.val_source)), flush=True)
    fte, yte, rte, _ = load_split(args.corpus, "test", fe, args.out)
    print("train %d windows, test %d" % (len(ftr), len(fte)), flush=True)
    if not args.resume and not 1 <= args.batch <= len(ftr):
        sys.exit("--batch %d: must be from 1 to the %d training windows (an epoch needs a step)"
                 % (args.batch, len(ftr)))
    model = Bam()
    model.out_mean.copy_(torch.from_numpy(ytr.mean(0)))
    model.out_std.copy_(torch.from_numpy(ytr.std(0)))
    ckpt = os.path.join(args.out, "bam.pt")
    state_path = os.path.join(args.out, "train_state.pt")
    state = load_state(state_path, args) if args.cont else None
    if args.resume:
        sd = torch.load(args.resume)
        if "ro_floor" in sd:  # a floored read-out (--init-teacher with a read-out of maxima)
            model = Bam(floor=True)
        model.load_state_dict(sd)
    else:
        if state is not None:  # every trained tensor comes from the state below
            model = Bam(WIDTHS, floor="ro_floor" in state["model"])
            print("continuing %s: epoch %d, %.1f of %g minutes spent" % (
                state_path, state["epoch"], state["elapsed"] / 60, args.minutes), flush=True)
        elif args.init_teacher:
            teacher = Teacher(args.teacher)
            tw = tuple(int(l[1].shape[0]) for l in teacher.layers if l[0] == "conv")
            if tw != WIDTHS:
                sys.exit("--init-teacher: --widths %s differ from the teacher's %s"
                         % (args.widths, ",".join(map(str, tw))))
            BETA = 0.0 if args.anneal > 0 else 1.0  # the least-squares fits below see the start
            model = init_from_teacher(teacher, ftr[::max(1, len(ftr) // 6), :400], args.anneal > 0)
            if READOUT == "rate":  # a fresh head; a max head is the teacher's, raw scores out
                model.out_mean.copy_(torch.from_numpy(ytr.mean(0)))
                model.out_std.copy_(torch.from_numpy(ytr.std(0)))
            res, _ = evaluate(model, fte, yte)
            print("initialised from the teacher (step share %.2f): test r SIG %.3f BAK %.3f OVRL %.3f"
                  % (BETA, res["SIG"], res["BAK"], res["OVRL"]), flush=True)
        elif args.init and args.init.endswith(".safetensors"):
            T0, meta0 = safetensors_writer.read(args.init)
            if meta0.get("readout", "rate") != READOUT:
                sys.exit("--init %s: its read-out is %s; give --readout %s" % (
                    args.init, meta0.get("readout", "rate"), meta0.get("readout", "rate")))
            model = model_from_export({k: torch.from_numpy(v.copy()) for k, v in T0.items()}, ftr[::16],
                                      float(meta0.get("x_scale", 16)))
            res, _ = evaluate(model, fte, yte)
            print("initialised from %s: test r SIG %.3f BAK %.3f OVRL %.3f" % (
                args.init, res["SIG"], res["BAK"], res["OVRL"]), flush=True)
        elif args.init:
            sd = torch.load(args.init)
            if "model" in sd and "opt" in sd:  # a run's train_state.pt: where --continue would go on
                if sd["args"]["x_scale"] != args.x_scale:  # its thresholds assume its features
                    sys.exit("--init %s: trained with --x-scale %g, not %g" % (
                        args.init, sd["args"]["x_scale"], args.x_scale))
                sd = sd["model"]
            # a rate model taken to rate+max: built as it is, then given zero-weight max inputs
            grow_ro = READOUT == "rate+max" and sd["fcs.0.weight"].shape[1] == sd["convs.6.conv.weight"].shape[0]
            model = Bam([int(sd["convs.%d.conv.weight" % i].shape[0]) for i in range(len(WIDTHS))],
                        "rate" if grow_ro else READOUT, "ro_floor" in sd)
            miss, unexp = model.load_state_dict(sd, strict=False)
            if unexp or any(not k.endswith(".dith") for k in miss):
                sys.exit("--init %s: does not fit --widths/--readout (missing %s, unexpected %s)"
                         % (args.init, miss, unexp))
            if miss:  # --dither from a model without: every offset starts at 0, the same function
                print("--dither %d: the offsets start at 0" % DITHER, flush=True)
            if grow_ro:
                model = add_max_inputs(model)
            print("initialised from", args.init, flush=True)
        old = tuple(int(c.conv.weight.shape[0]) for c in model.convs)
        if old != WIDTHS:
            if any(a > b for a, b in zip(old, WIDTHS)):
                sys.exit("--widths %s: narrower than --init's %s" % (args.widths, old))
            model = grow(model, WIDTHS)
            res, _ = evaluate(model, fte, yte)
            print("grown from widths %s to %s: test r SIG %.3f BAK %.3f OVRL %.3f" % (
                old, WIDTHS, res["SIG"], res["BAK"], res["OVRL"]), flush=True)
        if READOUT == "max" and args.init and state is None and not args.init_teacher:
            # a rate model's head reads numbers in [0, 1]; fit it to the new read-out first
            hb, ha = refit_head(model, ftr[::4], ytr[::4], 3000)
            res, _ = evaluate(model, fte, yte)
            print("--readout max: head refitted on %d whole training windows (held-out r %.3f %.3f "
                  "%.3f -> %.3f %.3f %.3f); test r SIG %.3f BAK %.3f OVRL %.3f" % (
                      len(ftr[::4]), *hb, *ha, res["SIG"], res["BAK"], res["OVRL"]), flush=True)
        teacher = Teacher(args.teacher)
        tmaps = load_teacher_maps(args.corpus, "train", teacher, args.out)
        # the auxiliary loss: the student's 64 firing rates, through a linear map used only in
        # training, predict the teacher's 64 pooled features (standardised per channel)
        gmax = np.stack([np.asarray(tmaps[i]).max(axis=(1, 2)) for i in ktr])
        gmean = torch.from_numpy(gmax.mean(0))
        gstd = torch.from_numpy(np.where(gmax.std(0) > 1e-6, gmax.std(0), 1.0).astype(np.float32))
        fit = (args.init or args.init_teacher) and state is None  # least-squares starts for the read-outs
        aux = fit_aux(model, ftr, tmaps, ktr, gmean, gstd) if fit else nn.Linear(model.fcs[0].in_features, TMAP[0])
        # the hint loss: a 1x1 convolution, used only in training, from the last convolution's
        # z to the teacher's last map (standardised per channel), at every position
        hint = nn.Conv2d(WIDTHS[-1], TMAP[0], 1)  # made either way: the same seed, the same init
        if args.hint > 0:
            hmean, hstd = hint_stats(tmaps, ktr)
            if fit:
                hint = fit_hint(model, ftr, tmaps, ktr, hmean, hstd)
        # the mid hint: a 1x1 convolution from the pooled z before the first pool to the
        # teacher's map after its first pool (made only when used: older runs' seeds unchanged)
        hint_mid, mids = None, None
        if args.hint_mid > 0:
            mids = load_teacher_mid(args.corpus, "train", teacher, args.out)
            mmean, mstd = hint_stats(mids, ktr)
            hint_mid = nn.Conv2d(WIDTHS[POOL_AFTER[0]], MIDMAP[0], 1)
            if fit:
                hint_mid = fit_hint(model, ftr, mids, ktr, mmean, mstd, out=3)
        opt = torch.optim.Adam(list(model.parameters()) + list(aux.parameters()) + list(hint.parameters())
                               + (list(hint_mid.parameters()) if hint_mid is not None else []), lr=args.lr)
        ema = copy.deepcopy(model) if args.ema > 0 else None
        best = {"score": -2.0, "epoch": 0, "model": None}  # the best on the validation split
        steps_per_epoch = len(ftr) // args.batch
        ym, ys = torch.from_numpy(ytr.mean(0)), torch.from_numpy(ytr.std(0))
        budget = args.minutes * 60.0
        t0 = time.time()
        ep0 = 0
        if state is not None:
            model.load_state_dict(state["model"])
            for i, g in enumerate(state.get("gains") or []):
                model.convs[i].gain = g
                if ema is not None:
                    ema.convs[i].gain = g
            aux.load_state_dict(state["aux"])
            hint.load_state_dict(state["hint"])
            if hint_mid is not None:
                hint_mid.load_state_dict(state["hint_mid"])
            opt.load_state_dict(state["opt"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
            t0 -= state["elapsed"]
            ep0 = state["epoch"]
            best = state.get("best") or best
        for ep in range(ep0, args.epochs):
            if (time.time() - t0) / 60 > args.minutes:  # a continued run already at its budget
                break
            perm = rng.permutation(len(ftr))
            tot = tot_aux = tot_hint = tot_mid = 0.0
            done = 0
            for b in range(steps_per_epoch):
                # the budget ends the run mid-epoch too: a whole-window epoch of the teacher's
                # widths takes 18-38 minutes, and past the budget the rate sits at its floor
                if b > 0 and time.time() - t0 > budget:
                    break
                done = b + 1
                idx = np.sort(perm[b * args.batch:(b + 1) * args.batch])
                frac = min(1.0, (time.time() - t0) / budget)
                BETA = min(1.0, frac / args.anneal) if args.anneal > 0 else 1.0
                # one crop per batch: 8k frames (k >= crop_min / 8) at a multiple of 8 frames, so
                # it covers whole positions of the teacher's 1/8-resolution map; whole windows
                # only in the last part of the budget (the windows snnd scores)
                k = 113 if frac >= args.full_after else int(rng.integers(args.crop_min // 8, args.crop_max // 8 + 1))
                L = min(8 * k, NT)
                o = 8 * int(rng.integers(0, (NT - L) // 8 + 1))
                j0, j1 = o // 8, min(TMAP[1], (o + L) // 8)
                tm = torch.from_numpy(np.asarray(tmaps[ktr[idx], :, j0:j1]))
                pooled = tm.amax(dim=(2, 3))
                target = teacher.head(pooled)
                xb = torch.from_numpy(ftr[idx, o:o + L].astype(np.float32))
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=frac < args.bf16):
                    pred, rates, z, zmid = model(xb, rates=True)
                    loss_hint = loss_mid = torch.zeros(())
                    if args.hint > 0:
                        loss_hint = F.mse_loss(hint(z[:, :, :tm.shape[2]]).float(),
                                               (tm - hmean[None, :, None, None]) / hstd[None, :, None, None])
                    if hint_mid is not None:
                        mm = torch.from_numpy(np.asarray(mids[ktr[idx], :, o // 2:(o + L) // 2]))
                        loss_mid = F.mse_loss(hint_mid(zmid).float(),
                                              (mm - mmean[None, :, None, None]) / mstd[None, :, None, None])
                    loss_aux = F.mse_loss(aux(rates.float()).float(), (pooled - gmean) / gstd)
                loss = score_loss(pred.float(), target, ym, ys)
                # learning rate by the share of the time budget used: 5 % warm-up, cosine decay
                lr = args.lr * (frac / 0.05 if frac < 0.05 else 0.5 * (1 + math.cos(math.pi * (frac - 0.05) / 0.95)))
                for g in opt.param_groups:
                    g["lr"] = max(lr, args.lr * 0.01)
                opt.zero_grad()
                (loss + args.aux * loss_aux + args.hint * loss_hint + args.hint_mid * loss_mid).backward()
                opt.step()
                if ema is not None:
                    ema_update(ema, model, args.ema)
                tot += loss.item()
                tot_aux += loss_aux.item()
                tot_hint += loss_hint.item()
                tot_mid += loss_mid.item()
            el = (time.time() - t0) / 60
            msg = "epoch %d loss %.4f aux %.4f hint %.4f (%.1f min)" % (
                ep + 1, tot / done, tot_aux / done, tot_hint / done, el)
            if hint_mid is not None:
                msg = msg.replace(" (", " mid %.4f (" % (tot_mid / done), 1)
            if done < steps_per_epoch:
                msg += " [budget reached after %d of %d steps]" % (done, steps_per_epoch)
            if BETA < 1.0:
                msg += " step share %s" % " ".join("%.2f" % layer_beta(i) for i in range(NCONV))
            if (ep + 1) % args.eval_every == 0 or el > args.minutes or ep + 1 == args.epochs:
                res, _ = evaluate(model, fte, yte)
                # progress only: the model kept is the last one (with --ema its moving average),
                # not the best on the test split
                msg += " test r SIG %.3f BAK %.3f OVRL %.3f" % (res["SIG"], res["BAK"], res["OVRL"])
                if ema is not None:
                    res, _ = evaluate(ema, fte, yte)
                    msg += " (average: %.3f %.3f %.3f)" % (res["SIG"], res["BAK"], res["OVRL"])
                if fva is not None:
                    cand = ema if ema is not None else model
                    rv, _ = evaluate(cand, fva, yva)
                    score = (rv["SIG"] + rv["BAK"] + rv["OVRL"]) / 3
                    msg += " validation%s %.3f %.3f %.3f" % (" (average)" if ema is not None else "",
                                                               rv["SIG"], rv["BAK"], rv["OVRL"])
                    if score > best["score"]:
                        best = {"score": score, "epoch": ep + 1, "model": copy.deepcopy(cand.state_dict())}
                        msg += " best"
            print(msg, flush=True)
            save_state(state_path, args=vars(args), epoch=ep + 1, elapsed=time.time() - t0,
                       model=model.state_dict(), ema=ema.state_dict() if ema is not None else None,
                       aux=aux.state_dict(), hint=hint.state_dict(), opt=opt.state_dict(),
                       hint_mid=hint_mid.state_dict() if hint_mid is not None else None, best=best,
                       rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                       gains=[c.gain for c in model.convs])
            if el > args.minutes:
                print("time budget reached", flush=True)
                break
        BETA = 1.0  # what is exported is binary (a run's budget ends long after its anneal)
        if ema is not None:  # the last epoch's line above gives both models' test figures
            print("exporting the moving average", flush=True)
            model = ema
        if best["model"] is not None:  # --val-source: the evaluation best on validation
            model.load_state_dict(best["model"])
            print("exporting epoch %d's, the best on the validation split (mean r %.3f)"
                  % (best["epoch"], best["score"]), flush=True)
        torch.save(model.state_dict(), ckpt)
    if args.recalibrate:
        before, _ = evaluate(model, fte, yte)
        recalibrate(model, ftr)
        print("batch norm recalibrated on %d whole training windows (always applied); test r "
              "before: SIG %.3f BAK %.3f OVRL %.3f" % (len(ftr), before["SIG"], before["BAK"], before["OVRL"]),
              flush=True)
    if args.refit_head > 0:
        before, _ = evaluate(model, fte, yte)
        hb, ha = refit_head(model, ftr[::args.refit_stride], ytr[::args.refit_stride], args.refit_head)
        print("head refitted (%d steps): held-out training windows r SIG %.3f BAK %.3f OVRL %.3f -> "
              "%.3f %.3f %.3f; test r before: SIG %.3f BAK %.3f OVRL %.3f" % (
                  args.refit_head, *hb, *ha, before["SIG"], before["BAK"], before["OVRL"]), flush=True)
    if args.recalibrate or args.refit_head > 0:
        # bam.pt is what is exported below (until 2026-12-07 it was saved before these two
        # steps, so the bam.pt of every run exported with a refitted head, item 24 of
        # models/zoo/README.md on, holds the head before its refit: item 45 there).
        torch.save(model.state_dict(), ckpt)
    res, pred = evaluate(model, fte, yte)
    if ACT == "step":
        # The figures reported (eval.json, test_pred.csv, the file's metadata) are the exported
        # file's own, from the integer path snnd runs. The float32 QAT model it was folded from
        # can differ where a sum ties its threshold (run 25: conv 0's sum over a silent stretch,
        # all features at -128, sat exactly on one channel's threshold: 7.8e-3 in raw score).
        T = export_tensors(model, fe)
        qat = {n: res[n] for n in NAMES}
        res, ipred = integer_evaluate(T, fte, yte)
        res["qat_max_abs_diff"] = float(np.abs(ipred - pred).max())
        res["qat"] = qat
        pred = ipred
    res["act"] = ACT
    res["n_train"], res["n_test"] = len(ftr), len(fte)
    if fva is not None:
        rv, _ = evaluate(model, fva, yva)
        res["n_val"], res["val"] = len(fva), {n: rv[n] for n in NAMES}
    res["widths"] = list(WIDTHS)
    print(json.dumps(res, indent=1), flush=True)
    json.dump(res, open(os.path.join(args.out, "eval.json"), "w"), indent=1)
    np.savetxt(os.path.join(args.out, "test_pred.csv"), np.concatenate([pred, yte], 1), delimiter=",",
               header="SIG_raw,BAK_raw,OVRL_raw,teacher_SIG_raw,teacher_BAK_raw,teacher_OVRL_raw")
    if ACT == "relu":
        print("--act relu: a control, evaluated only (no safetensors, ONNX or reference outputs)", flush=True)
        return
    if DITHER:
        print("--dither %d: evaluated only (snnd's kernels take one threshold per channel; no "
              "safetensors, ONNX or reference outputs)" % DITHER, flush=True)
        return
    meta = {"format": "snnd-dnsmos-bam", "version": "1", "widths": ",".join(map(str, WIDTHS)),
            "pool_after": ",".join(map(str, POOL_AFTER)), "x_scale": str(XSCALE),
            "head": ",".join(map(str, HEAD)), "readout": model.readout,
            "teacher": "DNSMOS P.835 DNSMOS_sig_bak_ovr.onnx (microsoft/DNS-Challenge, CC BY 4.0)",
            "trained_by": "models/train/train_dnsmos_bam.py",
            "test_pearson": "SIG %.4f BAK %.4f OVRL %.4f" % (res["SIG"], res["BAK"], res["OVRL"])}
    safetensors_writer.write(os.path.join(args.out, "dnsmos-bam.safetensors"),
                             {k: v.numpy() for k, v in T.items()}, meta)
    fnet = FloatNet(T)
    torch.onnx.export(fnet, torch.zeros(1, WIN), os.path.join(args.out, "dnsmos-bam-float.onnx"),
                      input_names=["input_1"], output_names=["raw"], opset_version=13)
    refs = []
    for path in args.ref_clips:
        pcm = read_wav16(path)
        L = len(pcm)
        while len(pcm) < WIN:  # dnsmos_local.py's tiling
            pcm = np.concatenate([pcm, pcm])
        hops = int(len(pcm) // 16000 - 9.01) + 1
        wins = []
        for h in range(hops):
            if h * 16000 + WIN > len(pcm):
                continue
            w = pcm[h * 16000:h * 16000 + WIN]
            raw = integer_forward(T, fe(w).numpy())
            wins.append([float(v) for v in raw])
        refs.append({"clip": os.path.basename(path), "samples": L, "windows_raw": wins})
    if refs:
        json.dump(refs, open(os.path.join(args.out, "ref_outputs.json"), "w"), indent=1)
    print("wrote", args.out, flush=True)


if __name__ == "__main__":
    main()
