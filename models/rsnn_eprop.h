/*
 * rsnn_eprop.h -- e-prop learning on an RSNN model file, and back.
 *
 * Bridges models/rsnn.h (the inference engine, timing "direct") and
 * models/eprop.h (the learning rule, interval timing): builds an snn_eprop
 * network from an "snnd-rsnn" file and writes the learned weights back as a new
 * model file that snnd's engine runs as the network e-prop trained.
 *
 * Where to start: snn_rsnn_eprop_new() with learning hyperparameters in p
 * (snn_eprop_params_default() plus loss weights, eta, optimiser, windows...),
 * feed snn_eprop_step() the inputs converted by snn_rsnn_eprop_input(), then
 * snn_rsnn_eprop_save(). snn_rsnn_eprop_create() writes a fresh model file
 * (e.g. random initial weights) that the other three accept.
 *
 * Which files can be trained: timing "direct", exactly one hidden layer of
 * "lif" or "alif" neurons with reset "subtract", no biases, time constants
 * "decay" with alpha = 0 (no synaptic current), one membrane decay beta for all
 * neurons and gamma either 1 (a spike adds its full weight: e-prop's
 * regular_spike_arrival) or 1 - beta (e-prop's 1 - alpha gain); the readout
 * likewise (alpha 0, one beta = kappa, the same gain convention), no readout
 * bias, out_scale/out_offset absent, initial_state 0. ALIF: the neurons with
 * adapt = 0 come first (e-prop's LIF neurons), the others share one adapt and
 * one rho. Anything else is refused with -SNN_ENOTSUP naming the field.
 *
 * Mapping (engine, models/rsnn.h "direct"  ->  e-prop, models/eprop.h):
 *   I_t = W_in z_t + W_rec s_{t-1}              (alpha = 0)
 *   V_t = beta V_{t-1} + gamma I_t - theta_{t-1} s_{t-1}
 *                                   ->  v <- alpha v + c (...) - A_{t-1} z
 *        beta = alpha = exp(-dt/tau_m), gamma = c, theta = v_th
 *   A_t = rho A_{t-1} + (1 - rho) s_{t-1},  theta_t = theta + adapt A_t
 *                                   ->  a <- rho a + z,  A = v_th + adapt_beta a
 *        so a = A / (1 - rho) and adapt_beta = adapt (1 - rho)
 *   readout J_t = W_out s_t, Y_t = beta_o Y_{t-1} + gamma_o J_t
 *                                   ->  y <- kappa y + c_o W_out z  (same step)
 *        beta_o = kappa = exp(-dt/tau_out), gamma_o = c_o
 *   dt: seconds in the file, milliseconds in e-prop.
 *
 * Differences, and how the bridge closes them:
 *   - the engine's reset subtracts the threshold the spike crossed (adaptive
 *     for ALIF); NEST's e-prop subtracts v_th. The bridge sets
 *     p.reset_adapted = 1, so e-prop resets as the engine does (the reset is
 *     not differentiated in e-prop, so the gradient formulas are unchanged);
 *   - the engine has no refractory period: t_ref_steps = 0;
 *   - the engine spikes when V > theta, e-prop when v >= A: they differ only when
 *     V equals the threshold exactly;
 *   - the engine computes in float32 from float32 weights, e-prop in double:
 *     spikes agree unless a membrane lands within rounding of the threshold;
 *   - e-prop with reset_on_update zeroes the neurons at each interval start;
 *     the engine never resets a stream by itself (set reset_on_update = 0 to
 *     train on one continuous stream exactly as the engine runs it);
 *   - inputs: e-prop takes per-channel counts 0..255 (snn_rsnn_eprop_input
 *     rounds; "binary" inputs become 0/1 as in the engine);
 *   - the readout: NEST's e-prop readout sees the recurrent spikes of the same
 *     step (EPROP.md, convention 1), as the engine's "direct" readout does, so
 *     there is no readout timing difference.
 */
