/*
 * kmq._ctx1: payload coding 1 ("ctx1") of the kmq format, one stripe at a time.
 *
 * spec/FORMAT.md section 5 is the definition; this file follows it step by
 * step and its names match the spec's. The Python side (codec/ctx1.py) splits
 * the label plane into stripes, validates the stripe table and runs stripes on
 * threads; this file codes one stripe and releases the GIL while it does.
 *
 * Why C: the model is conditioned on W, the pixel just decoded, so the decoder
 * is sequential within a row and cannot be vectorised in numpy; BENCHMARKS.md
 * (issue 4) has the measured alternatives.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROB_BITS 15
#define PROB_INIT (1u << (PROB_BITS - 1))
#define PROB_ONE (1u << PROB_BITS)
#define TOP (1u << 24)
#define COUNT_MAX 31
#define SMALL_K 16 /* K <= SMALL_K: flag contexts include the values of W and N */

/* Adaptation shift after c earlier updates: min(6, 1 + floor(log2(c + 1))). */
static const uint8_t RATE[COUNT_MAX + 1] = {
    1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6,
};

typedef struct {
    uint16_t p; /* probability that the next bit is 0, in units of 2^-15 */
    uint16_t c; /* updates so far, saturating at COUNT_MAX */
} Slot;

static inline void slot_update(Slot *s, unsigned bit) {
    unsigned r = RATE[s->c];
    if (s->c < COUNT_MAX) s->c++;
    if (bit)
        s->p = (uint16_t)(s->p - (s->p >> r));
    else
        s->p = (uint16_t)(s->p + ((PROB_ONE - s->p) >> r));
}

/* ---- the model: slot tables and the per-pixel context ---------------------------------- */

typedef struct {
    int k, bits, small;
    Slot *flags; /* (V * 256 + P) * 4 + i */
    Slot *tree;  /* w * 2^bits + node */
} Model;

static int model_init(Model *m, int k) {
    size_t nv, nflags, ntree, i;
    m->k = k;
    m->bits = 0;
    while ((1 << m->bits) < k) m->bits++;
    m->small = k <= SMALL_K;
    nv = m->small ? (size_t)(k + 1) * (size_t)(k + 1) : 1;
    nflags = nv * 256 * 4;
    ntree = (size_t)(k + 1) << m->bits;
    m->flags = (Slot *)malloc((nflags + ntree) * sizeof(Slot));
    if (m->flags == NULL) return -1;
    m->tree = m->flags + nflags;
    for (i = 0; i < nflags + ntree; i++) {
        m->flags[i].p = PROB_INIT;
        m->flags[i].c = 0;
    }
    return 0;
}

typedef struct {
    int m;          /* number of candidates */
    int list[4];    /* L: distinct present values of W, N, NE, NW, in that order */
    size_t base;    /* first flag slot of this pixel's context */
    size_t tbase;   /* first tree slot: W's value (K if absent) times 2^bits */
} Context;

/* The neighbours are read from the stripe's own label plane (the encoder's input, the
 * decoder's output so far), so coding needs no memory beyond the model: a header with a
 * huge width cannot make the decoder allocate more than the labels it declares. */
