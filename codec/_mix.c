/*
 * kmq._mix: payload coding 2 ("mix") of the kmq format, one stripe at a time.
 *
 * spec/FORMAT.md section 11 is the definition; this file follows it step by step and its
 * names match the spec's. codec/mix.py lays out the stripes (the same stripe table as
 * coding 1) and runs them on threads; this file codes one stripe without the GIL.
 *
 * Each label is a few binary decisions ("is it W? N? NE? NW? the label the match model
 * predicts?"), then, if none, its bits down a binary tree under the labels of W and N. Every
 * decision is predicted by several adaptive context slots, mixed in the logistic domain by integer
 * weights (lpaq's mixer), and coded by LZMA's range coder. Everything is integer arithmetic, so
 * every machine writes and reads the same bytes.
 */
#include "_coder.h"

#define MAXC 5          /* candidates: W, N, NE, NW and the match model's label */
#define NFLAG_IN 6      /* flag inputs besides the bias */
#define NESC_IN 5       /* escape inputs besides the bias */
#define LIMIT_TREE 30   /* slot count limits (section 11.3) */
#define LIMIT_FAST 60
#define LIMIT_SLOW 250
#define W_INIT 22000    /* initial mixer weight, 16.16 fixed point */
#define W_MAX (1 << 22)
#define LR_FLAG 11      /* mixer learning shifts */
#define LR_ESC 10
#define HASH_MUL 0x9E3779B1u

/* Section 11.2: lpaq1's squash, its inverse stretch and the count reciprocals. */
static const int SQ[33] = {1,    2,    3,    6,    10,   16,   27,   45,   73,   120,  194,
                           310,  488,  747,  1101, 1546, 2047, 2549, 2994, 3348, 3607, 3785,
                           3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094};
static int16_t STRETCH[4096];
static uint32_t RECIP[LIMIT_SLOW + 1];

static int squash(int d) {
    if (d > 2047) d = 2047;
    if (d < -2047) d = -2047;
    const int w = d & 127, i = (d >> 7) + 16; /* floor division: d >> 7 is arithmetic */
    return (SQ[i] * (128 - w) + SQ[i + 1] * w + 64) >> 7;
}

static void init_tables(void) {
    int pi = 0, x, j;
    for (x = -2047; x <= 2047; x++) {
        const int v = squash(x);
        for (j = pi; j <= v; j++) STRETCH[j] = (int16_t)x;
        pi = v + 1;
    }
    for (j = pi; j < 4096; j++) STRETCH[j] = 2047;
    for (j = 0; j <= LIMIT_SLOW; j++) RECIP[j] = 131072u / (2u * (uint32_t)j + 3u);
}

/* A slot: p, the probability that the next bit is 1 in units of 2^-16, stored XOR 0x8000 so
 * that zeroed memory is the initial state p = 32768 (calloc gives fresh tables for free);
 * n, the updates so far, up to the table's limit. */
typedef struct {
    uint16_t q, n;
} Slot;

static inline unsigned slot_p(const Slot *s) { return (unsigned)s->q ^ 0x8000u; }

static inline void slot_update(Slot *s, unsigned bit, unsigned limit) {
    uint32_t p = slot_p(s), r = RECIP[s->n];
    if (bit)
        p += ((65536u - p) * r) >> 16;
    else
        p -= (p * r) >> 16;
    s->q = (uint16_t)(p ^ 0x8000u);
    if (s->n < limit) s->n++;
}

static inline uint32_t hash_step(uint32_t h, uint32_t v) {
    h = (h ^ v) * HASH_MUL;
    return h ^ (h >> 15);
}

static inline int bit_length(uint32_t v) {
    int b = 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}

/* ---- the model ---------------------------------------------------------------------------- */

#define T1_SIZE (3 * 256 * 8)
#define TM_SIZE (16 * 2 * 8)
#define FLAG_SETS (3 * 5 * 4 * 4)
#define ESC_SETS 8

