/*
 * nir_read.c -- NIR HDF5 file -> flat node/edge lists (see nir_read.h).
 */
#include "nir_read.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16 /* nesting of subgraphs accepted */

typedef struct ctx {
    const char *file; /* basename, for messages */
    const snn_allocator *a;
    snn_nir_rgraph *g;
    snn_err *err;
    const char *const *aliases; /* pairs from, to */
    uint32_t n_aliases;
} ctx;

/* One name visible in a graph: a node, or a subgraph with its Input/Output. */
typedef struct local {
    char name[256];
    int is_graph;
    long in, out; /* node index an edge goes to / leaves from; -1 = none, -2 = ambiguous */
} local;

/* Returns the file name part of a path (for messages). */
static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Reads the string dataset name in loc into a freshly allocated array of
 * *count NUL-terminated strings (count = number of elements). Returns 0,
 * -SNN_ENOENT if absent, -SNN_EFORMAT if it is not a string dataset. */
static int read_strings(ctx *c, hid_t loc, const char *name, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return -SNN_ENOENT;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return -SNN_EFORMAT;
    hid_t ft = H5Dget_type(ds);
    hid_t sp = H5Dget_space(ds);
    int rc = -SNN_EFORMAT;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (ft < 0 || np < 0 || H5Tget_class(ft) != H5T_STRING)
        goto done;
    size_t n = (size_t)np;
    char **res = c->a->calloc(n ? n : 1, sizeof *res);
    if (!res) {
        rc = -SNN_ENOMEM;
        goto done;
    }
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char **tmp = c->a->calloc(n ? n : 1, sizeof *tmp);
        if (!tmp || (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0)) {
            rc = tmp ? -SNN_EFORMAT : -SNN_ENOMEM;
        } else {
            rc = 0;
            for (size_t i = 0; i < n; i++) {
                const char *s = tmp[i] ? tmp[i] : "";
                size_t l = strlen(s);
                res[i] = c->a->malloc(l + 1);
                if (!res[i]) {
                    rc = -SNN_ENOMEM;
                    continue;
                }
                memcpy(res[i], s, l + 1);
            }
            for (size_t i = 0; i < n; i++)
                if (tmp[i])
                    H5free_memory(tmp[i]);
        }
        c->a->free(tmp);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        char *buf = c->a->calloc(n * sz + 1, 1);
        if (!buf || (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) {
            rc = buf ? -SNN_EFORMAT : -SNN_ENOMEM;
        } else {
            rc = 0;
            for (size_t i = 0; i < n; i++) {
                res[i] = c->a->calloc(sz + 1, 1);
                if (!res[i]) {
                    rc = -SNN_ENOMEM;
                    continue;
                }
                memcpy(res[i], buf + i * sz, sz);
            }
        }
        c->a->free(buf);
        H5Tclose(mt);
    }
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            c->a->free(res[i]);
        c->a->free(res);
    } else {
        *out = res;
        *count = n;
    }
done:
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    H5Dclose(ds);
    return rc;
}

/* Frees an array returned by read_strings (NULL is fine). */
static void free_strings(ctx *c, char **s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        c->a->free(s[i]);
    c->a->free(s);
}

/* Reads the single string dataset name of loc into buf. */
static int read_string(ctx *c, hid_t loc, const char *name, char *buf, size_t cap)
{
    char **s;
    size_t n;
    int rc = read_strings(c, loc, name, &s, &n);
    if (rc < 0)
        return rc;
    if (n != 1) {
        free_strings(c, s, n);
        return -SNN_EFORMAT;
    }
    snprintf(buf, cap, "%s", s[0]);
    free_strings(c, s, n);
    return 0;
}

/* Appends a zeroed node to c->g (growing it) and points *out at it. Pointers
 * to earlier nodes are invalidated. Returns 0 or -SNN_ENOMEM. */
