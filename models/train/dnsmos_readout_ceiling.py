#!/usr/bin/env python3
"""What a read-out of the teacher's own last map can reach: the ceiling of a pooling choice.

DNSMOS P.835 ends in a global max over its last feature map (64 channels x 112 x 20 per
window) and a dense head. dnsmos-bam's head reads, per channel, either the firing rate of its
last binary map (--readout rate), the maximum of its last sums (max), or both (rate+max). This
script asks how much each pooling can keep of the teacher's scores in the best case, where
the map is the teacher's own: it pools the cached teacher maps of a corpus's training windows
(train_tmaps.f32, written by train_dnsmos_bam.py or teacher_maps_ort.mjs) per channel as

    max       max over positions of the map (the teacher's own pooling)
    mean      mean over positions
    rate      mean over positions of [map > 0] (a binary map's firing rate)
    rate+max  both
    rowrate   the firing rate per channel and frequency row (pooled over time only: 64 x 20)
    rowmax    the max per channel and frequency row (64 x 20)
    thermo    per channel, the rates of [map > t] for 8 thresholds t: 0 and the 25, 50, 75, 90,
              95, 99 and 99.9 % quantiles of the channel's positive values on the fitting
              windows (a thermometer code: what 8 binary maps with one channel's sums and
              different thresholds would give, 64 x 8)

fits a fresh dense head (64 -> 128 -> 64 -> 3, ReLU, Adam) on the pooled vectors of four
fifths of the windows against the teacher's raw scores, and prints the Pearson correlation of
the mapped SIG, BAK and OVRL on the held-out fifth (and, with --hold-source, on the windows
whose first source names that string, the rest fitting the head).

    /usr/bin/python3 models/train/dnsmos_readout_ceiling.py --corpus /work/bamwork/corpus2 \\
        --tmaps /work/bamwork/r25/train_tmaps.f32 --hold-source codec2_ve9qrp

Needs python3-torch and python3-numpy (Debian); about 3 minutes for 2 276 windows on 2 cores.
"""
import argparse
import csv
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_dnsmos_bam as t  # noqa: E402  (NAMES, poly, pearson, TMAP)

TCH = t.TMAP[0]  # channels of the teacher's last map


POOLINGS = ("max", "mean", "rate", "rate+max", "rowrate", "rowmax", "thermo")
THERMO_Q = (0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)  # quantiles of positive values (thermo)


def thermo_thresholds(maps, windows):
    """[64, 8]: per channel 0 and the THERMO_Q quantiles of its positive values in the maps of
    WINDOWS (at most 2e6 values per channel)."""
    v = np.concatenate([np.asarray(maps[w]).reshape(TCH, -1) for w in windows], 1)
    thr = np.zeros((TCH, 1 + len(THERMO_Q)), np.float32)
    for c in range(TCH):
        pos = v[c][v[c] > 0][:2000000]
        if len(pos):
            thr[c, 1:] = np.quantile(pos, THERMO_Q)
    return torch.from_numpy(thr)


def pooled(maps, keep, thr, bs=64):
    """The pooled vectors [N, D] of the maps of windows KEEP, one array per pooling (POOLINGS;
    THR: thermo's thresholds)."""
    out = {k: [] for k in ("max", "mean", "rate", "rowrate", "rowmax", "thermo")}
    for i in range(0, len(keep), bs):
        m = torch.from_numpy(np.asarray(maps[keep[i:i + bs]]))
        out["max"].append(m.amax(dim=(2, 3)))
        out["mean"].append(m.mean(dim=(2, 3)))
        out["rate"].append((m > 0).float().mean(dim=(2, 3)))
        out["rowrate"].append((m > 0).float().mean(dim=2).flatten(1))
        out["rowmax"].append(m.amax(dim=2).flatten(1))
        out["thermo"].append((m.flatten(2)[:, :, None, :] > thr[None, :, :, None]).float().mean(3).flatten(1))
    out = {k: torch.cat(v) for k, v in out.items()}
    out["rate+max"] = torch.cat([out["rate"], out["max"]], 1)
    return out


def fit_and_score(X, Y, held, steps, seed=1):
    """Fits a fresh head on the windows not in HELD; returns Pearson r of the mapped scores on
    HELD, per score."""
    fit = np.setdiff1d(np.arange(len(X)), held)
    mu, sd = X[fit].mean(0), X[fit].std(0) + 1e-4
    X = (X - mu) / sd
    Yt = torch.from_numpy(Y)
    ym, ys = Yt[fit].mean(0), Yt[fit].std(0)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(X.shape[1], 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = torch.from_numpy(fit[torch.randint(0, len(fit), (64,), generator=g).numpy()])
        loss = F.mse_loss(net(X[b]), (Yt[b] - ym) / ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = (net(X[held]) * ys + ym).numpy()
    return [t.pearson(t.poly(n, p[:, k]), t.poly(n, Y[held, k])) for k, n in enumerate(t.NAMES)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, help="a make_dnsmos_corpus.py directory (train.csv)")
    ap.add_argument("--tmaps", required=True, help="its train_tmaps.f32 (every row of train.csv)")
    ap.add_argument("--exclude-source", nargs="*", default=["pesq_speech_bab"],
                    help="leave out windows whose source names one of these (as training does)")
    ap.add_argument("--hold-source", help="also hold out the windows whose first source names this")
    ap.add_argument("--poolings", nargs="+", choices=POOLINGS, default=POOLINGS[:4])
    ap.add_argument("--steps", type=int, default=5000, help="Adam steps of each head fit")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = list(csv.DictReader(open(os.path.join(args.corpus, "train.csv"))))
    per = int(np.prod(t.TMAP)) * 4
    if os.path.getsize(args.tmaps) != len(rows) * per:
        sys.exit("%s: %d bytes, not %d maps of %d bytes (one per row of train.csv)"
                 % (args.tmaps, os.path.getsize(args.tmaps), len(rows), per))
    maps = np.memmap(args.tmaps, dtype=np.float32, mode="r", shape=(len(rows),) + t.TMAP)
    keep = np.array([i for i, r in enumerate(rows) if not any(x in r["source"] for x in args.exclude_source)])
    Y = np.array([[float(rows[i][n + "_raw"]) for n in t.NAMES] for i in keep], np.float32)
    fifth = np.random.RandomState(1).permutation(len(keep))[:len(keep) // 5]
    splits = [("random fifth", fifth)]
    if args.hold_source:
        held = np.array([j for j, i in enumerate(keep) if args.hold_source in rows[i]["source"].split("|")[0]])
        if not 0 < len(held) < len(keep):
            sys.exit("--hold-source %s: names %d of %d windows" % (args.hold_source, len(held), len(keep)))
        splits.append(("%s held out" % args.hold_source, held))
    # thermo's thresholds from every 20th window that no split holds out
    fitting = np.setdiff1d(np.arange(len(keep)), np.concatenate([h for _, h in splits]))
    P = pooled(maps, keep, thermo_thresholds(maps, keep[fitting[::20]]))
    print("%d windows; fresh head per pooling, Pearson r (SIG BAK OVRL) on the held-out windows" % len(keep))
    for name in args.poolings:
        for label, held in splits:
            r = fit_and_score(P[name], Y, held, args.steps)
            print("%-9s %4d %-28s %s" % (name, P[name].shape[1], label + " (%d)" % len(held), " ".join("%.3f" % v for v in r)),
                  flush=True)


if __name__ == "__main__":
    main()