typedef struct {
    int k, channels, hb;
    size_t width, rows;
    int bits;                /* ceil(log2 K): the escape tree's depth */
    Slot *t1, *tm, *tw, *tn; /* direct tables */
    Slot *t2, *t3, *t4, *t5, *te; /* hashed tables, 2^hb slots each */
    uint32_t *mt;            /* match table: position + 1, 0 = empty */
    int32_t *wf, *we;        /* mixer weights */
    uint32_t *dist;          /* (K + 1)^2 squared colour distances; absent (K) rows and columns 0 */
    uint8_t *buf;            /* the stripe's labels so far */
    void *block;
} Model;

/* Hashed tables: 2^hb slots with hb = min(20, max(12, bit_length(pixels) + 1)), so a small
 * stripe's fresh model costs in proportion to its pixels. */
static int hash_bits(size_t pixels) {
    int b = bit_length(pixels > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)pixels) + 1;
    return b < 12 ? 12 : b > 20 ? 20 : b;
}

static void model_free(Model *m) {
    free(m->block);
    free(m->mt);
    free(m->buf);
    free(m->wf);
    free(m->we);
    free(m->dist);
}

/* The squared colour distances of section 11.5, step 2. */
static void build_distances(Model *m, const uint8_t *palette) {
    const int k = m->k, c = m->channels, k1 = k + 1;
    int p, j, a;
    for (p = 0; p < k; p++)
        for (j = 0; j < k; j++) {
            uint32_t s = 0;
            for (a = 0; a < c; a++) {
                const int t = (int)palette[p * c + a] - (int)palette[j * c + a];
                s += (uint32_t)(t * t);
            }
            m->dist[p * k1 + j] = s;
        }
}

static int model_init(Model *m, int k, int channels, const uint8_t *palette, size_t width, size_t rows) {
    size_t hs, tree, i;
    memset(m, 0, sizeof *m);
    m->k = k;
    m->channels = channels;
    m->width = width;
    m->rows = rows;
    m->hb = hash_bits(width * rows);
    hs = (size_t)1 << m->hb;
    m->bits = bit_length((uint32_t)(k - 1));
    tree = (size_t)(k + 1) << m->bits;
    m->block = calloc(T1_SIZE + TM_SIZE + 2 * tree + 5 * hs, sizeof(Slot));
    m->mt = (uint32_t *)calloc(hs, sizeof(uint32_t));
    m->buf = (uint8_t *)malloc(width * rows);
    m->wf = (int32_t *)malloc(sizeof(int32_t) * FLAG_SETS * (NFLAG_IN + 1));
    m->we = (int32_t *)malloc(sizeof(int32_t) * ESC_SETS * (NESC_IN + 1));
    m->dist = (uint32_t *)calloc((size_t)(k + 1) * (k + 1), sizeof(uint32_t));
    if (!m->block || !m->mt || !m->buf || !m->wf || !m->we || !m->dist) {
        model_free(m);
        return -1;
    }
    m->t1 = (Slot *)m->block;
    m->tm = m->t1 + T1_SIZE;
    m->tw = m->tm + TM_SIZE;
    m->tn = m->tw + tree;
    m->t2 = m->tn + tree;
    m->t3 = m->t2 + hs;
    m->t4 = m->t3 + hs;
    m->t5 = m->t4 + hs;
    m->te = m->t5 + hs;
    for (i = 0; i < FLAG_SETS * (NFLAG_IN + 1); i++) m->wf[i] = W_INIT;
    for (i = 0; i < ESC_SETS * (NESC_IN + 1); i++) m->we[i] = W_INIT;
    build_distances(m, palette);
    return 0;
}

/* ---- the range coder: LZMA's, as in coding 1 (_coder.h) ---------------------------------- */

/* One stripe's coder: the encoder's state, or the decoder's when dec is set. */
typedef struct {
    Encoder enc;
    Decoder dec;
} Coder;

/* Code (or, with dec, decode) one bit whose probability of being 1 is p1 / 4096. */
static inline unsigned code_bit(Coder *e, const int dec, int p1, unsigned bit) {
    const uint32_t p0 = (uint32_t)(4096 - p1) << 3;
    if (dec) return decode_p(&e->dec, p0);
    encode_p(&e->enc, p0, bit);
    return bit;
}