static int push_node(ctx *c, snn_nir_rnode **out)
{
    snn_nir_rgraph *g = c->g;
    if (g->n_nodes == g->cap_nodes) {
        uint32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
        void *p = c->a->realloc(g->nodes, cap * sizeof *g->nodes);
        if (!p)
            return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        g->nodes = p;
        g->cap_nodes = cap;
    }
    *out = &g->nodes[g->n_nodes++];
    memset(*out, 0, sizeof **out);
    return 0;
}

/* Appends the edge src -> dst (node indices). Returns 0 or -SNN_ENOMEM. */
static int push_edge(ctx *c, uint32_t src, uint32_t dst)
{
    snn_nir_rgraph *g = c->g;
    if (g->n_edges == g->cap_edges) {
        uint32_t cap = g->cap_edges ? g->cap_edges * 2 : 16;
        void *p = c->a->realloc(g->edges, cap * sizeof *g->edges);
        if (!p)
            return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        g->edges = p;
        g->cap_edges = cap;
    }
    g->edges[g->n_edges].src = src;
    g->edges[g->n_edges].dst = dst;
    g->n_edges++;
    return 0;
}

/* Explains why H5Dread failed on dataset ds: a filter (compression) of ds
 * that this libhdf5 cannot decode, e.g. h5py's own "lzf", or "" if none is
 * missing. Writes into buf (cap bytes) and returns it. */
static const char *missing_filter(hid_t ds, char *buf, size_t cap)
{
    buf[0] = 0;
    hid_t pl = H5Dget_create_plist(ds);
    int nf = pl >= 0 ? H5Pget_nfilters(pl) : 0;
    for (int i = 0; i < nf && !buf[0]; i++) {
        unsigned flags, conf;
        size_t ne = 0;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(pl, (unsigned)i, &flags, &ne, NULL, sizeof fname, fname, &conf);
        if (id >= 0 && H5Zfilter_avail(id) <= 0)
            snprintf(buf, cap, " (it is compressed with HDF5 filter %d \"%s\", which this libhdf5 "
                     "lacks: rewrite the file with gzip or no compression)", (int)id, fname);
    }
    if (pl >= 0)
        H5Pclose(pl);
    return buf;
}

/* Reads the numeric dataset ds (file type ft, space sp) of node n as parameter
 * pname (shorter than a parameter name) into the next slot of n->params,
 * converted to float32. Returns 0 or a negative code with c->err set. */
static int read_numeric(ctx *c, snn_nir_rnode *n, const char *pname, hid_t ds, hid_t ft, hid_t sp)
{
    snn_nir_param *p = &n->params[n->n_params];
    int nd = H5Sget_simple_extent_ndims(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (nd < 0 || nd > 8 || np < 0 || np > (hssize_t)1 << 30)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': parameter %s has an unsupported shape",
                           c->file, n->name, pname);
    hsize_t dims[8];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    memcpy(p->name, pname, strlen(pname) + 1);
    p->ndim = nd;
    for (int d = 0; d < nd; d++)
        p->dims[d] = dims[d];
    p->n = (uint32_t)np;
    p->stored_bytes = (uint64_t)np * H5Tget_size(ft);
    p->data = c->a->malloc((np ? (size_t)np : 1) * sizeof(float));
    n->n_params++;
    if (!p->data)
        return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
    if (np && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p->data) < 0) {
        char why[256];
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': cannot read parameter %s%s", c->file,
                           n->name, pname, missing_filter(ds, why, sizeof why));
    }
    return 0;
}

/* An Input's, Output's or Flatten's shape written as NIR's input_type /
 * output_type dictionary: the HDF5 group gname of node group gid holding one
 * numeric dataset (e.g. input_type/input). Reads it as parameter gname;
 * anything else (several ports, strings) is skipped. Returns 0 or a negative
 * code with c->err set. */