static inline void context(const Model *m, const uint8_t *row, size_t width, size_t x, size_t y, Context *ctx) {
    const int a = m->k; /* ABSENT */
    int w, ww, n, nw, ne, nn;
    if (y >= 2 && x >= 2 && x + 1 < width) { /* all six exist: one test for the common case */
        const uint8_t *up = row - width;
        w = row[x - 1], ww = row[x - 2], n = up[x], nw = up[x - 1], ne = up[x + 1], nn = (up - width)[x];
    } else {
        w = x >= 1 ? row[x - 1] : a, ww = x >= 2 ? row[x - 2] : a;
        n = nw = ne = nn = a;
        if (y >= 1) {
            const uint8_t *up = row - width;
            n = up[x];
            if (x >= 1) nw = up[x - 1];
            if (x + 1 < width) ne = up[x + 1];
            if (y >= 2) nn = (up - width)[x];
        }
    }
    const unsigned pat = (unsigned)(w == n) | (unsigned)(w == nw) << 1 | (unsigned)(w == ne) << 2 |
                         (unsigned)(n == nw) << 3 | (unsigned)(n == ne) << 4 | (unsigned)(nw == ne) << 5 |
                         (unsigned)(ww == w) << 6 | (unsigned)(nn == n) << 7;
    const size_t v = m->small ? (size_t)w * (size_t)(a + 1) + (size_t)n : 0;
    int c = 0;
    if (w != a) ctx->list[c++] = w;
    if (n != a && n != w) ctx->list[c++] = n;
    if (ne != a && ne != w && ne != n) ctx->list[c++] = ne;
    if (nw != a && nw != w && nw != n && nw != ne) ctx->list[c++] = nw;
    ctx->m = c;
    ctx->base = (v * 256 + pat) * 4;
    ctx->tbase = (size_t)w << m->bits;
}

/* ---- encoder: LZMA's range coder --------------------------------------------------------- */

typedef struct {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t cache_size;
    uint8_t *out;
    size_t pos, cap, limit;
    int overflow, nomem;
} Encoder;

static inline void put_byte(Encoder *e, uint8_t b) {
    if (e->pos >= e->limit) {
        e->overflow = 1;
        return;
    }
    if (e->pos == e->cap) {
        size_t cap = e->cap * 2 < e->limit ? e->cap * 2 : e->limit;
        uint8_t *out = (uint8_t *)realloc(e->out, cap);
        if (out == NULL) {
            e->nomem = 1;
            e->overflow = 1;
            return;
        }
        e->out = out;
        e->cap = cap;
    }
    e->out[e->pos++] = b;
}