/* Section 11.4: mix the inputs' stretched probabilities with weight set w, code the bit,
 * then train the weights on the error and update the slots. */
static inline unsigned mix_bit(Coder *e, const int dec, int32_t *w, Slot *const *s, const unsigned *limit, int n,
                               int lr, unsigned bit) {
    int st[NFLAG_IN + 1], i, p, err;
    int64_t dot = 0;
    for (i = 0; i < n; i++) {
        st[i] = STRETCH[slot_p(s[i]) >> 4];
        dot += (int64_t)st[i] * w[i];
    }
    st[n] = 256;
    dot += (int64_t)256 * w[n];
    p = squash((int)(dot >> 16));
    if (p < 1) p = 1;
    if (p > 4095) p = 4095;
    bit = code_bit(e, dec, p, bit);
    err = (int)(bit << 12) - p;
    for (i = 0; i <= n; i++) {
        int32_t v = w[i] + ((st[i] * err) >> lr);
        w[i] = v > W_MAX ? W_MAX : v < -W_MAX ? -W_MAX : v;
    }
    for (i = 0; i < n; i++) slot_update(s[i], bit, limit[i]);
    return bit;
}

enum {
    ST_OK = RC_OK,
    ST_EARLY_END = RC_EARLY_END,
    ST_CANCELLED = 9,
    ST_LABEL_K = 5,    /* an escaped label >= K */
    ST_LABEL_IN_L = 6, /* an escaped label that is one of the candidates */
    ST_BAD_LABEL = 11 /* encoder: a label >= K */
};

typedef struct {
    int w, ww, www, n, nw, nww, ne, nee, nn, nnw, nnww, nne, nnee;
} Around;

static inline void around(const Model *m, size_t x, size_t y, Around *a) {
    const int A = m->k;
    const size_t W = m->width, pos = y * W + x;
    const uint8_t *b = m->buf;
    a->w = x >= 1 ? b[pos - 1] : A;
    a->ww = x >= 2 ? b[pos - 2] : A;
    a->www = x >= 3 ? b[pos - 3] : A;
    a->n = a->nw = a->ne = a->nn = a->nne = a->nww = a->nee = a->nnw = a->nnww = a->nnee = A;
    if (y >= 1) {
        a->n = b[pos - W];
        if (x >= 1) a->nw = b[pos - W - 1];
        if (x >= 2) a->nww = b[pos - W - 2];
        if (x + 1 < W) a->ne = b[pos - W + 1];
        if (x + 2 < W) a->nee = b[pos - W + 2];
        if (y >= 2) {
            a->nn = b[pos - 2 * W];
            if (x >= 1) a->nnw = b[pos - 2 * W - 1];
            if (x >= 2) a->nnww = b[pos - 2 * W - 2];
            if (x + 1 < W) a->nne = b[pos - 2 * W + 1];
            if (x + 2 < W) a->nnee = b[pos - 2 * W + 2];
        }
    }
}

#define HB(h) ((h) >> (32 - m->hb))

/* A pixel's neighbourhood and the hashes of section 11.5 (steps 3 and 4) made from it. */
typedef struct {
    Around a;
    uint32_t mi, h2, h3, h4, h5;
} Hashes;
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif
/* a bucket of 8 neighbouring slots: one cache line for the decisions of one context */
#define HB8(h, i) ((((h) >> (35 - m->hb)) << 3) + (size_t)(i))
/* How many pixels ahead the encoder starts a pixel's table reads (the decoder can only do one). */
#define LOOKAHEAD 6

/* Code (or decode) the stripe: with dec, labels is written; else read. Returns a status. */
/* The neighbourhood and hashes of pixel (x, y), once its left neighbour is known, with the reads
 * of the tables they select started (each likely a cache miss in tables of megabytes): the coder
 * calls this as soon as a pixel is done, so the reads for the next one overlap its bookkeeping. */