static int read_port_group(ctx *c, hid_t gid, const char *gname, snn_nir_rnode *n)
{
    hid_t grp = H5Gopen2(gid, gname, H5P_DEFAULT);
    H5G_info_t info;
    char key[256];
    int rc = 0;
    if (grp < 0)
        return 0;
    if (H5Gget_info(grp, &info) >= 0 && info.nlinks == 1 &&
        H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, 0, key, sizeof key, H5P_DEFAULT) >= 0) {
        hid_t obj = H5Oopen(grp, key, H5P_DEFAULT);
        int is_ds = obj >= 0 && H5Iget_type(obj) == H5I_DATASET;
        if (obj >= 0)
            H5Oclose(obj);
        if (is_ds) {
            hid_t ds = H5Dopen2(grp, key, H5P_DEFAULT);
            hid_t ft = ds >= 0 ? H5Dget_type(ds) : -1;
            hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
            H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
            if (sp >= 0 && (cls == H5T_FLOAT || cls == H5T_INTEGER))
                rc = read_numeric(c, n, gname, ds, ft, sp);
            if (sp >= 0)
                H5Sclose(sp);
            if (ft >= 0)
                H5Tclose(ft);
            if (ds >= 0)
                H5Dclose(ds);
        }
    }
    H5Gclose(grp);
    return rc;
}

/* Reads every numeric dataset of node group gid into n->params, and every
 * scalar string dataset as a text parameter (other strings, datasets whose
 * names are too long to be a NIR parameter, groups such as metadata, and
 * "type" are skipped). An Input's, Output's or Flatten's input_type /
 * output_type group is read by read_port_group. */
static int read_params(ctx *c, hid_t gid, snn_nir_rnode *n)
{
    H5G_info_t info;
    if (H5Gget_info(gid, &info) < 0)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': unreadable group", c->file,
                           n->name);
    n->params = c->a->calloc(info.nlinks ? info.nlinks : 1, sizeof *n->params);
    if (!n->params)
        return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
    int ports = !strcmp(n->type, "Input") || !strcmp(n->type, "Output") || !strcmp(n->type, "Flatten");
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char key[256];
        if (H5Lget_name_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, i, key, sizeof key,
                               H5P_DEFAULT) < 0)
            return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': unreadable member %llu",
                               c->file, n->name, (unsigned long long)i);
        hid_t obj = H5Oopen(gid, key, H5P_DEFAULT);
        if (obj < 0)
            return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': cannot open '%s'",
                               c->file, n->name, key);
        H5I_type_t ot = H5Iget_type(obj);
        H5Oclose(obj);
        if (ot == H5I_GROUP && ports && (!strcmp(key, "input_type") || !strcmp(key, "output_type"))) {
            int rc = read_port_group(c, gid, key, n);
            if (rc < 0)
                return rc;
            continue;
        }
        if (ot != H5I_DATASET || strcmp(key, "type") == 0 || strlen(key) >= sizeof n->params[0].name)
            continue;
        hid_t ds = H5Dopen2(gid, key, H5P_DEFAULT);
        hid_t ft = H5Dget_type(ds);
        hid_t sp = H5Dget_space(ds);
        H5T_class_t cls = H5Tget_class(ft);
        int rc = 0;
        if (cls == H5T_STRING) {
            snn_nir_param *p = &n->params[n->n_params];
            int t = read_string(c, gid, key, p->text, sizeof p->text);
            if (t == 0) {
                memcpy(p->name, key, strlen(key) + 1);
                p->ndim = -1;
                n->n_params++;
            } else {
                memset(p, 0, sizeof *p); /* an array of strings: skipped */
                if (t == -SNN_ENOMEM)
                    rc = snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
            }
        } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
            rc = read_numeric(c, n, key, ds, ft, sp);
        }
        H5Sclose(sp);
        H5Tclose(ft);
        H5Dclose(ds);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* 0 if graph gid's string dataset 'edges' has 2 dimensions of which the
 * second is not 2 (e.g. [2, E]: pairs read row by row would join the wrong
 * nodes), with its shape written into why (cap bytes); 1 for [E, 2] and for a
 * flat list of 2E names. */
