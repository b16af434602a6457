#!/usr/bin/python3
"""dnsmos_feature_ceiling.py -- what the student's input features cost the teacher itself.

dnsmos-bam sees int8 features q = round(x_scale log10 P) clamped to [-128, 127],
with P from the teacher's STFT kernels quantised to int8 (models/bam.h; the
training script's FrontEnd computes them bit for bit as snnd does), where
DNSMOS P.835 sees log10 max(P, 1e-12) in float. This runs the teacher
(train_dnsmos_bam.Teacher) on corpus test windows, once on its own features and
once on each x_scale's student features (q / x_scale), and prints the Pearson
correlation of the mapped SIG, BAK and OVRL between the two: an upper bound on
what any student reading those features can reach.

  /usr/bin/python3 models/train/dnsmos_feature_ceiling.py --corpus /tmp/bam/corpus \
      --teacher models/zoo/dnsmos-p835.onnx --every 3 --x-scale 16 10

Measured on the corpus behind the shipped model: with the teacher's float STFT
and only the rounding and clamping (this tool before 2026-12-03's evening), on
every 3rd test window (100): x_scale 16 (floor 1e-8) SIG 0.991, BAK 0.973, OVRL
0.994; x_scale 10 (floor 10^-12.8, below the teacher's 1e-12) 0.996, 0.999,
0.998. With the int8 kernels as well, every 10th window (30), x_scale 10: SIG
0.999, BAK 0.998, OVRL 0.999 (float STFT, rounded: 0.999 / 0.999 / 0.999; int8
kernels, unrounded: 1.000 / 1.000 / 1.000): the int8 kernels cost nothing
measurable.
"""
import argparse
import csv
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_dnsmos_bam as t  # noqa: E402


def scores(teacher, fe, xscale, pcm):
    """Teacher raw scores [3] of one window; FE None: on its own features, else on the student's
    (FrontEnd FE, whose steps per decade are XSCALE, scaled back to log10 units)."""
    with torch.no_grad():
        m = teacher.maps(pcm[None]) if fe is None else teacher.convs(fe(pcm)[None].float() / xscale)
        return teacher.head(m.amax(dim=(2, 3)))[0].numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="make_dnsmos_corpus.py's output (test.csv)")
    ap.add_argument("--teacher", required=True, help="DNSMOS_sig_bak_ovr.onnx")
    ap.add_argument("--every", type=int, default=1, help="use every N-th test window")
    ap.add_argument("--x-scale", type=float, nargs="+", default=[16.0, 10.0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.every < 1:
        sys.exit("--every %d: must be at least 1" % args.every)
    torch.set_num_threads(args.threads)
    teacher = t.Teacher(args.teacher)
    stft = t.teacher_stft(args.teacher)
    fes = {xs: t.FrontEnd(*stft, xscale=xs) for xs in args.x_scale}
    rows = list(csv.DictReader(open(os.path.join(args.corpus, "test.csv"))))[::args.every]
    if len(rows) < 3:
        sys.exit("%s: %d test windows, need at least 3" % (args.corpus, len(rows)))
    own, other = [], {xs: [] for xs in args.x_scale}
    for i, r in enumerate(rows):
        pcm = t.read_wav16(os.path.join(args.corpus, r["file"]))[:t.WIN]
        own.append(scores(teacher, None, None, pcm))
        for xs in args.x_scale:
            other[xs].append(scores(teacher, fes[xs], xs, pcm))
        if (i + 1) % 20 == 0:
            print("  %d/%d windows" % (i + 1, len(rows)), flush=True)
    own = np.array(own)
    for xs in args.x_scale:
        a = np.array(other[xs])
        print("x_scale %g (floor 10^%.1f): %d windows, teacher vs itself: %s" % (
            xs, -128 / xs, len(rows), " ".join("%s %.4f" % (n, t.pearson(t.poly(n, a[:, k]), t.poly(n, own[:, k])))
                                               for k, n in enumerate(t.NAMES))), flush=True)


if __name__ == "__main__":
    main()