static inline void hashes(const Model *m, size_t x, size_t y, Hashes *h) {
    const Around *a = &h->a;
    uint32_t hm;
    around(m, x, y, &h->a);
    hm = hash_step(hash_step(hash_step(hash_step(hash_step(9, (uint32_t)a->w), (uint32_t)a->n), (uint32_t)a->nw),
                             (uint32_t)a->ne),
                   (uint32_t)a->ww);
    hm = hash_step(hash_step(hash_step(hash_step(hm, (uint32_t)a->nn), (uint32_t)a->nne), (uint32_t)a->nww),
                   (uint32_t)a->nee);
    h->mi = HB(hm);
    h->h2 = hash_step(hash_step(2, (uint32_t)a->w), (uint32_t)a->n);
    h->h3 = hash_step(hash_step(hash_step(hash_step(3, (uint32_t)a->w), (uint32_t)a->n), (uint32_t)a->ne),
                      (uint32_t)a->nw);
    h->h4 = hash_step(hash_step(hash_step(h->h3 ^ 4u, (uint32_t)a->ww), (uint32_t)a->nn), (uint32_t)a->nne);
    h->h5 = hash_step(hash_step(hash_step(hash_step(hash_step(hash_step(h->h4 ^ 5u, (uint32_t)a->nww), (uint32_t)a->nee),
                                                          (uint32_t)a->www),
                                                (uint32_t)a->nnw),
                                      (uint32_t)a->nnww),
                            (uint32_t)a->nnee);
    PREFETCH(&m->mt[h->mi]);
    PREFETCH(&m->t2[HB8(h->h2, 0)]);
    PREFETCH(&m->t3[HB8(h->h3, 0)]);
    PREFETCH(&m->t4[HB8(h->h4, 0)]);
    PREFETCH(&m->t5[HB8(h->h5, 0)]);
}