static int edges_shape_ok(hid_t gid, char *why, size_t cap)
{
    hid_t ds = H5Dopen2(gid, "edges", H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hsize_t dims[2] = {0, 2};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 2)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    snprintf(why, cap, ", has [%llu, %llu]", (unsigned long long)dims[0], (unsigned long long)dims[1]);
    return nd != 2 || dims[1] == 2 || dims[0] * dims[1] == 0;
}

/* Returns the entry called name among the n names of one graph, or NULL. */
static local *find_local(local *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return &l[i];
    return NULL;
}

/* Resolves an edge endpoint: a node of this graph, else an alias (nir_read.h),
 * else NIR's port notation "node.port": "G.x" is node x of subgraph G (its
 * flattened name prefix + "G/x"), "A.input" / "A.output" is plain node A. The
 * name is split at each '.' in turn, so node names that contain dots still
 * match first. A port is written into *tmp, which is returned. */
static local *resolve(ctx *c, local *l, size_t n, const char *prefix, const char *name, local *tmp)
{
    local *r = find_local(l, n, name);
    if (r)
        return r;
    size_t pl = strlen(prefix);
    for (uint32_t i = 0; i < c->n_aliases; i++) {
        const char *from = c->aliases[2 * i];
        if (strncmp(from, prefix, pl) == 0 && strcmp(from + pl, name) == 0)
            return find_local(l, n, c->aliases[2 * i + 1]);
    }
    for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
        char head[256], full[256];
        size_t hl = (size_t)(dot - name);
        if (hl >= sizeof head)
            break;
        memcpy(head, name, hl);
        head[hl] = 0;
        local *h = find_local(l, n, head);
        if (!h)
            continue;
        if (!h->is_graph) {
            if (strcmp(dot + 1, "input") && strcmp(dot + 1, "output"))
                continue;
            *tmp = *h;
            return tmp;
        }
        if ((size_t)snprintf(full, sizeof full, "%s%s/%s", prefix, head, dot + 1) >= sizeof full)
            continue;
        for (uint32_t k = 0; k < c->g->n_nodes; k++)
            if (strcmp(c->g->nodes[k].name, full) == 0) {
                memset(tmp, 0, sizeof *tmp);
                snprintf(tmp->name, sizeof tmp->name, "%s", name);
                tmp->in = tmp->out = (long)k;
                return tmp;
            }
    }
    return NULL;
}

/* Reads the graph group gid whose nodes get names prefix + name. On return
 * *in / *out are the node indices of its sole Input / Output node (-1 if
 * none, -2 if several). */
