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
#include "_coder.h"

#define PROB_BITS 15
#define PROB_INIT (1u << (PROB_BITS - 1))
#define PROB_ONE (1u << PROB_BITS)
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

/* ---- the model: slot tables and the per-pixel context ---------------------------------- */

/* The model's memory: a header, the slots and a list of the slots updated so far. Resetting
 * a model resets only the slots on that list, so a fresh model for the next stripe costs time in
 * proportion to the bits the last stripe coded, never the whole table (1.2 MB at K = 16): a file
 * of many short stripes cannot make set-up dominate. ctx1.py keeps one per worker thread. */
typedef struct {
    uint32_t k;         /* the K the slots are laid out for; 0: never initialised */
    uint32_t capacity;  /* the K the memory was allocated for */
    uint64_t ntouched;  /* entries of the touched list */
} ModelHead;

typedef struct {
    int k, bits, small;
    size_t nslots;
    Slot *flags;        /* (V * 256 + P) * 4 + i */
    Slot *tree;         /* w * 2^bits + node */
    uint32_t *touched;  /* slots updated since the last reset, each once */
    ModelHead *head;
    void *owned;        /* the memory, when the model allocated it itself */
} Model;

static size_t model_slots(int k, int *bits, int *small) {
    size_t nv;
    int b = 0;
    while ((1 << b) < k) b++;
    *bits = b;
    *small = k <= SMALL_K;
    nv = *small ? (size_t)(k + 1) * (size_t)(k + 1) : 1;
    return nv * 256 * 4 + ((size_t)(k + 1) << b);
}

static size_t model_bytes(int k) {
    int bits, small;
    return sizeof(ModelHead) + model_slots(k, &bits, &small) * (sizeof(Slot) + sizeof(uint32_t));
}

/* Lay a model out in mem (model_bytes(k) bytes from new_model, or NULL to allocate) with every
 * slot fresh: a full initialisation the first time, then a reset of the slots last used. */
static int model_init(Model *m, int k, void *mem) {
    size_t i;
    m->k = k;
    m->nslots = model_slots(k, &m->bits, &m->small);
    m->owned = NULL;
    if (mem == NULL) {
        mem = malloc(model_bytes(k));
        if (mem == NULL) return -1;
        m->owned = mem;
        ((ModelHead *)mem)->k = 0;
        ((ModelHead *)mem)->capacity = (uint32_t)k;
    }
    m->head = (ModelHead *)mem;
    m->flags = (Slot *)(m->head + 1);
    m->tree = m->flags + (m->nslots - ((size_t)(k + 1) << m->bits));
    m->touched = (uint32_t *)(m->flags + m->nslots);
    if (m->head->k != (uint32_t)k || m->head->ntouched > m->nslots) {
        for (i = 0; i < m->nslots; i++) {
            m->flags[i].p = PROB_INIT;
            m->flags[i].c = 0;
        }
        m->head->k = (uint32_t)k;
    } else {
        const uint64_t n = m->head->ntouched;
        for (i = 0; i < n; i++) {
            const uint32_t j = m->touched[i];
            if (j < m->nslots) {
                m->flags[j].p = PROB_INIT;
                m->flags[j].c = 0;
            }
        }
    }
    m->head->ntouched = 0;
    return 0;
}

/* Leave the memory ready for the next model_init (which resets the touched slots), or free it. */
static void model_done(Model *m) { free(m->owned); }

static inline void slot_update(Model *m, Slot *s, unsigned bit) {
    unsigned r = RATE[s->c];
    if (s->c < COUNT_MAX) {
        if (s->c == 0) {
            const uint64_t n = m->head->ntouched; /* read once: in bounds even if misused from two threads */
            if (n < m->nslots) {
                m->touched[n] = (uint32_t)(s - m->flags);
                m->head->ntouched = n + 1;
            }
        }
        s->c++;
    }
    if (bit)
        s->p = (uint16_t)(s->p - (s->p >> r));
    else
        s->p = (uint16_t)(s->p + ((PROB_ONE - s->p) >> r));
}

typedef struct {
    int m;          /* number of candidates */
    int list[4];    /* L: distinct present values of W, N, NE, NW, in that order */
    size_t base;    /* first flag slot of this pixel's context */
    size_t tbase;   /* first tree slot: W's value (K if absent) times 2^bits */
} Context;

/* The neighbours are read from three rows the coder owns (the row being coded and the two above
 * it), never from the caller's array: the caller's memory is read once per label (encoder) or
 * written once per label (decoder), so another thread writing to it cannot put a label >= K
 * under the model's table indices. Coding needs no memory beyond the model and three rows, so a
 * header with a huge width cannot make the decoder allocate more than the labels it declares. */