static inline int code_stripe(Model *m, Coder *e, const int dec, uint8_t *labels, const volatile int32_t *stop,
                              int32_t index, size_t *fail_x, size_t *fail_y) {
    const int K = m->k, A = K, K1 = K + 1;
    const size_t W = m->width;
    const uint32_t *D = m->dist;
    int active = 0, mlen = 0;
    size_t mptr = 0, x, y;
    Hashes hs;
    for (y = 0; y < m->rows; y++) {
        if (stop != NULL && *stop < index) {
            *fail_y = y;
            return ST_CANCELLED;
        }
        if (!dec)
            for (x = 0; x < W; x++)
                if (labels[y * W + x] >= K) {
                    *fail_x = x;
                    *fail_y = y;
                    return ST_BAD_LABEL;
                }
        for (x = 0; x < W; x++) {
            const size_t pos = y * W + x;
            int L[MAXC], mc = 0, i, e_label = -1, lb = 0, value = -1;
            if (x == 0) hashes(m, x, y, &hs);
            const Around a = hs.a;
            const uint32_t mi = hs.mi, h2 = hs.h2, h3 = hs.h3, h4 = hs.h4, h5 = hs.h5;
            if (active) PREFETCH(&m->buf[mptr]);
            const unsigned P = (unsigned)(a.w == a.n) | (unsigned)(a.w == a.nw) << 1 | (unsigned)(a.w == a.ne) << 2 |
                               (unsigned)(a.n == a.nw) << 3 | (unsigned)(a.n == a.ne) << 4 |
                               (unsigned)(a.nw == a.ne) << 5 | (unsigned)(a.ww == a.w) << 6 |
                               (unsigned)(a.nn == a.n) << 7;
            if (a.w != A) L[mc++] = a.w;
            if (a.n != A && a.n != a.w) L[mc++] = a.n;
            if (a.ne != A && a.ne != a.w && a.ne != a.n) L[mc++] = a.ne;
            if (a.nw != A && a.nw != a.w && a.nw != a.n && a.nw != a.ne) L[mc++] = a.nw;
            const uint32_t actv = D[a.w * K1 + a.n] + D[a.n * K1 + a.nw] + D[a.n * K1 + a.ne] +
                                  D[a.w * K1 + a.nw] + D[a.w * K1 + a.ww] + D[a.n * K1 + a.nn];
            int act = bit_length(actv >> 4);
            if (act > 15) act = 15;
            /* the match model (section 11.5, step 3): a pointer to where this neighbourhood was last seen */
            if (!active && m->mt[mi] != 0) {
                active = 1;
                mptr = m->mt[mi] - 1;
                mlen = 0;
            }
            if (active) {
                int in = 0;
                e_label = m->buf[mptr];
                lb = 1 + bit_length((uint32_t)mlen);
                if (lb > 15) lb = 15;
                for (i = 0; i < mc; i++) in |= L[i] == e_label;
                if (!in) L[mc++] = e_label;
            }
            const int truth = dec ? -1 : labels[pos];
            const int avail = K - mc;
            for (i = 0; i < mc; i++) {
                const int c = L[i], agree = c == e_label, ms = lb ? (agree ? 1 : 2) : 0;
                Slot *s[NFLAG_IN];
                static const unsigned lim[NFLAG_IN] = {LIMIT_FAST, LIMIT_SLOW, LIMIT_SLOW, LIMIT_SLOW, LIMIT_FAST, LIMIT_SLOW};
                unsigned bit;
                if (avail == 0 && i == mc - 1) { /* every label is a candidate: the last is certain */
                    value = c;
                    break;
                }
                s[0] = &m->t1[(ms * 256 + P) * 8 + i];
                s[1] = &m->t2[HB8(h2, i)];
                s[2] = &m->t3[HB8(h3, i)];
                s[3] = &m->t4[HB8(h4, i)];
                s[4] = &m->tm[(lb * 2 + agree) * 8 + i];
                s[5] = &m->t5[HB8(h5, i)];
                bit = mix_bit(e, dec, m->wf + ((((ms * 5 + i) * 4 + (mc > 4 ? 4 : mc) - 1) * 4 + (act >> 2)) * (NFLAG_IN + 1)),
                              s, lim, NFLAG_IN, LR_FLAG, dec ? 0u : (unsigned)(truth == c));
                if (bit) {
                    value = c;
                    break;
                }
            }
            if (value < 0) {
                /* the escape (section 11.6): the label's bits, most significant first, down a binary
                 * tree whose nodes are predicted under W's label, N's label and three hashed
                 * neighbourhoods */
                static const unsigned lim[NESC_IN] = {LIMIT_TREE, LIMIT_TREE, LIMIT_SLOW, LIMIT_SLOW, LIMIT_SLOW};
                const size_t wrow = (size_t)a.w << m->bits, nrow = (size_t)a.n << m->bits;
                const uint32_t g2 = hash_step(hash_step(10, (uint32_t)a.w), (uint32_t)a.n);
                const uint32_t g4 = hash_step(hash_step(hash_step(hash_step(11, (uint32_t)a.w), (uint32_t)a.n),
                                                        (uint32_t)a.ne), (uint32_t)a.nw);
                const uint32_t g1 = hash_step(12, (uint32_t)a.ne);
                int node = 1, b;
                if (!dec) /* the encoder knows the whole path down the tree: fetch it at once */
                    for (b = m->bits - 1; b > 0; b--) {
                        const uint32_t c = (uint32_t)(((1 << m->bits) | truth) >> b);
                        PREFETCH(&m->tw[wrow + c]);
                        PREFETCH(&m->tn[nrow + c]);
                        PREFETCH(&m->te[HB(hash_step(g2, c))]);
                        PREFETCH(&m->te[HB(hash_step(g4, c))]);
                        PREFETCH(&m->te[HB(hash_step(g1, c))]);
                    }
                for (b = m->bits - 1; b >= 0; b--) {
                    Slot *s[NESC_IN];
                    s[0] = &m->tw[wrow + (size_t)node];
                    s[1] = &m->tn[nrow + (size_t)node];
                    s[2] = &m->te[HB(hash_step(g2, (uint32_t)node))];
                    s[3] = &m->te[HB(hash_step(g4, (uint32_t)node))];
                    s[4] = &m->te[HB(hash_step(g1, (uint32_t)node))];
                    if (dec && b > 0) { /* both children's hashed slots: one of them is the next bit's */
                        const uint32_t c = (uint32_t)(2 * node);
                        PREFETCH(&m->te[HB(hash_step(g2, c))]);
                        PREFETCH(&m->te[HB(hash_step(g2, c + 1))]);
                        PREFETCH(&m->te[HB(hash_step(g4, c))]);
                        PREFETCH(&m->te[HB(hash_step(g4, c + 1))]);
                        PREFETCH(&m->te[HB(hash_step(g1, c))]);
                        PREFETCH(&m->te[HB(hash_step(g1, c + 1))]);
                    }
                    node = 2 * node + (int)mix_bit(e, dec, m->we + (m->bits - 1 - b) * (NESC_IN + 1), s, lim, NESC_IN,
                                                   LR_ESC, dec ? 0u : (unsigned)((truth >> b) & 1));
                }
                value = node - (1 << m->bits);
                if (dec && !e->dec.early) {
                    int status = value >= K ? ST_LABEL_K : 0;
                    for (i = 0; i < mc && !status; i++)
                        if (L[i] == value) status = ST_LABEL_IN_L;
                    if (status) {
                        *fail_x = x;
                        *fail_y = y;
                        return status;
                    }
                }
            }
            if (dec && e->dec.early) {
                *fail_x = x;
                *fail_y = y;
                return ST_EARLY_END;
            }
            m->buf[pos] = (uint8_t)value;
            if (dec) labels[pos] = (uint8_t)value;
            if (active) {
                if (value == e_label) {
                    if (mlen < 65535) mlen++;
                    mptr++;
                } else {
                    active = 0;
                    mlen = 0;
                }
            }
            if (x + 1 < W) hashes(m, x + 1, y, &hs);
            if (!dec && x + LOOKAHEAD < W) {
                /* The encoder knows every label (encode_stripe put them in buf), so it can start the
                 * table reads of a pixel several ahead; only the addresses are used, not the slots. */
                Hashes ahead;
                hashes(m, x + LOOKAHEAD, y, &ahead);
            }
            if (pos < 0xFFFFFFFFu) m->mt[mi] = (uint32_t)pos + 1;
        }
        if (!dec && e->enc.overflow) return -1;
    }
    return ST_OK;
}