static int read_graph(ctx *c, hid_t gid, const char *prefix, int depth, long *in, long *out)
{
    const char *gname = *prefix ? prefix : "(top)";
    if (depth > MAX_DEPTH)
        return snn_err_set(c->err, SNN_ENOTSUP, "%s: graph '%s': subgraphs nested deeper than %d",
                           c->file, gname, MAX_DEPTH);
    if (H5Lexists(gid, "nodes", H5P_DEFAULT) <= 0)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: graph '%s': no 'nodes' group", c->file,
                           gname);
    hid_t nodes = H5Gopen2(gid, "nodes", H5P_DEFAULT);
    if (nodes < 0)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: graph '%s': 'nodes' is not a group",
                           c->file, gname);
    H5G_info_t info;
    local *loc = NULL;
    size_t n_loc = 0;
    char **es = NULL;
    size_t n_es = 0;
    int rc = 0;
    *in = *out = -1;
    if (H5Gget_info(nodes, &info) < 0) {
        rc = snn_err_set(c->err, SNN_EFORMAT, "%s: graph '%s': unreadable nodes", c->file, gname);
        goto done;
    }
    loc = c->a->calloc(info.nlinks ? info.nlinks : 1, sizeof *loc);
    if (!loc) {
        rc = snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        goto done;
    }
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char key[256], full[256], type[32];
        if (H5Lget_name_by_idx(nodes, ".", H5_INDEX_NAME, H5_ITER_INC, i, key, sizeof key,
                               H5P_DEFAULT) < 0 ||
            (size_t)snprintf(full, sizeof full, "%s%s", prefix, key) >= sizeof full) {
            rc = snn_err_set(c->err, SNN_EFORMAT, "%s: graph '%s': node name too long or unreadable",
                             c->file, gname);
            goto done;
        }
        hid_t obj = H5Oopen(nodes, key, H5P_DEFAULT);
        int is_group = obj >= 0 && H5Iget_type(obj) == H5I_GROUP;
        if (obj >= 0)
            H5Oclose(obj);
        if (!is_group) {
            rc = snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' is not an HDF5 group", c->file,
                             full);
            goto done;
        }
        hid_t ng = H5Gopen2(nodes, key, H5P_DEFAULT);
        int t = read_string(c, ng, "type", type, sizeof type);
        if (t < 0) {
            H5Gclose(ng);
            if (t == -SNN_ENOMEM)
                rc = snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
            else
                rc = snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': %s 'type' string", c->file,
                                 full, t == -SNN_ENOENT ? "no" : "unreadable");
            goto done;
        }
        local *l = &loc[n_loc++];
        snprintf(l->name, sizeof l->name, "%s", key);
        if (strcmp(type, "NIRGraph") == 0) {
            char sub[256];
            if ((size_t)snprintf(sub, sizeof sub, "%s/", full) >= sizeof sub) {
                H5Gclose(ng);
                rc = snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s': name too long", c->file, full);
                goto done;
            }
            l->is_graph = 1;
            rc = read_graph(c, ng, sub, depth + 1, &l->in, &l->out);
            H5Gclose(ng);
            if (rc < 0)
                goto done;
            continue;
        }
        snn_nir_rnode *nn = NULL;
        if ((rc = push_node(c, &nn)) < 0 || !nn) {
            H5Gclose(ng);
            goto done;
        }
        snprintf(nn->name, sizeof nn->name, "%s", full);
        snprintf(nn->type, sizeof nn->type, "%s", type);
        nn->top = depth == 0;
        l->in = l->out = (long)(c->g->n_nodes - 1);
        rc = read_params(c, ng, nn);
        H5Gclose(ng);
        if (rc < 0)
            goto done;
        if (strcmp(type, "Input") == 0)
            *in = *in == -1 ? l->in : -2;
        if (strcmp(type, "Output") == 0)
            *out = *out == -1 ? l->out : -2;
    }
    rc = read_strings(c, gid, "edges", &es, &n_es);
    if (rc == -SNN_ENOENT) {
        /* h5py stores an empty edge list as a numeric (0,) array or omits it. */
        rc = 0;
    } else if (rc < 0) {
        if (rc == -SNN_ENOMEM)
            rc = snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        else {
            /* an empty numeric edge list is fine, anything else is not */
            hid_t ds = H5Dopen2(gid, "edges", H5P_DEFAULT);
            hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
            hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
            if (sp >= 0)
                H5Sclose(sp);
            if (ds >= 0)
                H5Dclose(ds);
            rc = np == 0 ? 0
                         : snn_err_set(c->err, SNN_EFORMAT,
                                       "%s: graph '%s': 'edges' is not an array of strings",
                                       c->file, gname);
        }
        if (rc < 0)
            goto done;
    }
    char why[64] = "";
    if (n_es % 2 || !edges_shape_ok(gid, why, sizeof why)) {
        rc = snn_err_set(c->err, SNN_EFORMAT,
                         "%s: graph '%s': 'edges' must have shape [E, 2] (source, target)%s",
                         c->file, gname, n_es % 2 ? "" : why);
        goto done;
    }
    for (size_t e = 0; e + 1 < n_es; e += 2) {
        local ts, td;
        local *s = resolve(c, loc, n_loc, prefix, es[e], &ts);
        local *d = resolve(c, loc, n_loc, prefix, es[e + 1], &td);
        const char *bad = !s ? es[e] : !d ? es[e + 1] : NULL;
        if (bad) {
            rc = snn_err_set(c->err, SNN_EFORMAT,
                             "%s: graph '%s': edge '%s' -> '%s': no node named '%s' (a sidecar "
                             "\"aliases\": {\"%s%s\": \"<node>\"} can repair it)",
                             c->file, gname, es[e], es[e + 1], bad, prefix, bad);
            goto done;
        }
        if (s->out < 0 || d->in < 0) {
            const char *g = s->out < 0 ? s->name : d->name;
            rc = snn_err_set(c->err, SNN_ENOTSUP,
                             "%s: graph '%s': edge '%s' -> '%s': subgraph '%s' needs exactly one %s node",
                             c->file, gname, es[e], es[e + 1], g, s->out < 0 ? "Output" : "Input");
            goto done;
        }
        if ((rc = push_edge(c, (uint32_t)s->out, (uint32_t)d->in)) < 0)
            goto done;
    }