#ifndef SNN_RSNN_EPROP_H
#define SNN_RSNN_EPROP_H

#include <stdint.h>

#include "alloc.h"
#include "eprop.h"
#include "model.h"

/* Reads the model file at model_path and fills, in *p, the fields the file
 * fixes: n_in, n_rec, n_out, n_adaptive, dt, tau_m, tau_out, v_th, adapt_tau,
 * adapt_beta, regular_spike_arrival, loss (readout task "classification" ->
 * cross-entropy, otherwise MSE), t_ref_steps = 0, timing interval, reset
 * subtract, reset_adapted = 1; learn_rec = 0 when the layer is not recurrent.
 * Every other field of *p is left as the caller set it. *binary_input (may be
 * NULL) gets the file's input.binary. Returns 0, or a negative SNN_E* code
 * with err naming the file and the field that cannot be trained. */
int snn_rsnn_eprop_params(const char *model_path, snn_eprop_params *p, int *binary_input,
                          snn_err *err);

/* Builds an e-prop network from the model file: the parameters of
 * snn_rsnn_eprop_params() applied to a copy of *p (NULL: snn_eprop_params_default())
 * and the file's weights as initial weights. Random feedback uses a fixed matrix
 * B_jo ~ N(0, 1) drawn from a fixed seed (the same for every call). *out must be
 * freed with snn_eprop_free(). Returns 0, or a negative SNN_E* code (err set;
 * *out NULL). */
int snn_rsnn_eprop_new(const char *model_path, const snn_eprop_params *p,
                       const snn_allocator *a, snn_eprop **out, snn_err *err);

/* Writes e's current weights as a new model file at dst_path: every tensor and
 * the metadata of src_model_path (the file e was built from), with
 * layers.0.w_in, layers.0.w_rec (if recurrent) and readout.w replaced by the
 * learned weights (float32) and a "training" entry added to the config. The
 * write is atomic (temporary file, fsync, rename, see snn_st_write): on any
 * failure dst_path is untouched. src and dst may be the same path. Returns 0,
 * -SNN_ESHAPE if e does not match the file, or the read/write error. */
int snn_rsnn_eprop_save(const snn_eprop *e, const char *src_model_path, const char *dst_path,
                        snn_err *err);

/* Fresh initial weights for the network p describes (sizes n_in, n_rec, n_out), from seed
 * (z ~ N(0, 1), splitmix64 and Box-Muller, the generator of the random feedback matrix):
 *   W_in  = z * w_in_std              [n_rec x n_in]
 *   W_rec = z * 0.5 / sqrt(n_rec), diagonal 0
 *   W_out = 0                         (the untrained readout outputs 0)
 * For snn_rsnn_eprop_create (`snn model create`). */
void snn_rsnn_eprop_random_weights(const snn_eprop_params *p, uint64_t seed, double w_in_std, double *w_in,
                                   double *w_rec, double *w_out);

/* Writes a new trainable model file for the network described by p (sizes,
 * dt, tau_m, tau_out, v_th, adapt_*, regular_spike_arrival; the loss picks the
 * readout task: cross-entropy -> "classification" with a softmax readout) and
 * weights w_in (n_rec x n_in), w_rec (n_rec x n_rec), w_out (n_out x n_rec),
 * rounded to float32. name goes into the config. Atomic like snn_rsnn_eprop_save.
 * Returns 0 or a negative SNN_E* code. */
int snn_rsnn_eprop_create(const char *dst_path, const char *name, const snn_eprop_params *p,
                          const double *w_in, const double *w_rec, const double *w_out,
                          snn_err *err);

/* Converts one engine input vector to e-prop's counts: binary -> 1 for any
 * non-zero entry, else the count rounded and clamped to [0, 255]. */
void snn_rsnn_eprop_input(const float *in, uint32_t n, int binary, uint8_t *x);

#endif