static inline void shift_low(Encoder *e) {
    if (e->low < 0xFF000000u || e->low >= ((uint64_t)1 << 32)) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t temp = e->cache;
        do {
            put_byte(e, (uint8_t)(temp + carry));
            temp = 0xFF;
        } while (--e->cache_size != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

static inline void encode_bit(Encoder *e, Slot *s, unsigned bit) {
    uint32_t bound = (e->range >> PROB_BITS) * s->p;
    if (bit) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    slot_update(s, bit);
    while (e->range < TOP) {
        e->range <<= 8;
        shift_low(e);
    }
}

/* Returns 0, or -1 when the stream outgrew e->limit (or memory ran out). */
static int encode_stripe(const uint8_t *labels, size_t width, size_t height, Model *m, Encoder *e) {
    Context ctx;
    size_t x, y;
    int i, b;
    for (y = 0; y < height; y++) {
        const uint8_t *src = labels + y * width;
        for (x = 0; x < width; x++) {
            const int value = src[x];
            int found = 0;
            context(m, src, width, x, y, &ctx);
            for (i = 0; i < ctx.m; i++) {
                const unsigned bit = ctx.list[i] == value;
                encode_bit(e, &m->flags[ctx.base + (size_t)i], bit);
                if (bit) {
                    found = 1;
                    break;
                }
            }
            if (!found) {
                size_t node = 1;
                for (b = m->bits - 1; b >= 0; b--) {
                    const unsigned bit = (unsigned)(value >> b) & 1u;
                    encode_bit(e, &m->tree[ctx.tbase + node], bit);
                    node = 2 * node + bit;
                }
            }
        }
        if (e->overflow) return -1;
    }
    for (i = 0; i < 5; i++) shift_low(e);
    return e->overflow ? -1 : 0;
}

/* ---- decoder ------------------------------------------------------------------------------ */

enum {
    DEC_OK = 0,
    DEC_SHORT,       /* fewer than 5 bytes */
    DEC_FIRST_BYTE,  /* byte 0 is not 0 */
    DEC_CODE_RANGE,  /* bytes 1..4 are FF FF FF FF: code is not below range */
    DEC_EARLY_END,   /* the decoder needed a byte past the end */
    DEC_LABEL_K,     /* an escaped value >= K */
    DEC_LABEL_IN_L,  /* an escaped value that is one of the candidates */
    DEC_LEFT_OVER,   /* bytes left after the last pixel */
    DEC_CODE_NONZERO /* code != 0 after the last pixel */
};

typedef struct {
    uint32_t code, range;
    const uint8_t *in;
    size_t pos, len;
    int status;
} Decoder;

static inline unsigned decode_bit(Decoder *d, Slot *s) {
    const uint32_t bound = (d->range >> PROB_BITS) * s->p;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        bit = 1;
    }
    slot_update(s, bit);
    while (d->range < TOP) {
        d->range <<= 8;
        if (d->pos >= d->len) {
            /* Stop at once: a valid stream never needs a byte past its end. */
            d->status = DEC_EARLY_END;
            d->range = 0xFFFFFFFFu; /* leaves the loop; the caller sees status */
            return bit;
        }
        d->code = (d->code << 8) | d->in[d->pos++];
    }
    return bit;
}

/* On failure, *fail_x and *fail_y give the pixel at which decoding stopped. */
static int decode_stripe(Decoder *d, uint8_t *labels, size_t width, size_t height, Model *m,
                         size_t *fail_x, size_t *fail_y) {
    Context ctx;
    size_t x, y;
    int i, b;
    *fail_x = 0;
    *fail_y = 0;
    if (d->len < 5) return DEC_SHORT;
    if (d->in[0] != 0) return DEC_FIRST_BYTE;
    d->code = (uint32_t)d->in[1] << 24 | (uint32_t)d->in[2] << 16 | (uint32_t)d->in[3] << 8 | d->in[4];
    d->range = 0xFFFFFFFFu;
    d->pos = 5;
    d->status = DEC_OK;
    /* code < range must hold throughout; it does from here on if it holds now. */
    if (d->code == 0xFFFFFFFFu) return DEC_CODE_RANGE;
    for (y = 0; y < height; y++) {
        uint8_t *dst = labels + y * width;
        for (x = 0; x < width; x++) {
            int value = -1;
            context(m, dst, width, x, y, &ctx);
            for (i = 0; i < ctx.m; i++) {
                if (decode_bit(d, &m->flags[ctx.base + (size_t)i])) {
                    value = ctx.list[i];
                    break;
                }
            }
            if (value < 0) {
                size_t node = 1;
                for (b = 0; b < m->bits; b++) node = 2 * node + decode_bit(d, &m->tree[ctx.tbase + node]);
                value = (int)(node - ((size_t)1 << m->bits));
                if (value >= m->k) d->status = d->status ? d->status : DEC_LABEL_K;
                for (i = 0; i < ctx.m; i++)
                    if (ctx.list[i] == value) d->status = d->status ? d->status : DEC_LABEL_IN_L;
            }
            if (d->status != DEC_OK) {
                *fail_x = x;
                *fail_y = y;
                return d->status;
            }
            dst[x] = (uint8_t)value;
        }
    }
    if (d->pos != d->len) return DEC_LEFT_OVER;
    if (d->code != 0) return DEC_CODE_NONZERO;
    return DEC_OK;
}

/* ---- Python bindings ---------------------------------------------------------------------- */

static int check_geometry(Py_ssize_t k, Py_ssize_t width, Py_ssize_t height) {
    if (k < 2 || k > 256) {
        PyErr_Format(PyExc_ValueError, "k %zd not in 2..256", k);
        return -1;
    }
    if (width < 1 || height < 1 || width > PY_SSIZE_T_MAX / 8 || width > PY_SSIZE_T_MAX / height) {
        PyErr_Format(PyExc_ValueError, "stripe of %zd x %zd pixels is out of range", width, height);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(encode_doc,
             "encode(labels, width, height, k, limit) -> bytes | None\n\n"
             "Code one stripe: ``labels`` is a C-contiguous buffer of width * height\n"
             "uint8 labels, all < k. Returns None when the stream would exceed\n"
             "``limit`` bytes.");

static PyObject *py_encode(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t width, height, k, limit;
    Model m = {0};
    Encoder e = {0};
    int rc, nomem;
    PyObject *result;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnn", &buf, &width, &height, &k, &limit)) return NULL;
    if (check_geometry(k, width, height) < 0) goto fail;
    if (buf.len != width * height) {
        PyErr_Format(PyExc_ValueError, "labels are %zd bytes, not %zd x %zd", buf.len, width, height);
        goto fail;
    }
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        goto fail;
    }
    e.range = 0xFFFFFFFFu;
    e.cache_size = 1;
    e.limit = (size_t)limit;
    e.cap = (size_t)(buf.len / 4 + 64);
    if (e.cap > e.limit) e.cap = e.limit > 0 ? e.limit : 1;
    e.out = (uint8_t *)malloc(e.cap);
    if (e.out == NULL || model_init(&m, (int)k) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    {
        const uint8_t *labels = (const uint8_t *)buf.buf;
        Py_ssize_t i;
        for (i = 0; i < buf.len; i++)
            if (labels[i] >= k) break;
        if (i < buf.len) {
            PyErr_Format(PyExc_ValueError, "label %d >= k=%zd", labels[i], k);
            goto fail;
        }
    }
    Py_BEGIN_ALLOW_THREADS;
    rc = encode_stripe((const uint8_t *)buf.buf, (size_t)width, (size_t)height, &m, &e);
    Py_END_ALLOW_THREADS;
    nomem = e.nomem;
    if (nomem) {
        PyErr_NoMemory();
        goto fail;
    }
    result = rc < 0 ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize((const char *)e.out, (Py_ssize_t)e.pos);
    free(e.out);
    free(m.flags);
    PyBuffer_Release(&buf);
    return result;
fail:
    free(e.out);
    free(m.flags);
    PyBuffer_Release(&buf);
    return NULL;
}

PyDoc_STRVAR(decode_doc,
             "decode(data, width, height, k, out) -> (status, x, y, detail)\n\n"
             "Decode one stripe into ``out``, a writable C-contiguous buffer of\n"
             "width * height bytes. status 0 means the stream is valid; any other\n"
             "value names the first rule it breaks (codec/ctx1.py has the list),\n"
             "at pixel (x, y) of the stripe; detail is the first byte for status 2\n"
             "and the bytes left over for status 7.");

static PyObject *py_decode(PyObject *self, PyObject *args) {
    Py_buffer in, out;
    Py_ssize_t width, height, k, detail = 0;
    Model m = {0};
    Decoder d = {0};
    int status = DEC_OK;
    size_t fx = 0, fy = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnw*", &in, &width, &height, &k, &out)) return NULL;
    if (check_geometry(k, width, height) < 0) goto fail;
    if (out.len != width * height) {
        PyErr_Format(PyExc_ValueError, "output is %zd bytes, not %zd x %zd", out.len, width, height);
        goto fail;
    }
    if (model_init(&m, (int)k) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    d.in = (const uint8_t *)in.buf;
    d.len = (size_t)in.len;
    Py_BEGIN_ALLOW_THREADS;
    status = decode_stripe(&d, (uint8_t *)out.buf, (size_t)width, (size_t)height, &m, &fx, &fy);
    Py_END_ALLOW_THREADS;
    if (status == DEC_FIRST_BYTE) detail = d.in[0];
    if (status == DEC_LEFT_OVER) detail = (Py_ssize_t)(d.len - d.pos);
    free(m.flags);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return Py_BuildValue("innn", status, (Py_ssize_t)fx, (Py_ssize_t)fy, detail);
fail:
    free(m.flags);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS, encode_doc},
    {"decode", py_decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kmq._ctx1", "Payload coding 1 (ctx1) of spec/FORMAT.md, one stripe at a time.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__ctx1(void) { return PyModule_Create(&module); }
