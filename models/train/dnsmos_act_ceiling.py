#!/usr/bin/python3
"""dnsmos_act_ceiling.py -- what quantised activations cost the teacher itself, untrained.

dnsmos-bam's activations are bits. This runs the teacher (train_dnsmos_bam.Teacher, its own
float features) on corpus test windows with the ReLU output of chosen convolutions replaced by

    bit   s_c [z > 0], s_c the channel's mean positive activation (what --init-teacher's bits
          stand for: train_dnsmos_bam.init_from_teacher)
    K     K + 1 levels: d_c min(K, floor(a / d_c + 1/2)) with d_c = (99th percentile of the
          channel's positive activations) / K, a thermometer code of K bits per channel
    dN    one bit per position, ordered dither: u_c [a > u_c o(t, f)] with o
          train_dnsmos_bam.dither_offsets(N) (N = 2, 3, 4) and u_c twice the channel's mean
          positive activation (--dither-scale 2mean) or its 99th percentile (q99): the
          threshold moves with the position, so a 3 x 3 convolution over the map sees about
          the local mean of a (halftoning), where one threshold keeps only a > 0

in every convolution at once (--layer all) or in one at a time (--layer each; the others stay
the teacher's float ReLUs), and prints the Pearson correlation of the mapped SIG, BAK and OVRL
with the unmodified teacher's scores (the corpus's own labels). The per-channel statistics come
from every 100th training window. It asks where the teacher's function needs fine magnitudes,
i.e. which layers a binary student cannot inherit from the teacher's weights.

  /usr/bin/python3 models/train/dnsmos_act_ceiling.py --corpus /work/bamwork/corpus \\
      --teacher models/zoo/dnsmos-p835.onnx --every 5 --levels bit 3 15 --layer each

Needs python3-torch, python3-onnx and python3-numpy (Debian); about 7 minutes on one core for
60 windows, three settings and --layer each. Measured: models/zoo/README.md, items 38 (bit,
K) and 39 (dN).
"""
import argparse
import csv
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_dnsmos_bam as t  # noqa: E402


def channel_stats(teacher, feats):
    """Per convolution, per channel: (mean, 99th percentile) of the positive ReLU outputs."""
    stats = []

    def grab(k, z, a):
        v = a.transpose(0, 1).flatten(1)
        mean, q99 = torch.ones(v.shape[0]), torch.ones(v.shape[0])
        for c in range(v.shape[0]):
            pos = v[c][v[c] > 0][:2000000]
            if len(pos):
                mean[c], q99[c] = pos.mean(), torch.quantile(pos, 0.99)
        stats.append((mean, q99))
        return None

    teacher.convs(feats, act=grab)
    return stats


def quantiser(stats, level, layers, dither_scale="2mean"):
    """An act for Teacher.convs: LEVEL ("bit", "dN" or K) in the convolutions LAYERS."""
    def quant(k, z, a):
        if k not in layers:
            return None
        mean, q99 = (s[None, :, None, None] for s in stats[k])
        if level == "bit":
            return (z > 0).float() * mean
        if isinstance(level, str):
            u = 2 * mean if dither_scale == "2mean" else q99
            return (a > u * t.dither_offsets(int(level[1:]), a.shape)).float() * u
        d = q99 / level
        return torch.clamp(torch.floor(a / d + 0.5), 0, level) * d
    return quant


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="make_dnsmos_corpus.py's output (train.csv, test.csv)")
    ap.add_argument("--teacher", required=True, help="DNSMOS_sig_bak_ovr.onnx")
    ap.add_argument("--every", type=int, default=5, help="use every N-th test window")
    dithers = ["d%d" % n for n in sorted(t.DITHER_INDEX)]
    ap.add_argument("--levels", nargs="+", default=["bit", "3", "15"],
                    help="bit, %s (ordered dither), or K >= 1 (K + 1 levels)" % ", ".join(dithers))
    ap.add_argument("--layer", choices=("all", "each"), default="each")
    ap.add_argument("--dither-scale", choices=("2mean", "q99"), default="2mean",
                    help="the dN levels' threshold range: twice the mean positive activation, "
                    "or the 99th percentile")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    levels = []
    for v in args.levels:
        if v != "bit" and v not in dithers and not (v.isdigit() and int(v) >= 1):
            sys.exit("--levels %s: must be bit, %s or an integer K >= 1" % (v, ", ".join(dithers)))
        levels.append(int(v) if v.isdigit() else v)
    if args.every < 1:
        sys.exit("--every %d: must be at least 1" % args.every)
    torch.set_num_threads(args.threads)
    teacher = t.Teacher(args.teacher)

    def features(split, every):
        rows = list(csv.DictReader(open(os.path.join(args.corpus, split + ".csv"))))[::every]
        pcm = np.stack([t.read_wav16(os.path.join(args.corpus, r["file"]))[:t.WIN] for r in rows])
        return rows, torch.cat([teacher.features(pcm[i:i + 8]) for i in range(0, len(pcm), 8)])

    _, tfeats = features("train", 100)
    stats = channel_stats(teacher, tfeats)
    rows, feats = features("test", args.every)
    if len(rows) < 3:
        sys.exit("%s: %d test windows, need at least 3" % (args.corpus, len(rows)))
    y = np.array([[float(r[n + "_raw"]) for n in t.NAMES] for r in rows])
    nconv = len(stats)
    sets = [("all", set(range(nconv)))] if args.layer == "all" else [(str(k), {k}) for k in range(nconv)]
    print("%d test windows; Pearson r with the teacher (SIG BAK OVRL)" % len(rows), flush=True)
    for level in levels:
        for name, layers in sets:
            q = quantiser(stats, level, layers, args.dither_scale)
            p = torch.cat([teacher.head(teacher.convs(feats[i:i + 8], act=q).amax(dim=(2, 3)))
                           for i in range(0, len(feats), 8)]).numpy()
            print("level %-4s layer %-4s %s" % (level, name, " ".join(
                "%.3f" % t.pearson(t.poly(n, p[:, k]), t.poly(n, y[:, k])) for k, n in enumerate(t.NAMES))), flush=True)


if __name__ == "__main__":
    main()