static inline void context(const Model *m, const uint8_t *row, const uint8_t *up, const uint8_t *up2, size_t width,
                           size_t x, size_t y, Context *ctx) {
    const int a = m->k; /* ABSENT */
    int w, ww, n, nw, ne, nn;
    if (y >= 2 && x >= 2 && x + 1 < width) { /* all six exist: one test for the common case */
        w = row[x - 1], ww = row[x - 2], n = up[x], nw = up[x - 1], ne = up[x + 1], nn = up2[x];
    } else {
        w = x >= 1 ? row[x - 1] : a, ww = x >= 2 ? row[x - 2] : a;
        n = nw = ne = nn = a;
        if (y >= 1) {
            n = up[x];
            if (x >= 1) nw = up[x - 1];
            if (x + 1 < width) ne = up[x + 1];
            if (y >= 2) nn = up2[x];
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

/* ---- encoder: LZMA's range coder (_coder.h) ---------------------------------------------- */

static inline void encode_bit(Encoder *e, Model *m, Slot *s, unsigned bit) {
    encode_p(e, s->p, bit);
    slot_update(m, s, bit);
}

/* Returns 0; -1 when the stream outgrew e->limit (or memory ran out); -2 when a label is >= K,
 * with *bad_value and *bad_x, *bad_y naming the first. rows is 3 * width bytes of scratch. */
static int encode_stripe(const uint8_t *labels, size_t width, size_t height, Model *m, Encoder *e, uint8_t *rows,
                         int *bad_value, size_t *bad_x, size_t *bad_y) {
    Context ctx;
    size_t x, y;
    int i, b;
    for (y = 0; y < height; y++) {
        uint8_t *src = rows + (y % 3) * width;
        const uint8_t *up = rows + ((y + 2) % 3) * width, *up2 = rows + ((y + 1) % 3) * width;
        memcpy(src, labels + y * width, width);
        for (x = 0; x < width; x++)
            if (src[x] >= m->k) {
                *bad_value = src[x];
                *bad_x = x;
                *bad_y = y;
                return -2;
            }
        for (x = 0; x < width; x++) {
            const int value = src[x];
            int found = 0;
            context(m, src, up, up2, width, x, y, &ctx);
            for (i = 0; i < ctx.m; i++) {
                const unsigned bit = ctx.list[i] == value;
                encode_bit(e, m, &m->flags[ctx.base + (size_t)i], bit);
                if (bit) {
                    found = 1;
                    break;
                }
            }
            if (!found) {
                size_t node = 1;
                for (b = m->bits - 1; b >= 0; b--) {
                    const unsigned bit = (unsigned)(value >> b) & 1u;
                    encode_bit(e, m, &m->tree[ctx.tbase + node], bit);
                    node = 2 * node + bit;
                }
            }
        }
        if (e->overflow) return -1;
    }
    encoder_finish(e);
    return e->overflow ? -1 : 0;
}

/* ---- decoder ------------------------------------------------------------------------------ */

enum {
    DEC_OK = RC_OK,
    DEC_SHORT = RC_SHORT,
    DEC_FIRST_BYTE = RC_FIRST_BYTE,
    DEC_CODE_RANGE = RC_CODE_RANGE,
    DEC_EARLY_END = RC_EARLY_END,
    DEC_LABEL_K = 5,      /* an escaped value >= K */
    DEC_LABEL_IN_L = 6,   /* an escaped value that is one of the candidates */
    DEC_LEFT_OVER = RC_LEFT_OVER,
    DEC_CODE_NONZERO = RC_CODE_NONZERO,
    DEC_CANCELLED = 9     /* an earlier stripe failed: stopped before row y */
};

typedef struct {
    Decoder rc;
    int status;
} StripeDecoder;

static inline unsigned decode_bit(StripeDecoder *d, Model *m, Slot *s) {
    const unsigned bit = decode_p(&d->rc, s->p);
    slot_update(m, s, bit);
    /* Stop at once: a valid stream never needs a byte past its end. */
    if (d->rc.early) d->status = DEC_EARLY_END;
    return bit;
}

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(c) __builtin_expect(!!(c), 1)
#define UNLIKELY(c) __builtin_expect(!!(c), 0)
#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define LIKELY(c) (c)
#define UNLIKELY(c) (c)
#define NOINLINE __declspec(noinline)
#define ALWAYS_INLINE __forceinline
#else
#define LIKELY(c) (c)
#define UNLIKELY(c) (c)
#define NOINLINE
#define ALWAYS_INLINE inline
#endif

/* pat as the decoder numbers it: PAT_ORDER[pat as context() builds it]; pat_order_init fills it. */
static uint8_t PAT_ORDER[256];

/* One pixel by the spec's steps, every border and stream-end case checked: the decoder's
 * reference path, for the first two rows, the first two and the last column of each row and the
 * last few pixels of a stream. Returns DEC_OK or the status that stops the stripe. */
static NOINLINE int decode_pixel(StripeDecoder *d, Model *m, uint8_t *dst, const uint8_t *up, const uint8_t *up2,
                                 size_t width, size_t x, size_t y) {
    Context ctx;
    int i, b, value = -1;
    context(m, dst, up, up2, width, x, y, &ctx);
    /* The decoder's own numbering of pat (see the fast path below): base = (v * 256 + pat) * 4. */
    ctx.base = (ctx.base & ~(size_t)1023) | (size_t)PAT_ORDER[ctx.base >> 2 & 255] << 2;
    for (i = 0; i < ctx.m; i++) {
        if (decode_bit(d, m, &m->flags[ctx.base + (size_t)i])) {
            value = ctx.list[i];
            break;
        }
    }
    if (value < 0) {
        size_t node = 1;
        for (b = 0; b < m->bits; b++) node = 2 * node + decode_bit(d, m, &m->tree[ctx.tbase + node]);
        value = (int)(node - ((size_t)1 << m->bits));
        if (value >= m->k) d->status = d->status ? d->status : DEC_LABEL_K;
        for (i = 0; i < ctx.m; i++)
            if (ctx.list[i] == value) d->status = d->status ? d->status : DEC_LABEL_IN_L;
    }
    if (d->status != DEC_OK) return d->status;
    dst[x] = (uint8_t)value;
    return DEC_OK;
}

/* ---- the interior fast path --------------------------------------------------------------
 *
 * Where all six neighbours exist (rows from 2, columns 2..W-2) none is ABSENT, and the decoder
 * takes a faster road to the same bits. The slots are the decoder's own memory, so it may number
 * the contexts its own way, as long as equal contexts share a slot and different ones do not:
 * here pat's bits are, from bit 0, W == NW, W == N, W == NE, WW == W, N == NW, N == NE,
 * NW == NE, NN == N. The row above decides bits 4..7 and N's part of the slot index; they are
 * worked out for the whole row before it is decoded, in a loop the compiler vectorises (uc), so
 * that a pixel makes four comparisons with W for bits 0..3. The candidate list L
 * then depends on bits 0..2 and 4..6 only: CAND_M[pat] is its length and CAND_OFF[pat][i], for
 * i >= 1, where L[i] sits in the row above (N: 0, NE: +1, NW: -1); L[0] is W. The coder's state
 * lives in locals (a byte store may alias any struct field, which would make the compiler reload
 * them all after every label), and a pixel at least FAST_MARGIN bytes before the stream's end
 * cannot run past it, so its bits skip the end-of-stream tests. The arithmetic is the spec's,
 * step for step: the labels and statuses are those of decode_pixel. */

/* Most bytes one pixel can consume: 4 flags + 8 tree bits, each at most 2 bytes (after a bit
 * range >= 2^24 >> 15 = 2^9, two shifts of 8 restore it). */
#define FAST_MARGIN 24

static uint8_t CAND_M[256];
static int8_t CAND_OFF[256][4];

static void cand_init(void) {
    /* context()'s pat bit j becomes bit TO[j]: W == N, W == NW, W == NE, N == NW, N == NE,
     * NW == NE, WW == W, NN == N. */
    static const int TO[8] = {1, 0, 2, 4, 5, 6, 3, 7};
    int pat, j;
    for (pat = 0; pat < 256; pat++) {
        int out = 0;
        for (j = 0; j < 8; j++) out |= (pat >> j & 1) << TO[j];
        PAT_ORDER[pat] = (uint8_t)out;
    }
    for (pat = 0; pat < 256; pat++) {
        const int w_nw = pat & 1, w_n = pat >> 1 & 1, w_ne = pat >> 2 & 1;
        const int n_nw = pat >> 4 & 1, n_ne = pat >> 5 & 1, nw_ne = pat >> 6 & 1;
        int c = 0;
        CAND_OFF[pat][c++] = 0; /* W: not read */
        if (!w_n) CAND_OFF[pat][c++] = 0;
        if (!w_ne && !n_ne) CAND_OFF[pat][c++] = 1;
        if (!w_nw && !n_nw && !nw_ne) CAND_OFF[pat][c++] = -1;
        CAND_M[pat] = (uint8_t)c;
    }
}

/* A slot's first COUNT_MAX updates: count it, and list it for the next reset on its first. */
static NOINLINE unsigned slot_count(Model *m, Slot *s, uint32_t c) {
    if (c == 0) {
        const uint64_t n = m->head->ntouched;
        if (n < m->nslots) {
            m->touched[n] = (uint32_t)(s - m->flags);
            m->head->ntouched = n + 1;
        }
    }
    s->c = (uint16_t)(c + 1);
    return RATE[c];
}

/* decode_p's renormalisation on the locals range, code and ip, without the end-of-stream test: after
 * a bit range >= 2^9, so two shifts at most. */
#define RENORM()                                                                            \
    do {                                                                                    \
        if (range < RC_TOP) {                                                               \
            range <<= 8;                                                                    \
            code = (code << 8) | *ip++;                                                     \
            if (range < RC_TOP) {                                                           \
                range <<= 8;                                                                \
                code = (code << 8) | *ip++;                                                 \
            }                                                                               \
        }                                                                                   \
    } while (0)

/* decode_p and slot_update on the locals range, code and ip, without the end-of-stream test. */
#define FAST_BIT(slot, bit)                                                                 \
    do {                                                                                    \
        Slot *const s_ = (slot);                                                            \
        const uint32_t p_ = s_->p, c_ = s_->c, bound_ = (range >> 15) * p_;                 \
        unsigned r_ = 6;                                                                    \
        if (UNLIKELY(c_ < COUNT_MAX)) r_ = slot_count(m, s_, c_);                           \
        if (code < bound_) {                                                                \
            range = bound_;                                                                 \
            s_->p = (uint16_t)(p_ + ((PROB_ONE - p_) >> r_));                               \
            (bit) = 0;                                                                      \
        } else {                                                                            \
            code -= bound_;                                                                 \
            range -= bound_;                                                                \
            s_->p = (uint16_t)(p_ - (p_ >> r_));                                            \
            (bit) = 1;                                                                      \
        }                                                                                   \
        RENORM();                                                                           \
    } while (0)

/* FAST_BIT without a branch on the bit, for the escape tree's bits, which are close to coin tosses
 * (a mispredicted branch on each would cost more than the arithmetic of both outcomes). */
#define FAST_BIT_FLAT(slot, bit)                                                            \
    do {                                                                                    \
        Slot *const s_ = (slot);                                                            \
        const uint32_t p_ = s_->p, c_ = s_->c, bound_ = (range >> 15) * p_;                 \
        unsigned r_ = 6;                                                                    \
        uint32_t one_;                                                                      \
        if (UNLIKELY(c_ < COUNT_MAX)) r_ = slot_count(m, s_, c_);                           \
        (bit) = code >= bound_;                                                             \
        one_ = 0u - (uint32_t)(bit); /* all ones for a 1 */                                 \
        code -= bound_ & one_;                                                              \
        range = (bound_ & ~one_) | ((range - bound_) & one_);                               \
        s_->p = (uint16_t)(((p_ - (p_ >> r_)) & one_) | ((p_ + ((PROB_ONE - p_) >> r_)) & ~one_));  \
        RENORM();                                                                           \
    } while (0)

/* The row above's part of each pixel's context, for columns 1..W-2: pat's bits 4..7 << 8 | N, from
 * byte compares the compiler vectorises. A pixel's context is flat (pat = 0xFF) exactly where
 * uc[x] = 0xF000 | W and WW = W; uc[W-1] = 0 matches no W, which ends every run before the last column. */
static void row_context(uint16_t *uc, const uint8_t *up, const uint8_t *up2, size_t width) {
    size_t x;
    for (x = 1; x + 1 < width; x++) {
        const uint8_t n = up[x], nw = up[x - 1], ne = up[x + 1], nn = up2[x];
        const uint8_t bits =
            (uint8_t)((n == nw ? 0x10 : 0) | (n == ne ? 0x20 : 0) | (nw == ne ? 0x40 : 0) | (nn == n ? 0x80 : 0));
        uc[x] = (uint16_t)(bits << 8 | n);
    }
    uc[width - 1] = 0;
}

/* Columns 2..W-2 of row y >= 2 (the body of decode_interior; small is a constant there).
 *
 * Run mode: where the context is flat (W, WW, N, NW, NE and NN all one label: pat = 0xFF) and
 * its slot has stopped counting (rate 6 from then on), the next pixel's context is flat too as
 * long as the row above stays flat with W's label (uc[x] = 0xF000 | W) and the pixels decode
 * as W, so they share one slot: its probability stays in a register while the run lasts and each
 * pixel costs one bit's arithmetic and a load: 9.1 of the 11.9 million pixels of the 12 MP photo
 * (BENCHMARKS.md) at K = 8. */
static ALWAYS_INLINE int interior(StripeDecoder *d, Model *m, uint8_t *dst, const uint8_t *up, const uint8_t *up2,
                                  const uint16_t *uc, size_t width, size_t y, size_t *fail_x, const int small) {
    Slot *const flags = m->flags;
    const uint8_t *ip = d->rc.in + d->rc.pos;
    /* ip > safe_end: fewer than FAST_MARGIN bytes left (always, in a stream that short: ip >= in + 5) */
    const uint8_t *const safe_end = d->rc.in + (d->rc.len >= FAST_MARGIN ? d->rc.len - FAST_MARGIN : 0);
    const int k = m->k, bits = m->bits;
    const size_t wmul = small ? (size_t)(k + 1) * 256 : 0;
    uint32_t code = d->rc.code, range = d->rc.range;
    size_t x = 2;
    unsigned ww = dst[0], w = dst[1];
    Slot *fw = flags + 4 * (w * wmul); /* W's part of the slot index, where K <= SMALL_K */
    while (x + 1 < width) {
        unsigned value, bit, pat;
        Slot *s;
        if (UNLIKELY(ip > safe_end)) { /* near the end: the checked path */
            int status;
            d->rc.code = code, d->rc.range = range, d->rc.pos = (size_t)(ip - d->rc.in);
            status = decode_pixel(d, m, dst, up, up2, width, x, y);
            code = d->rc.code, range = d->rc.range, ip = d->rc.in + d->rc.pos;
            if (status != DEC_OK) {
                *fail_x = x;
                return status;
            }
            value = dst[x];
            fw = flags + 4 * (value * wmul);
            goto next;
        }
        {
            const unsigned u = uc[x], nw = up[x - 1], ne = up[x + 1];
            /* N is u & 0xFF; compares rather than arithmetic keep W's path to the slot short */
            pat = (u >> 8) | (unsigned)(w == nw) | (unsigned)(w == (u & 0xFFu)) << 1 | (unsigned)(w == ne) << 2 |
                  (unsigned)(ww == w) << 3;
            s = small ? fw + 4 * (((u & 0xFFu) << 8) + pat) : flags + 4 * pat;
        }
        if (pat == 0xFFu && s->c == COUNT_MAX) { /* run mode */
            uint32_t p = s->p, bound;
            for (;;) {
                bound = (range >> 15) * p;
                if (code < bound) break;
                code -= bound;
                range -= bound;
                p -= p >> 6;
                RENORM();
                dst[x++] = (uint8_t)w;
                if (uc[x] != (0xF000u | w) || ip > safe_end) {
                    s->p = (uint16_t)p;
                    ww = w;
                    goto run_ended;
                }
            }
            range = bound; /* a 0: not W, at pixel x; its list is W alone */
            p += (PROB_ONE - p) >> 6;
            RENORM();
            s->p = (uint16_t)p;
            ww = w;
            bit = 0;
        } else {
            FAST_BIT(s, bit);
        }
        if (LIKELY(bit)) {
            value = w;
        } else {
            const int mm = CAND_M[pat];
            int i;
            for (i = 1; i < mm; i++) {
                FAST_BIT(s + i, bit);
                if (bit) break;
            }
            if (i < mm) {
                value = (up + x)[CAND_OFF[pat][i]];
            } else {
                Slot *const t0 = m->tree + ((size_t)w << bits);
                size_t node = 1;
                int b;
                for (b = 0; b < bits; b++) {
                    FAST_BIT_FLAT(t0 + node, bit);
                    node = 2 * node + bit;
                }
                value = (unsigned)(node - ((size_t)1 << bits));
                if ((int)value >= k || value == w || (mm > 1 && value == (up + x)[CAND_OFF[pat][1]]) ||
                    (mm > 2 && value == (up + x)[CAND_OFF[pat][2]]) ||
                    (mm > 3 && value == (up + x)[CAND_OFF[pat][3]])) {
                    d->rc.code = code, d->rc.range = range, d->rc.pos = (size_t)(ip - d->rc.in);
                    *fail_x = x;
                    return (int)value >= k ? DEC_LABEL_K : DEC_LABEL_IN_L;
                }
            }
            fw = flags + 4 * (value * wmul);
        }
        dst[x] = (uint8_t)value;
    next:
        ww = w;
        w = value;
        x++;
    run_ended:;
    }
    d->rc.code = code, d->rc.range = range, d->rc.pos = (size_t)(ip - d->rc.in);
    return DEC_OK;
}

/* Columns 2..W-2 of row y >= 2. Returns DEC_OK, or a status with *fail_x set. */
static NOINLINE int decode_interior(StripeDecoder *d, Model *m, uint8_t *dst, const uint8_t *up, const uint8_t *up2,
                                    const uint16_t *uc, size_t width, size_t y, size_t *fail_x) {
    if (m->small) return interior(d, m, dst, up, up2, uc, width, y, fail_x, 1);
    return interior(d, m, dst, up, up2, uc, width, y, fail_x, 0);
}

/* ---- palette expansion -------------------------------------------------------------------- */

/* A palette of C = 3 or 4 channels as one 32-bit word per label, in memory order, so that a
 * pixel is one 4-byte store (labels >= K, which a valid plane does not hold, get zero bytes, or
 * for K <= 16 another entry's). For K <= 16, pair
 * holds the two pixels of every pair of labels (index: first | second << 4) in 2 * C bytes, so
 * that two pixels are one 8-byte store. */
typedef struct {
    uint32_t entry[256];
    uint64_t pair[256];
    int channels, pairs;
} Colours;

static void colours_init(Colours *c, const uint8_t *palette, int k, int channels) {
    int i;
    memset(c->entry, 0, sizeof c->entry);
    for (i = 0; i < k; i++) memcpy(&c->entry[i], palette + (size_t)i * (size_t)channels, (size_t)channels);
    c->channels = channels;
    c->pairs = k <= 16;
    if (c->pairs)
        for (i = 0; i < 256; i++) {
            uint8_t two[8] = {0};
            memcpy(two, &c->entry[i & 15], (size_t)channels);
            memcpy(two + channels, &c->entry[i >> 4], (size_t)channels);
            memcpy(&c->pair[i], two, 8);
        }
}

/* out[x * C .. x * C + C) = the colour of labels[x], for n >= 1 labels. A store may write past its
 * pixels into the next ones, which later stores overwrite; the last pixel is stored in C bytes. */
static void expand_row(uint8_t *out, const uint8_t *labels, size_t n, const Colours *c) {
    const size_t ch = (size_t)c->channels;
    size_t x = 0;
    if (c->pairs) /* labels < 16: two per lookup; stops while a whole 8-byte store still fits */
        for (; x + 3 <= n; x += 2) memcpy(out + ch * x, &c->pair[labels[x] | (labels[x + 1] & 15) << 4], 8);
    for (; x + 1 < n; x++) memcpy(out + ch * x, &c->entry[labels[x]], 4);
    memcpy(out + ch * (n - 1), &c->entry[labels[n - 1]], ch);
}

/* On failure, *fail_x and *fail_y give the pixel at which decoding stopped. Before each row the
 * decoder reads *stop, the lowest stripe that has failed so far (another thread may lower it), and
 * gives up with DEC_CANCELLED when that is below index: kmq reports the first bad stripe, so work on
 * a later one is wasted. rows is 3 * width bytes of scratch, uc width uint16s. */
static int decode_stripe(StripeDecoder *d, uint8_t *labels, size_t width, size_t height, Model *m, uint8_t *rows,
                         uint16_t *uc, const volatile int32_t *stop, int32_t index, size_t *fail_x, size_t *fail_y) {
    size_t x, y;
    int status;
    *fail_x = 0;
    *fail_y = 0;
    d->status = decoder_start(&d->rc);
    if (d->status != DEC_OK) return d->status;
    for (y = 0; y < height; y++) {
        uint8_t *dst = rows + (y % 3) * width;
        const uint8_t *up = rows + ((y + 2) % 3) * width, *up2 = rows + ((y + 1) % 3) * width;
        if (stop != NULL && *stop < index) {
            *fail_y = y;
            return DEC_CANCELLED;
        }
        *fail_y = y;
        if (y >= 2 && width >= 4) {
            row_context(uc, up, up2, width);
            for (x = 0; x < 2; x++)
                if ((status = decode_pixel(d, m, dst, up, up2, width, x, y)) != DEC_OK) goto fail;
            if ((status = decode_interior(d, m, dst, up, up2, uc, width, y, fail_x)) != DEC_OK) return status;
            x = width - 1;
            if ((status = decode_pixel(d, m, dst, up, up2, width, x, y)) != DEC_OK) goto fail;
        } else {
            for (x = 0; x < width; x++)
                if ((status = decode_pixel(d, m, dst, up, up2, width, x, y)) != DEC_OK) goto fail;
        }
        memcpy(labels + y * width, dst, width);
    }
    *fail_y = 0;
    return decoder_end(&d->rc);
fail:
    *fail_x = x;
    return status;
}

/* ---- Python bindings ---------------------------------------------------------------------- */

#define MODEL_CAPSULE "kmq._ctx1.model"

static void model_capsule_free(PyObject *capsule) { free(PyCapsule_GetPointer(capsule, MODEL_CAPSULE)); }

/* The memory of a model made by new_model(k), or NULL (and no error) for None. */
static int model_memory(PyObject *obj, Py_ssize_t k, void **mem) {
    *mem = NULL;
    if (obj == NULL || obj == Py_None) return 0;
    if (!PyCapsule_IsValid(obj, MODEL_CAPSULE)) {
        PyErr_SetString(PyExc_TypeError, "model must be None or made by new_model(k)");
        return -1;
    }
    *mem = PyCapsule_GetPointer(obj, MODEL_CAPSULE);
    if (((ModelHead *)*mem)->capacity != (uint32_t)k) {
        PyErr_Format(PyExc_ValueError, "model was made for k=%u, not k=%zd", ((ModelHead *)*mem)->capacity, k);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(new_model_doc,
             "new_model(k) -> model\n\n"
             "Memory for the model of palette size k, for encode and decode to reuse\n"
             "from one stripe to the next: each call resets only the slots the previous\n"
             "one used. Use a model from one thread at a time.");

static PyObject *py_new_model(PyObject *self, PyObject *arg) {
    Py_ssize_t k = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    ModelHead *head;
    PyObject *capsule;
    (void)self;
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k < 2 || k > 256) {
        PyErr_Format(PyExc_ValueError, "k %zd not in 2..256", k);
        return NULL;
    }
    head = (ModelHead *)malloc(model_bytes((int)k));
    if (head == NULL) return PyErr_NoMemory();
    head->k = 0;
    head->capacity = (uint32_t)k;
    head->ntouched = 0;
    capsule = PyCapsule_New(head, MODEL_CAPSULE, model_capsule_free);
    if (capsule == NULL) free(head);
    return capsule;
}

PyDoc_STRVAR(encode_doc,
             "encode(labels, width, height, k, limit, model=None) -> bytes | None\n\n"
             "Code one stripe: ``labels`` is a C-contiguous buffer of width * height\n"
             "uint8 labels, all < k (else ValueError, args (message, label, x, y) of\n"
             "the first that is not). Returns\n"
             "None when the stream would exceed ``limit`` bytes. Each label is read\n"
             "once, so the buffer may change meanwhile without harm to the coder.");

static PyObject *py_encode(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t width, height, k, limit;
    PyObject *model_obj = NULL;
    Model m = {0};
    Encoder e = {0};
    uint8_t *rows = NULL;
    void *mem = NULL;
    int rc = 0, bad_value = 0, have_model = 0;
    size_t bad_x = 0, bad_y = 0;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnn|O", &buf, &width, &height, &k, &limit, &model_obj)) return NULL;
    if (check_geometry(k, width, height) < 0) goto done;
    if (buf.len != width * height) {
        PyErr_Format(PyExc_ValueError, "labels are %zd bytes, not %zd x %zd", buf.len, width, height);
        goto done;
    }
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        goto done;
    }
    if (model_memory(model_obj, k, &mem) < 0) goto done;
    rows = (uint8_t *)malloc(3 * (size_t)width);
    if (encoder_init(&e, (size_t)limit, (size_t)(buf.len / 4 + 64)) < 0 || rows == NULL ||
        model_init(&m, (int)k, mem) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    have_model = 1;
    Py_BEGIN_ALLOW_THREADS;
    rc = encode_stripe((const uint8_t *)buf.buf, (size_t)width, (size_t)height, &m, &e, rows, &bad_value, &bad_x,
                       &bad_y);
    Py_END_ALLOW_THREADS;
    if (rc == -2)
        set_bad_label(bad_value, k, bad_x, bad_y);
    else if (e.nomem)
        PyErr_NoMemory();
    else
        result = rc < 0 ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize((const char *)e.out, (Py_ssize_t)e.pos);
done:
    if (have_model) model_done(&m);
    free(rows);
    free(e.out);
    PyBuffer_Release(&buf);
    return result;
}

PyDoc_STRVAR(decode_doc,
             "decode(data, width, height, k, out, model=None, stop=None, index=0) -> (status, x, y, detail)\n\n"
             "Decode one stripe into ``out``, a writable C-contiguous buffer of\n"
             "width * height bytes. status 0 means the stream is valid; any other\n"
             "value names the first rule it breaks (codec/ctx1.py has the list),\n"
             "at pixel (x, y) of the stripe; detail is the first byte for status 2\n"
             "and the bytes left over for status 7. ``stop`` is a writable buffer\n"
             "whose first 4 bytes are a native int32: when it is below ``index`` at\n"
             "the start of a row, decoding stops with status 9 at that row.");

/* The palette argument of expand: K * C bytes, C = 3 or 4. 0, or -1 with an error set. */
static int read_colours(PyObject *obj, Py_ssize_t k, Colours *colours) {
    Py_buffer pal;
    int status = 0;
    if (PyObject_GetBuffer(obj, &pal, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (pal.len != 3 * k && pal.len != 4 * k) {
        PyErr_Format(PyExc_ValueError, "palette is %zd bytes, not %zd x 3 or %zd x 4", pal.len, k, k);
        status = -1;
    } else {
        colours_init(colours, (const uint8_t *)pal.buf, (int)k, (int)(pal.len / k));
    }
    PyBuffer_Release(&pal);
    return status;
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    Py_buffer in, out, stopbuf = {0};
    Py_ssize_t width, height, k, index = 0, detail = 0;
    PyObject *model_obj = NULL, *stopobj = NULL, *result = NULL;
    Model m = {0};
    StripeDecoder d = {0};
    uint8_t *rows = NULL;
    uint16_t *uc = NULL;
    void *mem = NULL;
    const volatile int32_t *stop = NULL;
    int status = DEC_OK, have_model = 0;
    size_t fx = 0, fy = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnw*|OOn", &in, &width, &height, &k, &out, &model_obj, &stopobj, &index))
        return NULL;
    if (check_geometry(k, width, height) < 0) goto done;
    if (check_decode_args(&out, width, height, index, stopobj, &stopbuf, &stop) < 0) goto done;
    if (model_memory(model_obj, k, &mem) < 0) goto done;
    rows = (uint8_t *)malloc(3 * (size_t)width);
    uc = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)width);
    if (rows == NULL || uc == NULL || model_init(&m, (int)k, mem) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    have_model = 1;
    d.rc.in = (const uint8_t *)in.buf;
    d.rc.len = (size_t)in.len;
    Py_BEGIN_ALLOW_THREADS;
    status = decode_stripe(&d, (uint8_t *)out.buf, (size_t)width, (size_t)height, &m, rows, uc, stop,
                           (int32_t)index, &fx, &fy);
    Py_END_ALLOW_THREADS;
    detail = decoder_detail(&d.rc, status);
    result = Py_BuildValue("innn", status, (Py_ssize_t)fx, (Py_ssize_t)fy, detail);
done:
    if (have_model) model_done(&m);
    free(rows);
    free(uc);
    if (stop != NULL) PyBuffer_Release(&stopbuf);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(expand_doc,
             "expand(labels, k, palette, out) -> None\n\n"
             "Palette expansion without the GIL: ``palette`` is k * C bytes (C = 3 or\n"
             "4 channels per entry) and ``out``, a writable C-contiguous buffer of\n"
             "len(labels) * C bytes, gets the colour of each label. Every label must\n"
             "be < k: the bytes of one that is not are unspecified (but nothing\n"
             "outside ``out`` is written).");

static PyObject *py_expand(PyObject *self, PyObject *args) {
    Py_buffer labels, out;
    Py_ssize_t k;
    PyObject *palette_obj, *result = NULL;
    Colours colours;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nOw*", &labels, &k, &palette_obj, &out)) return NULL;
    if (k < 1 || k > 256) {
        PyErr_Format(PyExc_ValueError, "k %zd not in 1..256", k);
        goto done;
    }
    if (read_colours(palette_obj, k, &colours) < 0) goto done;
    if (labels.len > PY_SSIZE_T_MAX / colours.channels || out.len != labels.len * colours.channels) {
        PyErr_Format(PyExc_ValueError, "output is %zd bytes, not %zd x %d", out.len, labels.len, colours.channels);
        goto done;
    }
    if (labels.len > 0) {
        Py_BEGIN_ALLOW_THREADS;
        expand_row((uint8_t *)out.buf, (const uint8_t *)labels.buf, (size_t)labels.len, &colours);
        Py_END_ALLOW_THREADS;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&labels);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"new_model", py_new_model, METH_O, new_model_doc},
    {"encode", py_encode, METH_VARARGS, encode_doc},
    {"decode", py_decode, METH_VARARGS, decode_doc},
    {"expand", py_expand, METH_VARARGS, expand_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kmq._ctx1", "Payload coding 1 (ctx1) of spec/FORMAT.md, one stripe at a time.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__ctx1(void) {
    cand_init();
    return PyModule_Create(&module);
}
