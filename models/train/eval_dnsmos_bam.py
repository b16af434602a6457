"""eval_dnsmos_bam.py -- score dnsmos-bam files with snnd's own kernels on a corpus's test split.

What it does: runs `snn model run FILE WAV --decision` (the C path snnd serves, not the
training script's integer transcription) on every window of CORPUS/test.csv, for each model
file given, and prints per file the Pearson correlation of SIG, BAK and OVRL with the teacher's
scores in that csv (mapped through the P.835 polynomials, and raw), the raw RMSE and a 95 %
bootstrap interval of the mapped correlation. With two or more files it also prints, for each
file after the first, a paired bootstrap interval of its difference from the first (the same
resampled windows for both), which says whether the split can tell the two apart.

Why: the figures a training run reports come from the split it was judged on; after many runs
judged there, that split's figures are optimistic. A corpus made with another seed
(make_dnsmos_corpus.py --seed S) draws new excerpts, degradations and talker mixes of the
held-out speakers, and this tool scores the shipped file on it as snnd runs it.

Command (models/zoo/README.md, dnsmos-bam item 45):
  python3 models/train/make_dnsmos_corpus.py --out /work/bamwork/t45 --train 16 --test 300 \
      --seed 45 --snn build/clients/snn --model models/zoo/dnsmos-p835.onnx --jobs 2
  python3 models/train/eval_dnsmos_bam.py --corpus /work/bamwork/t45 --snn build/clients/snn \
      models/zoo/dnsmos-bam.safetensors [other.safetensors ...]

Writes OUT (--out, optional) as JSON: per file the figures and the per-window raw scores.
"""
import argparse
import concurrent.futures
import csv
import json
import os
import subprocess
import sys

import numpy as np

from train_dnsmos_bam import NAMES, figures, pearson, poly

RESAMPLES = 1000


def read_test(corpus):
    """The test split of CORPUS: window paths and the teacher's raw scores [N, 3]."""
    path = os.path.join(corpus, "test.csv")
    if not os.path.exists(path):
        sys.exit("%s: missing (not a make_dnsmos_corpus.py corpus?)" % path)
    rows = list(csv.DictReader(open(path, newline="")))
    if not rows:
        sys.exit("%s: no test windows" % path)
    try:
        y = np.array([[float(r[n + "_raw"]) for n in NAMES] for r in rows])
        wavs = [os.path.join(corpus, r["file"]) for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        sys.exit("%s: a missing column or a bad value (%r)" % (path, e))
    return wavs, y


def score(snn, model, wav):
    """snnd's raw SIG, BAK, OVRL for the clip WAV (its mean over windows; a test window of the
    corpus is one 9.01 s window), or exits naming the clip and snn's error."""
    p = subprocess.run([snn, "model", "run", model, wav, "--decision"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("snn model run %s %s: exit %d: %s" % (model, wav, p.returncode, p.stderr.strip()))
    try:
        d = json.loads(p.stdout)
        return [float(d[n + "_raw"]) for n in NAMES]
    except (ValueError, KeyError, TypeError):
        sys.exit("snn model run %s %s: not a dnsmos scores line: %r" % (model, wav, p.stdout[:200]))


def paired(p0, p1, y):
    """95 % bootstrap intervals of r(P1) - r(P0), mapped scores, over the same resamples."""
    rng = np.random.RandomState(0)
    draws = [rng.randint(0, len(y), len(y)) for _ in range(RESAMPLES)]
    out = {}
    for k, n in enumerate(NAMES):
        a0, a1, b = poly(n, p0[:, k]), poly(n, p1[:, k]), poly(n, y[:, k])
        d = [pearson(a1[i], b[i]) - pearson(a0[i], b[i]) for i in draws]
        out[n] = [float(v) for v in np.percentile(d, [2.5, 97.5])]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, help="a make_dnsmos_corpus.py corpus (its test split is read)")
    ap.add_argument("--snn", default="build/clients/snn", help="the snn client (runs the file offline)")
    ap.add_argument("--jobs", type=int, default=2, help="snn processes at once")
    ap.add_argument("--out", help="write the figures and per-window scores here (JSON)")
    ap.add_argument("models", nargs="+", help="dnsmos-bam .safetensors files (the first is the baseline)")
    args = ap.parse_args()
    if args.jobs < 1:
        sys.exit("--jobs %d: must be 1 or more" % args.jobs)
    for m in args.models:
        if not os.path.exists(m):
            sys.exit("%s: no such model file" % m)
    wavs, y = read_test(args.corpus)
    result = {"corpus": os.path.abspath(args.corpus), "n_test": len(wavs), "models": {}}
    preds = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        for m in args.models:
            p = np.array(list(ex.map(lambda w: score(args.snn, m, w), wavs)))
            preds.append(p)
            res = figures(p, y, RESAMPLES)
            print("%s (%d windows): SIG %.4f [%.3f, %.3f]  BAK %.4f [%.3f, %.3f]  OVRL %.4f [%.3f, %.3f]"
                  "  raw %.3f / %.3f / %.3f  RMSE %.3f / %.3f / %.3f" % (
                      m, len(wavs), res["SIG"], *res["SIG_ci95"], res["BAK"], *res["BAK_ci95"],
                      res["OVRL"], *res["OVRL_ci95"], res["SIG_raw"], res["BAK_raw"], res["OVRL_raw"],
                      res["SIG_rmse"], res["BAK_rmse"], res["OVRL_rmse"]), flush=True)
            if len(preds) > 1:
                res["minus_first_ci95"] = paired(preds[0], p, y)
                print("  minus %s, paired 95 %%: SIG [%+.3f, %+.3f]  BAK [%+.3f, %+.3f]  OVRL [%+.3f, %+.3f]" % (
                    args.models[0], *res["minus_first_ci95"]["SIG"], *res["minus_first_ci95"]["BAK"],
                    *res["minus_first_ci95"]["OVRL"]), flush=True)
            res["raw"] = p.tolist()
            result["models"][m] = res
    if args.out:
        json.dump(result, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
