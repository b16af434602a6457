#!/usr/bin/python3
"""Real macaque spikes through a tinyRSNN decoder: make the input, compare the output.

  mcmaze_replay.py make TRIAL.csv OUT_PREFIX [--channels 192] [--bin-ms 4]
      writes OUT_PREFIX.spikes.csv (header t,ch0..chN-1: one row per bin, 0/1 per channel,
      units mapped to channels in column order, extra channels silent) and
      OUT_PREFIX.velocity.csv (header t,hand_vel_x,hand_vel_y: the recorded hand velocity,
      mean over each bin).
  mcmaze_replay.py compare PREDICTIONS.csv OUT_PREFIX.velocity.csv
      reads `snn replay`/`snn model run` output (step,t,vx,vy) and prints the Pearson
      correlation of decoded and recorded velocity per axis, and the R2 of the recorded
      velocity explained by an affine map of the decoded one (least squares).

The MC_Maze data (NLB, DANDI:000128, CC-BY-4.0) are another monkey, array and task than the
decoders were trained on, so this demonstrates the pipeline, not decoding accuracy.
Needs only python3-numpy (offline tool; nothing in the build or tests uses it).
"""
import sys

import numpy as np


def make(trial, prefix, channels=192, bin_ms=4):
    with open(trial) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(trial, delimiter=",", skiprows=1)
    units = [i for i, h in enumerate(header) if h.startswith("unit_")]
    vx, vy = header.index("hand_vel_x"), header.index("hand_vel_y")
    n = data.shape[0] // bin_ms
    rows = data[: n * bin_ms]
    spikes = rows[:, units].reshape(n, bin_ms, len(units)).sum(1)
    x = np.zeros((n, channels))
    k = min(channels, len(units))
    x[:, :k] = np.minimum(spikes[:, :k], 1)
    vel = rows[:, [vx, vy]].reshape(n, bin_ms, 2).mean(1)
    t = np.arange(n) * bin_ms / 1000.0
    np.savetxt(prefix + ".spikes.csv", np.column_stack([t, x]), delimiter=",",
               header="t," + ",".join(f"ch{i}" for i in range(channels)), comments="",
               fmt=["%.3f"] + ["%d"] * channels)
    np.savetxt(prefix + ".velocity.csv", np.column_stack([t + bin_ms / 1000.0, vel]), delimiter=",",
               header="t,hand_vel_x,hand_vel_y", comments="", fmt="%.6g")
    print(f"{n} bins of {bin_ms} ms, {len(units)} units -> {channels} channels, "
          f"{int(x.sum())} active channel-bins")


def compare(pred_csv, vel_csv):
    p = np.genfromtxt(pred_csv, delimiter=",", names=True)
    v = np.genfromtxt(vel_csv, delimiter=",", names=True)
    n = min(len(p), len(v))
    dec = np.column_stack([p["vx"][:n], p["vy"][:n]])
    rec = np.column_stack([v["hand_vel_x"][:n], v["hand_vel_y"][:n]])
    for i, axis in enumerate("xy"):
        r = np.corrcoef(dec[:, i], rec[:, i])[0, 1]
        a = np.column_stack([dec, np.ones(n)])
        coef, *_ = np.linalg.lstsq(a, rec[:, i], rcond=None)
        res = rec[:, i] - a @ coef
        r2 = 1 - res.var() / rec[:, i].var()
        print(f"v{axis}: {n} steps, Pearson r(decoded, recorded) = {r:+.3f}, "
              f"R2 of an affine map = {r2:.3f}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
