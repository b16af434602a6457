/*
 * dnsmos.h -- Microsoft's DNSMOS speech-quality networks as an snnd model kind
 * ("onnx"), run from their ONNX files (microsoft/DNS-Challenge, DNSMOS/).
 *
 * Two networks, told apart by the graph's input shape:
 *   P.835  input [N, 144160] raw 16 kHz audio (9.01 s) -> [SIG, BAK, OVRL] raw
 *   P.808  input [N, 900, 120] log-mel frames (mel.h)   -> [MOS]
 * A P.835 model outputs 6 values per window:
 *   SIG, BAK, OVRL   the raw outputs mapped by dnsmos_local.py's polynomials
 *   SIG_raw, BAK_raw, OVRL_raw
 * with, for raw x (numpy poly1d order, highest power first):
 *   DNSMOS   SIG = -0.08397278 x^2 + 1.22083953 x + 0.0052439
 *            BAK = -0.13166888 x^2 + 1.60915514 x - 0.39604546
 *            OVRL = -0.06766283 x^2 + 1.11546468 x + 0.04602535
 *   pDNSMOS (personalized: the public release, DNSMOS/pDNSMOS/sig_bak_ovr.onnx,
 *   is told from DNSMOS/DNSMOS/sig_bak_ovr.onnx by its output-layer bias, whatever
 *   the file is called; another P.835 graph is personalized when its file name
 *   or its directory's name starts with "pdnsmos", case-insensitive)
 *            SIG = -0.01019296 x^3 + 0.02751166 x^2 + 1.19576786 x - 0.24348726
 *            BAK = -0.04976499 x^3 + 0.44276479 x^2 - 0.1644611 x + 0.96883132
 *            OVRL = -0.00533021 x^3 + 0.005101 x^2 + 1.18058466 x - 0.11236046
 * A P.808 model outputs MOS (its raw output; dnsmos_local.py maps nothing);
 * its input is the mel spectrogram of the window minus its last 160 samples
 * (144000 samples -> 900 frames), normalised as mel.h describes.
 *
 * Streaming (dnsmos_local.py's segmentation, 1 s hop): one step = one hop of
 * 16000 samples in [-1, 1] (n_in = 16000). Window i covers samples
 * [16000 i, 16000 i + 144160) of the stream and is computed at the step that
 * completes second i + 10 (dnsmos_local.py only scores windows that fit in
 * floor(len / 16000) whole seconds), so the first output comes after 10 s and
 * then one per step; the state keeps the last 11 s. finish() handles clips too
 * short for that: a clip of < 144160 samples is tiled (doubled until at least
 * 144160 samples long) and the mean over its windows is output; a clip of
 * 144160 .. 159999 samples gets its single window. Per clip, the mean of the
 * step outputs (SNN_DECISION_MEAN) is dnsmos_local.py's clip score.
 *
 * Which windows dnsmos_local.py scores: it cuts window i as
 *   audio[int(i * 16000) : int((i + 9.01) * 16000)]
 * in double precision and skips a cut shorter than 144160 samples. 9.01 is not exact in
 * binary, and for some i the end rounds down to one sample short: windows 7..23 and
 * 119..122 among the first 400, for example, are never scored. snnd still computes and
 * pushes those windows (a monitor wants a score every second), marks them
 * outside_decision (model.h) and leaves them out of the clip mean, so that the mean is
 * dnsmos_local.py's clip score for clips of any length; finish() leaves them out of a
 * tiled clip's mean likewise (a clip tiled to 17 s or more: windows 7 and 8).
 */
#ifndef SNN_DNSMOS_H
#define SNN_DNSMOS_H

#include <stddef.h>

#include "alloc.h"
#include "model.h"
#include "safetensors.h"

#define SNN_DNSMOS_SR 16000
#define SNN_DNSMOS_HOP 16000
#define SNN_DNSMOS_WINDOW 144160

/* Loads a DNSMOS ONNX file as an snn_model of kind "onnx" (modelfile.c calls
 * this for .onnx files). Errors name the file; a graph that is neither P.835
 * nor P.808 is -SNN_ENOTSUP. */
int snn_onnx_model_load(const char *path, const snn_allocator *a, snn_model **out,
                        snn_err *err);

/* Loads a dnsmos-bam safetensors file (bam.h) as an snn_model of kind "dnsmos-bam": the
 * windows, outputs and polynomials of a P.835 model above, scored by the binary network
 * (always from scratch). modelfile.c calls this when the metadata format is snnd-dnsmos-bam. */
int snn_dnsmos_bam_model_load(snn_st *st, const char *path, const snn_allocator *a,
                              snn_model **out, snn_err *err);

/* dnsmos_local.py's num_hops for a clip of n samples at 16 kHz: the clip tiled (doubled) to
 * at least SNN_DNSMOS_WINDOW samples, L samples long, then int(floor(L / 16000) - 9.01) + 1
 * (int() truncating toward 0). Windows 0 .. num_hops - 1 are cut; some are skipped (below). */
int snn_dnsmos_local_hops(size_t n);

/* 1 if dnsmos_local.py scores window i (the cut above is 144160 samples long), 0 if it
 * skips it. */
int snn_dnsmos_local_scores(uint64_t i);

/* 1 for a P.808 model, 0 for P.835. */
int snn_dnsmos_is_p808(const snn_model *m);

/* Scores one window x[SNN_DNSMOS_WINDOW] into out[m->n_out] using s's
 * buffers (no allocation). Returns 0. */
int snn_dnsmos_window(const snn_model *m, snn_state *s, const float *x, float *out);

/* Like the kind's step() but for n <= 16000 samples: the last, partial hop of
 * a clip. step(x) is snn_dnsmos_step_samples(x, 16000). */
int snn_dnsmos_step_samples(const snn_model *m, snn_state *s, const float *x, size_t n,
                            float *out, snn_step_info *info);

/* P.835 streams reuse convolution outputs between overlapping windows (dnsmos.c explains how;
 * every score stays within float rounding of the window computed from scratch). on = 0 turns
 * that off for state s (every window from scratch: for comparisons); turning it back on takes
 * effect after the next reset. New states start with reuse on. */
void snn_dnsmos_set_reuse(snn_state *s, int on);

/* P.835 windows from scratch (snn_dnsmos_window, and a stream's windows without reuse) run the
 * four full-resolution convolutions in chunks of frames, as a stream does, so their layers stay
 * in cache (dnsmos.c). on = 0 runs the whole ONNX graph node by node instead (for comparisons;
 * the scores agree up to float rounding). New P.835 states start with it on; it costs each
 * state a second set of layer buffers and pooled ring (9.9 MB, next to the graph's 124 MB work
 * buffer). Returns 1 when s's windows from scratch are now chunked, 0 when they run the whole
 * graph (on = 0, or a state without the chunked pass: P.808, dnsmos-bam, a graph of another
 * layout). */
int snn_dnsmos_set_chunked(snn_state *s, int on);

/* The model's ONNX graph (for benchmarks: snn_onnx_set_fast_conv, snn_onnx_flops). */
struct snn_onnx_graph *snn_dnsmos_graph(const snn_model *m);

/* Maps raw P.835 outputs through the polynomials above. */
void snn_dnsmos_map(int personalized, const float raw[3], float mapped[3]);

#endif
