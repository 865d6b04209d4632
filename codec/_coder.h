/*
 * LZMA's binary range coder (spec/FORMAT.md section 5.4) and the argument checks of a stripe call,
 * shared by the stripe coders of payload coding 1 (_ctx1.c) and coding 2 (_mix.c).
 *
 * The coder takes p, the probability of a 0 in units of 2^-15; where that probability comes from
 * (an adaptive slot, a mixer) is the caller's business, so the models stay in their own files.
 */
#ifndef KMQ_CODER_H
#define KMQ_CODER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RC_TOP (1u << 24)

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t cache_size;
    uint8_t *out;
    size_t pos, cap, limit;
    int overflow, nomem; /* the stream outgrew limit; memory ran out (overflow is set too) */
} Encoder;

/* Start a stream of at most limit bytes, with room for about hint bytes; 0, or -1 without memory. */
static int encoder_init(Encoder *e, size_t limit, size_t hint) {
    memset(e, 0, sizeof *e);
    e->range = 0xFFFFFFFFu;
    e->cache_size = 1;
    e->limit = limit;
    e->cap = hint < limit ? hint : (limit > 0 ? limit : 1);
    e->out = (uint8_t *)malloc(e->cap);
    return e->out == NULL ? -1 : 0;
}

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
        const uint8_t carry = (uint8_t)(e->low >> 32);
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

/* Code bit with p, the probability of a 0 in units of 2^-15 (1..32767). */
static inline void encode_p(Encoder *e, uint32_t p, unsigned bit) {
    const uint32_t bound = (e->range >> 15) * p;
    if (bit) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    while (e->range < RC_TOP) {
        e->range <<= 8;
        shift_low(e);
    }
}

/* The end of a stream: five shift_low() calls flush low and the cache. */
static inline void encoder_finish(Encoder *e) {
    int i;
    for (i = 0; i < 5; i++) shift_low(e);
}

/* ---- decoder ------------------------------------------------------------------------------ */

/* Stream statuses both coders report (codec/ctx1.py has the messages); each coder adds its own. */
enum {
    RC_OK = 0,
    RC_SHORT = 1,       /* fewer than 5 bytes */
    RC_FIRST_BYTE = 2,  /* byte 0 is not 0 */
    RC_CODE_RANGE = 3,  /* bytes 1..4 are FF FF FF FF: code is not below range */
    RC_EARLY_END = 4,   /* the decoder needed a byte past the end */
    RC_LEFT_OVER = 7,   /* bytes left after the last pixel */
    RC_CODE_NONZERO = 8 /* code != 0 after the last pixel */
};

typedef struct {
    uint32_t code, range;
    const uint8_t *in;
    size_t pos, len;
    int early; /* a byte past the end was needed */
} Decoder;

/* Read the first five bytes: RC_OK, or the status of a stream that cannot start. */
static int decoder_start(Decoder *d) {
    if (d->len < 5) return RC_SHORT;
    if (d->in[0] != 0) return RC_FIRST_BYTE;
    d->code = (uint32_t)d->in[1] << 24 | (uint32_t)d->in[2] << 16 | (uint32_t)d->in[3] << 8 | d->in[4];
    d->range = 0xFFFFFFFFu;
    d->pos = 5;
    d->early = 0;
    /* code < range must hold throughout; it does from here on if it holds now. */
    return d->code == 0xFFFFFFFFu ? RC_CODE_RANGE : RC_OK;
}

/* Decode a bit whose probability of being 0 is p / 2^15. A stream that ends early sets d->early at
 * once (a valid stream never needs a byte past its end) and leaves range at its maximum. */
static inline unsigned decode_p(Decoder *d, uint32_t p) {
    const uint32_t bound = (d->range >> 15) * p;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        bit = 1;
    }
    while (d->range < RC_TOP) {
        d->range <<= 8;
        if (d->pos >= d->len) {
            d->early = 1;
            d->range = 0xFFFFFFFFu;
            return bit;
        }
        d->code = (d->code << 8) | d->in[d->pos++];
    }
    return bit;
}

/* After the last pixel: RC_OK, or the rule the stream's end breaks ("left over" before "code"). */
static inline int decoder_end(const Decoder *d) {
    if (d->pos != d->len) return RC_LEFT_OVER;
    return d->code != 0 ? RC_CODE_NONZERO : RC_OK;
}

/* What decode reports beside a status: the first byte for RC_FIRST_BYTE, the bytes left over for
 * RC_LEFT_OVER, else 0. */
static inline Py_ssize_t decoder_detail(const Decoder *d, int status) {
    if (status == RC_FIRST_BYTE) return d->in[0];
    if (status == RC_LEFT_OVER) return (Py_ssize_t)(d->len - d->pos);
    return 0;
}

/* ---- the arguments of a stripe call ----------------------------------------------------------- */

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

/* decode's output size, stripe index and optional stop flag (a writable, aligned int32 that
 * another thread lowers below index to cancel this stripe). On success *stop is NULL or points
 * into *stopbuf, which the caller releases when *stop is not NULL. */
static int check_decode_args(const Py_buffer *out, Py_ssize_t width, Py_ssize_t height, Py_ssize_t index,
                             PyObject *stopobj, Py_buffer *stopbuf, const volatile int32_t **stop) {
    *stop = NULL;
    if (out->len != width * height) {
        PyErr_Format(PyExc_ValueError, "output is %zd bytes, not %zd x %zd", out->len, width, height);
        return -1;
    }
    if (index < 0 || index > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "index %zd not in 0..%d", index, INT32_MAX);
        return -1;
    }
    if (stopobj != NULL && stopobj != Py_None) {
        if (PyObject_GetBuffer(stopobj, stopbuf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
        if (stopbuf->len < (Py_ssize_t)sizeof(int32_t) || ((uintptr_t)stopbuf->buf & 3u) != 0) {
            PyErr_SetString(PyExc_ValueError, "stop must be an aligned writable buffer of at least 4 bytes");
            PyBuffer_Release(stopbuf);
            return -1;
        }
        *stop = (const volatile int32_t *)stopbuf->buf;
    }
    return 0;
}

/* The ValueError of a label >= k, args (message, label, x, y): the caller knows the stripe's rows. */
static void set_bad_label(int value, Py_ssize_t k, size_t x, size_t y) {
    PyObject *err = Py_BuildValue(
        "(Ninn)", PyUnicode_FromFormat("label %d >= k=%zd at pixel (%zu, %zu) of the stripe", value, k, x, y), value,
        (Py_ssize_t)x, (Py_ssize_t)y);
    if (err != NULL) {
        PyErr_SetObject(PyExc_ValueError, err);
        Py_DECREF(err);
    }
}

#endif
