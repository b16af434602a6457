"""merge_dnsmos_corpora.py -- join the train splits of make_dnsmos_corpus.py corpora into one.

What it does: makes OUT/train.csv hold the train rows of FIRST, then those of every further
corpus, renumbered so file names stay unique (OUT/train/NNNNN.wav are symbolic links to the
originals); OUT/test and OUT/test.csv are FIRST's (the later corpora's test splits, if any,
are ignored, so a merged corpus is scored on the same held-out windows as FIRST). The row
order is FIRST's rows then each further corpus's, so per-row caches of the parts (the
teacher maps of teacher_maps_ort.mjs, train_tmaps.f32 and train_tmaps_mid.f32) concatenated
in the same order are the merged corpus's caches.

Refuses corpora whose csv headers differ, a missing file, or an existing OUT.

Command (run 18 in models/zoo/README.md):
  python3 models/train/merge_dnsmos_corpora.py --out /work/bamwork/corpus2 \
      /work/bamwork/corpus /work/bamwork/extra
  cat corpus_maps/train_tmaps.f32 extra_maps/train_tmaps.f32 > OUT_CACHE/train_tmaps.f32
  (the same for train_tmaps_mid.f32)
"""
import argparse
import csv
import os
import sys


def read_rows(corpus, split):
    """The csv header and rows of CORPUS/SPLIT.csv."""
    path = os.path.join(corpus, split + ".csv")
    if not os.path.exists(path):
        sys.exit("%s: missing (not a make_dnsmos_corpus.py corpus?)" % path)
    rows = list(csv.reader(open(path, newline="")))
    if not rows:
        sys.exit("%s: empty" % path)
    return rows[0], rows[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the merged corpus's directory (must not exist)")
    ap.add_argument("corpora", nargs="+", help="FIRST [MORE ...]: corpus directories")
    args = ap.parse_args()
    if os.path.exists(args.out):
        sys.exit("--out %s: exists; remove it first" % args.out)
    corpora = [os.path.abspath(c) for c in args.corpora]
    header, _ = read_rows(corpora[0], "train")
    parts = []
    for c in corpora:
        h, rows = read_rows(c, "train")
        if h != header:
            sys.exit("%s/train.csv: header %s differs from %s's" % (c, ",".join(h), corpora[0]))
        for r in rows:
            if not os.path.exists(os.path.join(c, r[0])):
                sys.exit("%s: listed in %s/train.csv but missing" % (r[0], c))
        parts.append((c, rows))
    th, trows = read_rows(corpora[0], "test")
    os.makedirs(os.path.join(args.out, "train"))
    os.symlink(os.path.join(corpora[0], "test"), os.path.join(args.out, "test"))
    with open(os.path.join(args.out, "test.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([th] + trows)
    out = [header]
    for c, rows in parts:
        for r in rows:
            name = "train/%05d.wav" % (len(out) - 1)
            os.symlink(os.path.join(c, r[0]), os.path.join(args.out, name))
            out.append([name] + r[1:])
        print("%s: %d train rows" % (c, len(rows)))
    with open(os.path.join(args.out, "train.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(out)
    print("%s: %d train rows, %d test rows (%s's)" % (args.out, len(out) - 1, len(trows), corpora[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