done:
    free_strings(c, es, n_es);
    c->a->free(loc);
    H5Gclose(nodes);
    return rc;
}

/* Contract in nir_read.h. HDF5's own error printing is switched off for the
 * duration (and restored): our message replaces its stack dump. */
int snn_nir__read(const char *path, const char *const *aliases, uint32_t n_aliases,
                  const snn_allocator *a, snn_nir_rgraph *g, snn_err *err)
{
    ctx c = {base_name(path), a, g, err, aliases, n_aliases};
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's stack dumps */
    int rc = 0;
    hid_t f = -1, node = -1;
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        rc = snn_err_set(err, SNN_ENOENT, "%s: cannot open file", c.file);
        goto done;
    }
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: not an HDF5 file", c.file);
        goto done;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: HDF5 file cannot be opened", c.file);
        goto done;
    }
    if (read_string(&c, f, "version", g->version, sizeof g->version) < 0)
        snprintf(g->version, sizeof g->version, "unknown");
    if (H5Lexists(f, "node", H5P_DEFAULT) <= 0 || (node = H5Gopen2(f, "node", H5P_DEFAULT)) < 0) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: no /node group (not a NIR graph)", c.file);
        goto done;
    }
    char type[32];
    if (read_string(&c, node, "type", type, sizeof type) < 0 || strcmp(type, "NIRGraph") != 0) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: /node/type is not \"NIRGraph\"", c.file);
        goto done;
    }
    long in, out;
    rc = read_graph(&c, node, "", 0, &in, &out);
done:
    if (node >= 0)
        H5Gclose(node);
    if (f >= 0)
        H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return rc;
}

/* Contract in nir_read.h. */
void snn_nir__rgraph_free(snn_nir_rgraph *g, const snn_allocator *a)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        for (uint32_t j = 0; j < g->nodes[i].n_params; j++)
            a->free(g->nodes[i].params[j].data);
        a->free(g->nodes[i].params);
    }
    a->free(g->nodes);
    a->free(g->edges);
    memset(g, 0, sizeof *g);
}

/* Contract in nir_read.h. */
const snn_nir_param *snn_nir__param(const snn_nir_rnode *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_params; i++)
        if (n->params[i].ndim >= 0 && strcmp(n->params[i].name, name) == 0)
            return &n->params[i];
    return NULL;
}

/* Contract in nir_read.h. */
const char *snn_nir__text(const snn_nir_rnode *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_params; i++)
        if (n->params[i].ndim < 0 && strcmp(n->params[i].name, name) == 0)
            return n->params[i].text;
    return NULL;
}
