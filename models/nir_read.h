/*
 * nir_read.h -- reads a NIR HDF5 file into a flat list of nodes and edges
 * (internal to the "nir" model kind; see nir.h for the format and semantics).
 *
 * Subgraphs are flattened while reading: a node "inner" of subgraph "outer"
 * becomes "outer/inner" (HDF5 names cannot contain '/', so flattened names
 * never collide with names in the file). An edge into a subgraph goes to its
 * Input node and an edge out of it leaves from its Output node, so a subgraph
 * used as an edge endpoint must have exactly one of each.
 */
#ifndef SNN_NIR_READ_H
#define SNN_NIR_READ_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* One dataset of a node: numeric ones converted to float32 (C order); a
 * scalar string (e.g. Conv2d's padding "same") has ndim -1, no data and its
 * value in text. */
typedef struct snn_nir_param {
    char name[32];
    float *data;
    uint32_t n;             /* element count (1 for a scalar, 0 for a string) */
    int ndim;               /* 0 for a scalar, -1 for a string */
    char text[32];          /* a string's value (truncated), else "" */
    uint64_t dims[8];
    uint64_t stored_bytes;  /* n * element size in the file */
} snn_nir_param;

typedef struct snn_nir_rnode {
    char name[256];         /* flattened name */
    char type[32];          /* "LIF", "Affine", ... */
    int top;                /* 1 if the node belongs to the top-level graph */
    snn_nir_param *params;
    uint32_t n_params;
} snn_nir_rnode;

typedef struct snn_nir_redge {
    uint32_t src, dst;      /* node indices */
} snn_nir_redge;

typedef struct snn_nir_rgraph {
    char version[32];
    snn_nir_rnode *nodes;
    uint32_t n_nodes, cap_nodes;
    snn_nir_redge *edges;
    uint32_t n_edges, cap_edges;
} snn_nir_rgraph;

/* Reads path into g (zero it first). aliases (n_aliases pairs: from, to) repair
 * edges that name a missing node: an endpoint "x" of the graph with flattened
 * prefix "p/" that matches no node is looked up as "p/x" among the "from"
 * names and replaced by the "to" name (a node of that same graph). Returns 0
 * or a negative SNN_E* code with err naming the file and node; g is left for
 * snn_nir__rgraph_free() either way. */
int snn_nir__read(const char *path, const char *const *aliases, uint32_t n_aliases,
                  const snn_allocator *a, snn_nir_rgraph *g, snn_err *err);

/* Frees everything g owns (g itself is the caller's). */
void snn_nir__rgraph_free(snn_nir_rgraph *g, const snn_allocator *a);

/* Returns the numeric parameter called name of node n, or NULL (also when
 * that parameter is a string). */
const snn_nir_param *snn_nir__param(const snn_nir_rnode *n, const char *name);
/* Returns the value of node n's scalar string parameter called name, or NULL
 * when it is absent or numeric. */
const char *snn_nir__text(const snn_nir_rnode *n, const char *name);

#endif
