/*
 * rsnn.h -- the recurrent spiking network engine (model kind "rsnn").
 *
 * A stack of L hidden layers of current-based leaky integrate-and-fire (LIF)
 * or adaptive LIF (ALIF) neurons, each optionally recurrent, followed by a
 * leaky-integrator readout. Weights are loaded once from a safetensors file
 * (models/FORMAT.md) and shared read-only; each stream owns an rsnn state.
 *
 * Notation, per neuron i of a layer, at step t:
 *   x_t   input vector of the step (spike counts of a bin, encoder events, values)
 *   z_t   the layer's presynaptic vector: x_t for layer 0, s_t of the layer below
 *   I     synaptic current        V   membrane potential      s   spike (0/1)
 *   A     adaptation (ALIF)       U   input pending for the next step ("stork")
 *   alpha = exp(-dt/tau_syn), beta = exp(-dt/tau_mem), gamma = 1 - beta
 *           (or as stored: see FORMAT.md "time constants"; in "softplus"
 *           parametrisation tau = tau0 * log(1 + exp(p)) per neuron)
 *   theta threshold; H(u) = 1 if u > 0 else 0.
 *
 * Timing "stork" (fmi-basel/stork: all groups evolve, then all connections
 * propagate, so every connection delays by one step):
 *   s_t = H(V_{t-1} - theta)
 *   V_t = (beta V_{t-1} + gamma I_{t-1}) (1 - s_t)        reset "zero"
 *   V_t =  beta V_{t-1} + gamma I_{t-1} - theta s_t       reset "subtract"
 *   I_t = alpha I_{t-1} + U_{t-1}
 *   U_t = W_in z_t + W_rec s_t + b
 *   readout:  Y_t = beta_o Y_{t-1} + gamma_o J_{t-1}
 *             J_t = alpha_o J_{t-1} + R_{t-1}
 *             R_t = W_out s^L_t + b_o
 *   (so an input bin reaches the readout's output four steps later: x_t -> U_t
 *   -> I_{t+1} -> V_{t+2} -> s_{t+3} -> R_{t+3} -> J_{t+4} -> Y_{t+5})
 *
 * Timing "direct" (snnTorch, NIR CubaLIF, Bellec et al.'s LSNN):
 *   I_t = alpha I_{t-1} + W_in z_t + W_rec s_{t-1} + b
 *   A_t = rho A_{t-1} + (1 - rho) s_{t-1}                 ALIF only
 *   theta_t = theta + adapt A_t                           (LIF: theta_t = theta)
 *   V_t = beta V_{t-1} + gamma I_t - theta_{t-1} s_{t-1}  reset "subtract"
 *   V_t = beta V_{t-1} (1 - s_{t-1}) + gamma I_t          reset "zero"
 *   s_t = H(V_t - theta_t)
 *   readout:  J_t = alpha_o J_{t-1} + W_out s^L_t + b_o
 *             Y_t = beta_o Y_{t-1} + gamma_o J_t
 *
 * Readout groups ("groups": G, default 1; the bigRSNN decoders of Liu et al.
 * 2024 average G = 5): G readouts of n_out units each, unit g n_out + k with
 * its own weights and time constants, evolve as above; output k reads their
 * mean, Ybar_k = (1/G) sum_g Y_{g n_out + k} (fmi-basel/neural-decoding-RSNN's
 * AverageReadouts, same step). With G = 1, Ybar = Y.
 *
 * Output: y_t = Ybar_t * out_scale + out_offset, or softmax(Ybar_t) for a readout
 * with "activation": "softmax" (class probabilities). All state starts at 0,
 * except Y, which starts at the readout's "initial_state" (tinyRSNN: -0.01).
 * An input marked "binary" counts any non-zero entry as one spike (the
 * tinyRSNN decoders were trained on 0/1 bins).
 *
 * Event-driven: a presynaptic entry contributes only when non-zero (an input
 * channel with events, a neuron that spiked): its outgoing weight row is added
 * to the targets. Rows are stored presynaptic-major (the transpose of W) so one
 * event touches contiguous memory; a matrix with fewer than a third of its
 * weights non-zero is stored sparse (CSR by presynaptic index). Dense inputs
 * (most channels non-zero, as analog taxel currents) use OpenBLAS sgemv.
 */
#ifndef SNN_RSNN_H
#define SNN_RSNN_H

#include <stdint.h>

#include "model.h"
#include "safetensors.h"

/* Builds an RSNN model from an opened safetensors file (format "snnd-rsnn").
 * Does not take ownership of st. */
int snn_rsnn_load(snn_st *st, const char *path, const snn_allocator *a, snn_model **out,
                  snn_err *err);

/* Number of hidden layers and the size of layer l. */
uint32_t snn_rsnn_layers(const snn_model *m);
uint32_t snn_rsnn_layer_size(const snn_model *m, uint32_t l);

/* The spikes s_t (0/1 per neuron) of hidden layer l after the last step. */
const uint8_t *snn_rsnn_spikes(const snn_state *s, uint32_t l);

/* The model's config JSON object (borrowed; e.g. the "encoder" entry). */
const json_t *snn_rsnn_config(const snn_model *m);

#endif