static int encode_stripe(Model *m, Coder *e, const uint8_t *labels, size_t *bx, size_t *by) {
    /* Every read of buf is of a pixel already coded, whose label is the same either way; a row's
     * labels are checked (< K) before any of its pixels is coded, so the look-ahead reads valid ones. */
    memcpy(m->buf, labels, m->width * m->rows);
    const int rc = code_stripe(m, e, 0, (uint8_t *)labels, NULL, 0, bx, by);
    if (rc != ST_OK) return rc;
    encoder_finish(&e->enc);
    return e->enc.overflow ? -1 : ST_OK;
}

static int decode_stripe(Model *m, Coder *d, uint8_t *labels, const volatile int32_t *stop, int32_t index,
                         size_t *fx, size_t *fy) {
    int rc;
    *fx = 0;
    *fy = 0;
    rc = decoder_start(&d->dec);
    if (rc != RC_OK) return rc;
    rc = code_stripe(m, d, 1, labels, stop, index, fx, fy);
    return rc != ST_OK ? rc : decoder_end(&d->dec);
}

/* ---- Python bindings ---------------------------------------------------------------------- */

static int check_args(Py_ssize_t k, Py_ssize_t width, Py_ssize_t height, const Py_buffer *palette) {
    if (check_geometry(k, width, height) < 0) return -1;
    if (palette->len != 3 * k && palette->len != 4 * k) {
        PyErr_Format(PyExc_ValueError, "palette is %zd bytes, not 3 or 4 x k=%zd", palette->len, k);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(encode_doc,
             "encode(labels, width, height, k, limit, palette) -> bytes | None\n\n"
             "Code one stripe of width * height uint8 labels, all < k (else ValueError,\n"
             "args (message, label, x, y)), under the k x C bytes of ``palette``.\n"
             "Returns None when the stream would exceed ``limit`` bytes.");

static PyObject *py_encode(PyObject *self, PyObject *args) {
    Py_buffer buf, pal;
    Py_ssize_t width, height, k, limit;
    Model m;
    Coder e;
    int rc = 0, have_model = 0;
    size_t bx = 0, by = 0;
    uint8_t *copy = NULL;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnny*", &buf, &width, &height, &k, &limit, &pal)) return NULL;
    memset(&e, 0, sizeof e);
    if (check_args(k, width, height, &pal) < 0) goto done;
    if (buf.len != width * height) {
        PyErr_Format(PyExc_ValueError, "labels are %zd bytes, not %zd x %zd", buf.len, width, height);
        goto done;
    }
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        goto done;
    }
    /* a private copy: another thread changing the caller's array cannot put a label >= K under the tables */
    copy = (uint8_t *)malloc((size_t)buf.len);
    if (encoder_init(&e.enc, (size_t)limit, (size_t)(buf.len / 4 + 64)) < 0 || copy == NULL ||
        model_init(&m, (int)k, (int)(pal.len / k), (const uint8_t *)pal.buf, (size_t)width, (size_t)height) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    have_model = 1;
    memcpy(copy, buf.buf, (size_t)buf.len);
    Py_BEGIN_ALLOW_THREADS;
    rc = encode_stripe(&m, &e, copy, &bx, &by);
    Py_END_ALLOW_THREADS;
    if (rc == ST_BAD_LABEL)
        set_bad_label(copy[by * (size_t)width + bx], k, bx, by);
    else if (e.enc.nomem)
        PyErr_NoMemory();
    else
        result = rc != ST_OK ? Py_NewRef(Py_None)
                             : PyBytes_FromStringAndSize((const char *)e.enc.out, (Py_ssize_t)e.enc.pos);
done:
    if (have_model) model_free(&m);
    free(copy);
    free(e.enc.out);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&pal);
    return result;
}

PyDoc_STRVAR(decode_doc,
             "decode(data, width, height, k, palette, out, stop=None, index=0) -> (status, x, y, detail)\n\n"
             "Decode one stripe into ``out``, a writable buffer of width * height bytes.\n"
             "status 0: valid; else the first rule broken (codec/mix.py has the list) at\n"
             "pixel (x, y) of the stripe. ``stop``: as in kmq._ctx1.decode.");

static PyObject *py_decode(PyObject *self, PyObject *args) {
    Py_buffer in, pal, out, stopbuf = {0};
    Py_ssize_t width, height, k, index = 0, detail = 0;
    PyObject *stopobj = NULL, *result = NULL;
    Model m;
    Coder d;
    const volatile int32_t *stop = NULL;
    int status = ST_OK, have_model = 0;
    size_t fx = 0, fy = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnny*w*|On", &in, &width, &height, &k, &pal, &out, &stopobj, &index)) return NULL;
    memset(&d, 0, sizeof d);
    if (check_args(k, width, height, &pal) < 0) goto done;
    if (check_decode_args(&out, width, height, index, stopobj, &stopbuf, &stop) < 0) goto done;
    if (model_init(&m, (int)k, (int)(pal.len / k), (const uint8_t *)pal.buf, (size_t)width, (size_t)height) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    have_model = 1;
    d.dec.in = (const uint8_t *)in.buf;
    d.dec.len = (size_t)in.len;
    Py_BEGIN_ALLOW_THREADS;
    status = decode_stripe(&m, &d, (uint8_t *)out.buf, stop, (int32_t)index, &fx, &fy);
    Py_END_ALLOW_THREADS;
    detail = decoder_detail(&d.dec, status);
    result = Py_BuildValue("innn", status, (Py_ssize_t)fx, (Py_ssize_t)fy, detail);
done:
    if (have_model) model_free(&m);
    if (stop != NULL) PyBuffer_Release(&stopbuf);
    PyBuffer_Release(&in);
    PyBuffer_Release(&pal);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS, encode_doc},
    {"decode", py_decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kmq._mix", "Payload coding 2 (mix) of spec/FORMAT.md, one stripe at a time.", -1, methods,
};

PyMODINIT_FUNC PyInit__mix(void) {
    init_tables();
    return PyModule_Create(&module);
}
