/*
 * kmq._remap: the per-pixel loops of mapping colours to a palette.
 *
 * nearest: the nearest centre of each point, with its squared distance.
 *     The sums are float32, taken axis by axis in order, each product and sum
 *     rounded as IEEE 754 single precision (built with -ffp-contract=off: no
 *     fused multiply-add), so the result is bit for bit what kmq.kmeans's numpy
 *     route gives on every CPU; ties go to the lowest index. From SORTED_MIN_K centres
 *     most are never visited (nearest_sorted), with the same result.
 *
 * diffuse: error diffusion (Floyd-Steinberg or Sierra Lite) in serpentine
 *     order, one band of rows at a time. Each pixel's carried error is scaled by
 *     its dither-map value and clamped, the target colour is the nearest palette
 *     entry (exact, found by a search sorted on the channel sum), and the error
 *     it leaves is passed on whole, as libimagequant does. Bands are fixed in
 *     height by the caller, so the result does not depend on how many threads
 *     ran them.
 *
 * count, lookup: the colour histogram (kmq.histogram): each distinct colour with its pixel
 *     count, and a label per colour spread back to the pixels, through hash tables sized to the
 *     colours present (not 2^24 bins: a fresh 128 MB of counters made every process's first
 *     histogram 1.7 x slower than later ones).
 *
 * squared_error: the exact error sum of an indexed image against its original (kmq.metrics),
 *     without expanding the palette into a temporary image.
 *
 * All release the GIL; codec/kmeans.py (nearest), codec/dither.py (diffuse), codec/histogram.py
 * (count, lookup) and codec/metrics.py (squared_error) validate the arguments and run the threads. Why C: the error a pixel carries depends on the choice just made
 * for its neighbour, so error diffusion cannot be vectorised in numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIMS 8
#define MAX_CHANNELS 4
/* From this many centres the sorted search (nearest_sorted) beats the plain scan. */
#define SORTED_MIN_K 16

/* ---- nearest ------------------------------------------------------------------------------ */

static void nearest_rows(const float *points, size_t n, size_t d, const float *ct, size_t k, size_t stride,
                         int64_t *labels, double *dist2, float *acc) {
    for (size_t i = 0; i < n; i++) {
        const float *p = points + i * d;
        const float p0 = p[0];
        for (size_t j = 0; j < k; j++) {
            const float t = p0 - ct[j];
            acc[j] = t * t;
        }
        for (size_t a = 1; a < d; a++) {
            const float pa = p[a];
            const float *c = ct + a * stride;
            for (size_t j = 0; j < k; j++) {
                const float t = pa - c[j];
                acc[j] = acc[j] + t * t;
            }
        }
        /* numpy's argmin: the first minimum, and the first NaN wins outright */
        size_t best = 0;
        float value = acc[0];
        for (size_t j = 1; j < k && value == value; j++) {
            if (acc[j] < value || acc[j] != acc[j]) {
                value = acc[j];
                best = j;
            }
        }
        labels[i] = (int64_t)best;
        dist2[i] = (double)value;
    }
}

/* The same search with most centres never visited, for many centres: the centres are sorted by
 * their projection on the centres' principal axis, and the search walks outward from the point's
 * own projection, nearer side first. A centre whose projection is further than the best distance
 * so far cannot be nearer (|p - c| >= |(p - c) . u| for a unit u), so each side stops there. The
 * distances visited are computed exactly as nearest_rows does, and a centre is skipped only when
 * it is nearer than the best by a margin no float32 rounding can close, so the labels and
 * distances are bit for bit nearest_rows's, ties to the lowest index included. */
typedef struct {
    size_t k, d;
    const float *rows; /* k * d, row-major: centre j at rows + j * d */
    double *proj;      /* ascending */
    size_t *order;     /* centre of each sorted projection */
    double u[MAX_DIMS];
} Sorted;

static inline float distance32(const float *p, const float *c, size_t d) {
    float t = p[0] - c[0], acc = t * t;
    for (size_t a = 1; a < d; a++) {
        t = p[a] - c[a];
        acc = acc + t * t;
    }
    return acc;
}

static const double *sort_proj;
static int by_projection(const void *x, const void *y) {
    const double a = sort_proj[*(const size_t *)x], b = sort_proj[*(const size_t *)y];
    return a < b ? -1 : a > b ? 1 : (*(const size_t *)x > *(const size_t *)y) - (*(const size_t *)x < *(const size_t *)y);
}

/* The principal axis of the centres (power iteration on their covariance), projections sorted. */
static int sorted_init(Sorted *s, const float *rows, size_t k, size_t d) {
    double mean[MAX_DIMS] = {0}, cov[MAX_DIMS * MAX_DIMS] = {0};
    double *raw = (double *)malloc(k * sizeof(double));
    s->k = k;
    s->d = d;
    s->rows = rows;
    s->proj = (double *)malloc(k * sizeof(double));
    s->order = (size_t *)malloc(k * sizeof(size_t));
    if (raw == NULL || s->proj == NULL || s->order == NULL) {
        free(raw);
        return -1;
    }
    for (size_t j = 0; j < k; j++)
        for (size_t a = 0; a < d; a++) mean[a] += rows[j * d + a] / (double)k;
    for (size_t j = 0; j < k; j++)
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) cov[a * d + b] += (rows[j * d + a] - mean[a]) * (rows[j * d + b] - mean[b]);
    for (size_t a = 0; a < d; a++) s->u[a] = 1.0 / sqrt((double)d + a); /* not orthogonal to any axis */
    for (int it = 0; it < 50; it++) {
        double v[MAX_DIMS] = {0}, norm = 0.0;
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) v[a] += cov[a * d + b] * s->u[b];
        for (size_t a = 0; a < d; a++) norm += v[a] * v[a];
        if (!(norm > 0.0)) break; /* all centres equal (or not finite): any unit axis is as good */
        norm = sqrt(norm);
        for (size_t a = 0; a < d; a++) s->u[a] = v[a] / norm;
    }
    {
        double norm = 0.0;
        for (size_t a = 0; a < d; a++) norm += s->u[a] * s->u[a];
        norm = sqrt(norm);
        for (size_t a = 0; a < d; a++) s->u[a] /= norm;
    }
    for (size_t j = 0; j < k; j++) {
        double t = 0.0;
        for (size_t a = 0; a < d; a++) t += rows[j * d + a] * s->u[a];
        raw[j] = t;
        s->order[j] = j;
    }
    sort_proj = raw; /* set and used under the GIL: the caller sorts before releasing it */
    qsort(s->order, k, sizeof(size_t), by_projection);
    for (size_t j = 0; j < k; j++) s->proj[j] = raw[s->order[j]];
    free(raw);
    return 0;
}

static void sorted_free(Sorted *s) {
    free(s->proj);
    free(s->order);
}

/* Skip a centre only when its projection's gap, squared and shrunk by this factor, still exceeds the
 * best float32 distance: float32 sums of at most 8 squares are within 2^-20 of the exact value. */
#define PRUNE_MARGIN (1.0 - 1.0 / 65536.0)

static void nearest_sorted(const float *points, size_t n, const Sorted *s, int64_t *labels, double *dist2) {
    const size_t k = s->k, d = s->d;
    for (size_t i = 0; i < n; i++) {
        const float *p = points + i * d;
        double pp = 0.0;
        for (size_t a = 0; a < d; a++) pp += p[a] * s->u[a];
        size_t best = 0;
        float value = distance32(p, s->rows, d);
        if (value != value || pp != pp) { /* NaN: the plain scan and its rule (the first NaN wins) */
            for (size_t j = 1; j < k && value == value; j++) {
                const float v = distance32(p, s->rows + j * d, d);
                if (v < value || v != v) {
                    value = v;
                    best = j;
                }
            }
        } else {
            size_t lo = 0, hi = k; /* first projection >= pp */
            while (lo < hi) {
                const size_t mid = (lo + hi) / 2;
                if (s->proj[mid] < pp) lo = mid + 1;
                else hi = mid;
            }
            size_t up = lo, down = lo; /* next to visit: up, and down - 1 */
            int up_open = up < k, down_open = down > 0;
            while (up_open || down_open) {
                const double gap_up = up_open ? s->proj[up] - pp : INFINITY;
                const double gap_down = down_open ? pp - s->proj[down - 1] : INFINITY;
                const int go_up = gap_up <= gap_down;
                const double gap = go_up ? gap_up : gap_down;
                if (gap * gap * PRUNE_MARGIN > (double)value) break; /* the nearer side is done, so both are */
                const size_t j = go_up ? s->order[up++] : s->order[--down];
                const float v = distance32(p, s->rows + j * d, d);
                if (v < value || (v == value && j < best)) {
                    value = v;
                    best = j;
                }
                up_open = up < k;
                down_open = down > 0;
            }
        }
        labels[i] = (int64_t)best;
        dist2[i] = (double)value;
    }
}

PyDoc_STRVAR(nearest_doc,
             "nearest(points, n, d, centres, k, labels, dist2)\n\n"
             "points: float32 buffer (n*d); centres: float32 buffer (k*d); labels: writable int64\n"
             "buffer (n); dist2: writable float64 buffer (n). Fills labels and dist2 with the\n"
             "nearest centre of each point and its squared distance (float32 sums).");

static PyObject *py_nearest(PyObject *self, PyObject *args) {
    Py_buffer pts, cen, lab, dst;
    Py_ssize_t n, d, k;
    PyObject *result = NULL;
    float *ct = NULL, *acc = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*nw*w*", &pts, &n, &d, &cen, &k, &lab, &dst)) return NULL;
    if (n < 0 || d < 1 || d > MAX_DIMS || k < 1 || k > (1 << 16)) {
        PyErr_Format(PyExc_ValueError, "nearest: bad sizes n=%zd d=%zd k=%zd", n, d, k);
        goto done;
    }
    /* the sizes are checked against the buffers by division, so no product can overflow */
    if (pts.len % (d * (Py_ssize_t)sizeof(float)) || pts.len / (d * (Py_ssize_t)sizeof(float)) != n ||
        cen.len != k * d * (Py_ssize_t)sizeof(float) || lab.len / (Py_ssize_t)sizeof(int64_t) != n ||
        lab.len % (Py_ssize_t)sizeof(int64_t) || dst.len / (Py_ssize_t)sizeof(double) != n ||
        dst.len % (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "nearest: a buffer does not match n, d and k");
        goto done;
    }
    {
        const size_t stride = ((size_t)k + 7) & ~(size_t)7;
        ct = (float *)calloc(stride * (size_t)d, sizeof(float));
        acc = (float *)malloc(stride * sizeof(float));
        if (ct == NULL || acc == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        const float *c = (const float *)cen.buf;
        for (Py_ssize_t j = 0; j < k; j++)
            for (Py_ssize_t a = 0; a < d; a++) ct[(size_t)a * stride + (size_t)j] = c[j * d + a];
        Sorted sorted;
        int finite = 1; /* a NaN centre wins wherever it comes first: only the plain scan says where */
        for (Py_ssize_t i = 0; i < k * d; i++) finite &= isfinite(c[i]) != 0;
        if (finite && k >= SORTED_MIN_K && n >= 4 * k) {
            if (sorted_init(&sorted, c, (size_t)k, (size_t)d) < 0) {
                sorted_free(&sorted);
                PyErr_NoMemory();
                goto done;
            }
            Py_BEGIN_ALLOW_THREADS;
            nearest_sorted((const float *)pts.buf, (size_t)n, &sorted, (int64_t *)lab.buf, (double *)dst.buf);
            Py_END_ALLOW_THREADS;
            sorted_free(&sorted);
        } else {
            Py_BEGIN_ALLOW_THREADS;
            nearest_rows((const float *)pts.buf, (size_t)n, (size_t)d, ct, (size_t)k, stride, (int64_t *)lab.buf,
                         (double *)dst.buf, acc);
            Py_END_ALLOW_THREADS;
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    free(ct);
    free(acc);
    PyBuffer_Release(&pts);
    PyBuffer_Release(&cen);
    PyBuffer_Release(&lab);
    PyBuffer_Release(&dst);
    return result;
}

/* ---- diffuse ------------------------------------------------------------------------------ */

typedef struct {
    int k, c;
    const float *palette; /* k * c, in the diffusion space */
    int *order;           /* entries ascending by channel sum (then index) */
    float *sums;          /* the channel sum of order[i] */
} Palette;

/* The nearest entry to v: exact, lowest index on ties. The entries are searched outward from
 * v's channel sum; since |sum difference|^2 <= c * squared distance, an entry whose sum is
 * further than sqrt(c * best) cannot be nearer, and the search stops there on that side. */
static int nearest_entry(const Palette *p, const float *v) {
    const int c = p->c, k = p->k;
    float s = 0.0f;
    for (int a = 0; a < c; a++) s += v[a];
    int lo = 0, hi = k;
    while (lo < hi) { /* first entry whose sum is >= s */
        const int mid = (lo + hi) / 2;
        if (p->sums[mid] < s) lo = mid + 1;
        else hi = mid;
    }
    int best = -1;
    float bestd = 0.0f;
    int up = lo, down = lo - 1;
    /* the bound in exact arithmetic is gap^2 <= c * dist; the margin covers float rounding */
    const float cf = (float)c * 1.001f;
    while (up < k || down >= 0) {
        const float gu = up < k ? p->sums[up] - s : HUGE_VALF;
        const float gd = down >= 0 ? s - p->sums[down] : HUGE_VALF;
        int i;
        float gap;
        if (gu <= gd) {
            i = up++;
            gap = gu;
        } else {
            i = down--;
            gap = gd;
        }
        if (best >= 0 && gap * gap > cf * bestd + 0.01f) break; /* every entry left is at least this far */
        const int e = p->order[i];
        const float *q = p->palette + (size_t)e * (size_t)c;
        float dist = 0.0f;
        for (int a = 0; a < c; a++) {
            const float t = v[a] - q[a];
            dist += t * t;
        }
        if (best < 0 || dist < bestd || (dist == bestd && e < best)) {
            best = e;
            bestd = dist;
        }
    }
    return best;
}

typedef struct {
    const uint8_t *pixels; /* h * w * c bytes; RGBA is diffused premultiplied */
    const uint8_t *map;    /* h * w: the share of carried error a pixel takes and passes on, in 1/255 */
    const uint8_t *base;   /* h * w: each pixel's entry without dithering */
    size_t w, h;
    int c, sierra;
    float clamp;
    uint8_t *labels;
} Band;

/* One band, serpentine. err holds two rows of (w + 2) * c floats: the current and the next. */
static void diffuse_band(const Band *b, const Palette *p, float *err) {
    const size_t w = b->w, row = (w + 2) * (size_t)b->c;
    const int c = b->c;
    float *cur = err, *next = err + row;
    memset(err, 0, 2 * row * sizeof(float));
    for (size_t y = 0; y < b->h; y++) {
        const int forward = (y % 2) == 0;
        for (size_t step = 0; step < w; step++) {
            const size_t x = forward ? step : w - 1 - step;
            const size_t at = y * w + x;
            const float s = (float)b->map[at] * (1.0f / 255.0f);
            const uint8_t *px = b->pixels + at * (size_t)c;
            float v[MAX_CHANNELS], e[MAX_CHANNELS], own[MAX_CHANNELS];
            float *carried = cur + (x + 1) * (size_t)c;
            int moved = 0;
            for (int a = 0; a < c; a++) {
                float value = (float)px[a];
                if (c == 4 && a < 3) value = value * (float)px[3] * (1.0f / 255.0f);
                own[a] = value;
                float carry = carried[a] * s;
                if (carry > b->clamp) carry = b->clamp;
                if (carry < -b->clamp) carry = -b->clamp;
                moved |= carry >= 0.5f || carry <= -0.5f;
                const float t = value + carry;
                v[a] = t < 0.0f ? 0.0f : (t > 255.0f ? 255.0f : t);
            }
            /* A pixel keeps its own entry (chosen in the clustering space) unless the carried error moves
             * it to another: its dithered target's nearest entry differs from its own colour's, both
             * measured here. Comparing the target's choice with the base label directly would swap
             * entries wherever the two spaces disagree, with no error to justify it. */
            int chosen = b->base[at] < p->k ? b->base[at] : nearest_entry(p, own);
            if (moved) {
                const int target = nearest_entry(p, v);
                if (target != nearest_entry(p, own)) chosen = target;
            }
            b->labels[at] = (uint8_t)chosen;
            const float *q = p->palette + (size_t)chosen * (size_t)c;
            for (int a = 0; a < c; a++) e[a] = v[a] - q[a]; /* passed on whole, as libimagequant does */
            /* neighbours in the scan direction: ahead (same row), and behind, below, ahead on the next row */
            float *ahead = cur + (forward ? x + 2 : x) * (size_t)c;
            float *below_behind = next + (forward ? x : x + 2) * (size_t)c;
            float *below = next + (x + 1) * (size_t)c;
            float *below_ahead = next + (forward ? x + 2 : x) * (size_t)c;
            if (b->sierra) {
                for (int a = 0; a < c; a++) {
                    ahead[a] += e[a] * 0.5f;
                    below_behind[a] += e[a] * 0.25f;
                    below[a] += e[a] * 0.25f;
                }
            } else {
                for (int a = 0; a < c; a++) {
                    ahead[a] += e[a] * (7.0f / 16.0f);
                    below_behind[a] += e[a] * (3.0f / 16.0f);
                    below[a] += e[a] * (5.0f / 16.0f);
                    below_ahead[a] += e[a] * (1.0f / 16.0f);
                }
            }
        }
        float *t = cur;
        cur = next;
        next = t;
        memset(next, 0, row * sizeof(float));
    }
}

PyDoc_STRVAR(diffuse_doc,
             "diffuse(pixels, map, base, w, h, c, palette, k, kernel, clamp, labels)\n\n"
             "pixels: uint8 buffer (h*w*c), RGB or RGBA (diffused premultiplied); map: uint8 (h*w),\n"
             "the share of carried error each pixel takes, in 1/255; base: uint8 (h*w), each\n"
             "pixel's undithered entry; palette: float32 (k*c) in the diffusion space; kernel:\n"
             "0 Floyd-Steinberg, 1 Sierra Lite; clamp: largest carried error per channel; labels:\n"
             "writable uint8 buffer (h*w). One band: the caller splits the image.");

static PyObject *py_diffuse(PyObject *self, PyObject *args) {
    Py_buffer pix, map, base, pal, lab;
    Py_ssize_t w, h, c, k;
    int kernel;
    float clamp;
    PyObject *result = NULL;
    Palette p = {0};
    float *err = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*nnny*nifw*", &pix, &map, &base, &w, &h, &c, &pal, &k, &kernel, &clamp, &lab))
        return NULL;
    if (w < 1 || h < 0 || c < 1 || c > MAX_CHANNELS || k < 1 || k > 256 || (kernel != 0 && kernel != 1) ||
        !(clamp >= 0.0f)) {
        PyErr_Format(PyExc_ValueError, "diffuse: bad arguments w=%zd h=%zd c=%zd k=%zd kernel=%d", w, h, c, k, kernel);
        goto done;
    }
    /* by division, so that no product of caller-given sizes can overflow */
    if (map.len % w || map.len / w != h || base.len != map.len || lab.len != map.len || pix.len % c ||
        pix.len / c != map.len || pal.len != k * c * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "diffuse: a buffer does not match w, h, c and k");
        goto done;
    }
    p.k = (int)k;
    p.c = (int)c;
    p.palette = (const float *)pal.buf;
    p.order = (int *)malloc((size_t)k * sizeof(int));
    p.sums = (float *)malloc((size_t)k * sizeof(float));
    err = (float *)malloc(2 * ((size_t)w + 2) * (size_t)c * sizeof(float));
    if (p.order == NULL || p.sums == NULL || err == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    {
        float sums[256];
        for (int i = 0; i < p.k; i++) {
            float s = 0.0f;
            for (int a = 0; a < p.c; a++) s += p.palette[(size_t)i * (size_t)p.c + (size_t)a];
            sums[i] = s;
            p.order[i] = i;
        }
        /* insertion sort by (sum, index): k <= 256, and it is stable without a context pointer */
        for (int i = 1; i < p.k; i++) {
            const int e = p.order[i];
            int j = i - 1;
            while (j >= 0 && sums[p.order[j]] > sums[e]) {
                p.order[j + 1] = p.order[j];
                j--;
            }
            p.order[j + 1] = e;
        }
        for (int i = 0; i < p.k; i++) p.sums[i] = sums[p.order[i]];
    }
    {
        Band b = {(const uint8_t *)pix.buf, (const uint8_t *)map.buf, (const uint8_t *)base.buf, (size_t)w, (size_t)h,
                  (int)c, kernel, clamp, (uint8_t *)lab.buf};
        Py_BEGIN_ALLOW_THREADS;
        diffuse_band(&b, &p, err);
        Py_END_ALLOW_THREADS;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    free(p.order);
    free(p.sums);
    free(err);
    PyBuffer_Release(&pix);
    PyBuffer_Release(&map);
    PyBuffer_Release(&base);
    PyBuffer_Release(&pal);
    PyBuffer_Release(&lab);
    return result;
}

/* ---- the dither map ---------------------------------------------------------------------- */

/* A channel of a pixel in the diffusion space: the byte, colour premultiplied by alpha for RGBA. */
static inline float channel(const uint8_t *px, int c, int a) {
    const float v = (float)px[a];
    return (c == 4 && a < 3) ? v * ((float)px[3] / 255.0f) : v;
}

/* The largest second difference (across or down, any channel) at (x, y), edges replicated. */
static float second_difference(const uint8_t *pixels, size_t w, size_t h, int c, size_t x, size_t y) {
    const size_t xl = x ? x - 1 : 0, xr = x + 1 < w ? x + 1 : x;
    const size_t yu = y ? y - 1 : 0, yd = y + 1 < h ? y + 1 : y;
    const uint8_t *mid = pixels + (y * w + x) * (size_t)c;
    const uint8_t *l = pixels + (y * w + xl) * (size_t)c, *r = pixels + (y * w + xr) * (size_t)c;
    const uint8_t *u = pixels + (yu * w + x) * (size_t)c, *d = pixels + (yd * w + x) * (size_t)c;
    float most = 0.0f;
    for (int a = 0; a < c; a++) {
        const float m2 = 2.0f * channel(mid, c, a);
        const float across = fabsf(m2 - channel(l, c, a) - channel(r, c, a));
        const float down = fabsf(m2 - channel(u, c, a) - channel(d, c, a));
        if (across > most) most = across;
        if (down > most) most = down;
    }
    return most;
}

PyDoc_STRVAR(dither_map_doc,
             "dither_map(pixels, w, h, c, edge, scale, out)\n\n"
             "pixels: uint8 buffer (h*w*c); out: writable uint8 buffer (h*w). Each pixel's share:\n"
             "rint(clip(1 - A / edge, 0, 1) * scale), A the largest second difference over its 3 x 3\n"
             "neighbourhood, in float32 exactly as kmq.dither's numpy route computes it.");

static PyObject *py_dither_map(PyObject *self, PyObject *args) {
    Py_buffer pix, out;
    Py_ssize_t w, h, c;
    float edge, scale;
    PyObject *result = NULL;
    float *rows = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnffw*", &pix, &w, &h, &c, &edge, &scale, &out)) return NULL;
    if (w < 1 || h < 1 || c < 1 || c > MAX_CHANNELS || !(edge > 0.0f)) {
        PyErr_Format(PyExc_ValueError, "dither_map: bad arguments w=%zd h=%zd c=%zd", w, h, c);
        goto done;
    }
    if (out.len % w || out.len / w != h || pix.len % c || pix.len / c != out.len) {
        PyErr_SetString(PyExc_ValueError, "dither_map: a buffer does not match w, h and c");
        goto done;
    }
    rows = (float *)malloc(3 * (size_t)w * sizeof(float));
    if (rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS;
    {
        const uint8_t *px = (const uint8_t *)pix.buf;
        uint8_t *share = (uint8_t *)out.buf;
        const size_t W = (size_t)w, H = (size_t)h;
        /* a ring of three rows of second differences: y - 1, y and y + 1 (edges replicated) */
        for (size_t y = 0; y < H; y++) {
            if (y == 0) {
                for (size_t x = 0; x < W; x++) rows[W + x] = second_difference(px, W, H, (int)c, x, 0);
                memcpy(rows, rows + W, W * sizeof(float));
            } else {
                memmove(rows, rows + W, 2 * W * sizeof(float)); /* the two newer rows move down */
            }
            if (y + 1 < H) {
                for (size_t x = 0; x < W; x++) rows[2 * W + x] = second_difference(px, W, H, (int)c, x, y + 1);
            } else {
                memcpy(rows + 2 * W, rows + W, W * sizeof(float));
            }
            for (size_t x = 0; x < W; x++) {
                const size_t xl = x ? x - 1 : 0, xr = x + 1 < W ? x + 1 : x;
                float most = 0.0f;
                for (int r = 0; r < 3; r++) {
                    const float *row = rows + (size_t)r * W;
                    if (row[xl] > most) most = row[xl];
                    if (row[x] > most) most = row[x];
                    if (row[xr] > most) most = row[xr];
                }
                float t = 1.0f - most / edge;
                t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
                share[y * W + x] = (uint8_t)rintf(t * scale);
            }
        }
    }
    Py_END_ALLOW_THREADS;
    result = Py_None;
    Py_INCREF(result);
done:
    free(rows);
    PyBuffer_Release(&pix);
    PyBuffer_Release(&out);
    return result;
}

/* ---- count, lookup, squared_error: the colour histogram and the way back to pixels --------- */

/* A colour's key is its bytes read big-endian (RGB: 24 bits, RGBA: 32), so key order is byte order.
 * Tables are open-addressed with linear probing, sized to the colours seen, never to 2^24: a small
 * image costs a small table, and a photo's 600,000 colours fit in 8 MB. */
static inline uint32_t colour_key(const uint8_t *p, int c) {
    return c == 3 ? ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2]
                  : ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline size_t slot_of(uint32_t key, int bits) { return (size_t)((key * 0x9E3779B1u) >> (32 - bits)); }

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif
/* How many pixels ahead a table slot is fetched: the probes of a photo's colours miss the cache,
 * and several misses in flight cost little more than one. */
#define AHEAD 32

/* A slot of a counting table: key in the high 32 bits, count in the low 32 (0: empty). The caller
 * keeps each part below 2^32 pixels, so no count can wrap. */
typedef struct {
    uint64_t *slots;
    int bits;
    size_t used;
} Counts;

static int counts_grow(Counts *t) {
    const int bits = t->bits + 1;
    uint64_t *slots = (uint64_t *)calloc((size_t)1 << bits, sizeof(uint64_t));
    if (slots == NULL) return -1;
    const size_t mask = ((size_t)1 << bits) - 1, old = (size_t)1 << t->bits;
    for (size_t i = 0; i < old; i++) {
        const uint64_t s = t->slots[i];
        if (!(s & 0xFFFFFFFFu)) continue;
        size_t h = slot_of((uint32_t)(s >> 32), bits);
        while (slots[h]) h = (h + 1) & mask;
        slots[h] = s;
    }
    free(t->slots);
    t->slots = slots;
    t->bits = bits;
    return 0;
}

/* Count n pixels of c channels into t. Returns -1 if memory ran out. Neighbouring pixels of a
 * photo are often equal, so the last slot found is tried first. */
static int count_pixels(Counts *t, const uint8_t *px, size_t n, int c) {
    size_t last = (size_t)-1;
    uint32_t last_key = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t key = colour_key(px + i * (size_t)c, c);
        if (i + AHEAD < n) PREFETCH(&t->slots[slot_of(colour_key(px + (i + AHEAD) * (size_t)c, c), t->bits)]);
        if (last != (size_t)-1 && key == last_key) {
            t->slots[last]++;
            continue;
        }
        size_t mask = ((size_t)1 << t->bits) - 1, h = slot_of(key, t->bits);
        while (t->slots[h] && (uint32_t)(t->slots[h] >> 32) != key) h = (h + 1) & mask;
        if (!t->slots[h]) {
            if ((t->used + 1) * 4 > ((size_t)3 << t->bits)) { /* keep the load at most 3/4 */
                if (counts_grow(t) < 0) return -1;
                mask = ((size_t)1 << t->bits) - 1;
                h = slot_of(key, t->bits);
                while (t->slots[h]) h = (h + 1) & mask;
            }
            t->slots[h] = (uint64_t)key << 32;
            t->used++;
        }
        t->slots[h]++;
        last = h;
        last_key = key;
    }
    return 0;
}

/* Sort (key, count) pairs by key: least-significant-digit radix sort, one byte per pass. */
static int radix_sort(uint32_t *keys, uint64_t *counts, size_t n, int bytes) {
    uint32_t *k2 = (uint32_t *)malloc((n ? n : 1) * sizeof(uint32_t));
    uint64_t *c2 = (uint64_t *)malloc((n ? n : 1) * sizeof(uint64_t));
    if (k2 == NULL || c2 == NULL) {
        free(k2);
        free(c2);
        return -1;
    }
    uint32_t *ka = keys, *kb = k2;
    uint64_t *ca = counts, *cb = c2;
    for (int pass = 0; pass < bytes; pass++) {
        const int shift = 8 * pass;
        size_t start[256] = {0};
        for (size_t i = 0; i < n; i++) start[(ka[i] >> shift) & 0xFF]++;
        size_t sum = 0;
        for (int d = 0; d < 256; d++) {
            const size_t here = start[d];
            start[d] = sum;
            sum += here;
        }
        for (size_t i = 0; i < n; i++) {
            const size_t to = start[(ka[i] >> shift) & 0xFF]++;
            kb[to] = ka[i];
            cb[to] = ca[i];
        }
        uint32_t *kt = ka;
        ka = kb;
        kb = kt;
        uint64_t *ct = ca;
        ca = cb;
        cb = ct;
    }
    if (ka != keys) { /* an odd number of passes (RGB) left the result in the spare arrays */
        memcpy(keys, ka, n * sizeof(uint32_t));
        memcpy(counts, ca, n * sizeof(uint64_t));
    }
    free(k2);
    free(c2);
    return 0;
}

PyDoc_STRVAR(count_doc,
             "count(pixels, n, c) -> (keys, counts)\n\n"
             "pixels: uint8 buffer of n pixels of c (3 or 4) channels, n < 2**32. Returns the\n"
             "distinct colours' big-endian keys (bytes of uint32, ascending) and their pixel\n"
             "counts (bytes of uint64). Memory: a table of 8 bytes per slot, at most 4/3 of\n"
             "the distinct colours rounded up to a power of two, and 12 bytes per colour.");

static PyObject *py_count(PyObject *self, PyObject *args) {
    Py_buffer pix;
    Py_ssize_t n;
    int c;
    PyObject *keys_out = NULL, *counts_out = NULL, *result = NULL;
    Counts t = {NULL, 12, 0};
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ni", &pix, &n, &c)) return NULL;
    if (n < 0 || (uint64_t)n >= ((uint64_t)1 << 32) || (c != 3 && c != 4) || pix.len / c != n || pix.len % c) {
        PyErr_Format(PyExc_ValueError, "count: bad sizes n=%zd c=%d for a buffer of %zd bytes", n, c, pix.len);
        goto done;
    }
    t.slots = (uint64_t *)calloc((size_t)1 << t.bits, sizeof(uint64_t));
    if (t.slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS;
    failed = count_pixels(&t, (const uint8_t *)pix.buf, (size_t)n, c);
    Py_END_ALLOW_THREADS;
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    keys_out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(t.used * sizeof(uint32_t)));
    counts_out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(t.used * sizeof(uint64_t)));
    if (keys_out == NULL || counts_out == NULL) goto done;
    {
        uint32_t *keys = (uint32_t *)PyBytes_AS_STRING(keys_out);
        uint64_t *counts = (uint64_t *)PyBytes_AS_STRING(counts_out);
        const size_t size = (size_t)1 << t.bits;
        size_t j = 0;
        for (size_t i = 0; i < size; i++) {
            const uint64_t s = t.slots[i];
            if (!(s & 0xFFFFFFFFu)) continue;
            keys[j] = (uint32_t)(s >> 32);
            counts[j] = s & 0xFFFFFFFFu;
            j++;
        }
        free(t.slots);
        t.slots = NULL;
        Py_BEGIN_ALLOW_THREADS;
        failed = radix_sort(keys, counts, j, c);
        Py_END_ALLOW_THREADS;
        if (failed) {
            PyErr_NoMemory();
            goto done;
        }
    }
    result = PyTuple_Pack(2, keys_out, counts_out);
done:
    free(t.slots);
    Py_XDECREF(keys_out);
    Py_XDECREF(counts_out);
    PyBuffer_Release(&pix);
    return result;
}

PyDoc_STRVAR(merge_doc,
             "merge(keys_a, counts_a, keys_b, counts_b) -> (keys, counts)\n\n"
             "Two of count's results (ascending uint32 keys, uint64 counts, as bytes) merged into\n"
             "one: the union of the keys, ascending, a key's counts added.");

static PyObject *py_merge(PyObject *self, PyObject *args) {
    Py_buffer ka, ca, kb, cb;
    PyObject *keys_out = NULL, *counts_out = NULL, *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*", &ka, &ca, &kb, &cb)) return NULL;
    const size_t na = (size_t)ka.len / sizeof(uint32_t), nb = (size_t)kb.len / sizeof(uint32_t);
    if (ka.len % (Py_ssize_t)sizeof(uint32_t) || kb.len % (Py_ssize_t)sizeof(uint32_t) ||
        (size_t)ca.len != na * sizeof(uint64_t) || (size_t)cb.len != nb * sizeof(uint64_t)) {
        PyErr_SetString(PyExc_ValueError, "merge: keys and counts differ in length");
        goto done;
    }
    keys_out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((na + nb) * sizeof(uint32_t)));
    counts_out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((na + nb) * sizeof(uint64_t)));
    if (keys_out == NULL || counts_out == NULL) goto done;
    size_t n = 0;
    {
        const uint32_t *a = (const uint32_t *)ka.buf, *b = (const uint32_t *)kb.buf;
        const uint64_t *x = (const uint64_t *)ca.buf, *y = (const uint64_t *)cb.buf;
        uint32_t *keys = (uint32_t *)PyBytes_AS_STRING(keys_out);
        uint64_t *counts = (uint64_t *)PyBytes_AS_STRING(counts_out);
        size_t i = 0, j = 0;
        Py_BEGIN_ALLOW_THREADS;
        while (i < na || j < nb) {
            if (j == nb || (i < na && a[i] < b[j])) {
                keys[n] = a[i];
                counts[n++] = x[i++];
            } else if (i == na || b[j] < a[i]) {
                keys[n] = b[j];
                counts[n++] = y[j++];
            } else {
                keys[n] = a[i];
                counts[n++] = x[i++] + y[j++];
            }
        }
        Py_END_ALLOW_THREADS;
    }
    if (_PyBytes_Resize(&keys_out, (Py_ssize_t)(n * sizeof(uint32_t))) < 0 ||
        _PyBytes_Resize(&counts_out, (Py_ssize_t)(n * sizeof(uint64_t))) < 0)
        goto done;
    result = PyTuple_Pack(2, keys_out, counts_out);
done:
    Py_XDECREF(keys_out);
    Py_XDECREF(counts_out);
    PyBuffer_Release(&ka);
    PyBuffer_Release(&ca);
    PyBuffer_Release(&kb);
    PyBuffer_Release(&cb);
    return result;
}

PyDoc_STRVAR(table_doc,
             "table(keys, labels) -> bytes\n\n"
             "keys: uint32 buffer of distinct colours' keys, labels: uint8 buffer of one label per key.\n"
             "Returns the hash table that lookup reads (8 bytes per slot, at most 3/4 full).");

static PyObject *py_table(PyObject *self, PyObject *args) {
    Py_buffer key, lab;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*", &key, &lab)) return NULL;
    const size_t u = (size_t)key.len / sizeof(uint32_t);
    if (key.len % (Py_ssize_t)sizeof(uint32_t) || (size_t)lab.len != u) {
        PyErr_SetString(PyExc_ValueError, "table: one label per key is needed");
        goto done;
    }
    int bits = 4;
    while (((size_t)3 << bits) < 4 * u) bits++;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(sizeof(uint64_t) << bits));
    if (result == NULL) goto done;
    {
        uint64_t *slots = (uint64_t *)PyBytes_AS_STRING(result);
        const size_t mask = ((size_t)1 << bits) - 1;
        const uint32_t *keys = (const uint32_t *)key.buf;
        const uint8_t *labels = (const uint8_t *)lab.buf;
        memset(slots, 0, sizeof(uint64_t) << bits);
        /* a slot: key in the high 32 bits, 0x100 | label in the low ones (0: empty) */
        for (size_t i = 0; i < u; i++) {
            size_t h = slot_of(keys[i], bits);
            while (slots[h] && (uint32_t)(slots[h] >> 32) != keys[i]) h = (h + 1) & mask;
            slots[h] = ((uint64_t)keys[i] << 32) | 0x100u | labels[i];
        }
    }
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&lab);
    return result;
}

PyDoc_STRVAR(lookup_doc,
             "lookup(pixels, n, c, table, out)\n\n"
             "table: as table() returns it; out: writable uint8 buffer (n). Writes each pixel's\n"
             "label; a pixel whose colour is not in the table raises ValueError.");

static PyObject *py_lookup(PyObject *self, PyObject *args) {
    Py_buffer pix, tab, out;
    Py_ssize_t n;
    int c;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*niy*w*", &pix, &n, &c, &tab, &out)) return NULL;
    int bits = 4, missing = 0;
    while (bits < 32 && ((Py_ssize_t)sizeof(uint64_t) << bits) < tab.len) bits++;
    if (n < 0 || (c != 3 && c != 4) || pix.len / c != n || pix.len % c || out.len != n ||
        tab.len != ((Py_ssize_t)sizeof(uint64_t) << bits)) {
        PyErr_SetString(PyExc_ValueError, "lookup: a buffer does not match n, c and the table");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS;
    {
        const size_t mask = ((size_t)1 << bits) - 1;
        const uint64_t *slots = (const uint64_t *)tab.buf;
        const uint8_t *px = (const uint8_t *)pix.buf;
        uint8_t *dst = (uint8_t *)out.buf;
        uint32_t last_key = 0;
        uint8_t last_label = 0;
        int have_last = 0;
        for (size_t i = 0; i < (size_t)n; i++) {
            const uint32_t k = colour_key(px + i * (size_t)c, c);
            if (i + AHEAD < (size_t)n) PREFETCH(&slots[slot_of(colour_key(px + (i + AHEAD) * (size_t)c, c), bits)]);
            if (!(have_last && k == last_key)) {
                size_t h = slot_of(k, bits);
                while (slots[h] && (uint32_t)(slots[h] >> 32) != k) h = (h + 1) & mask;
                if (!slots[h]) {
                    missing = 1;
                    break;
                }
                last_key = k;
                last_label = (uint8_t)slots[h];
                have_last = 1;
            }
            dst[i] = last_label;
        }
    }
    Py_END_ALLOW_THREADS;
    if (missing) {
        PyErr_SetString(PyExc_ValueError, "lookup: a pixel's colour is not in the table");
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&pix);
    PyBuffer_Release(&tab);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(squared_error_doc,
             "squared_error(pixels, n, c, labels, palette, premultiplied) -> int\n\n"
             "The exact sum over n pixels of the squared channel differences between pixels (uint8,\n"
             "n*c) and palette[labels] (palette: uint8, K*c; every label < K). premultiplied (c = 4):\n"
             "colours times alpha and alpha times 255, as kmq.metrics defines them. n at most 2**24,\n"
             "so the sum fits in 64 bits.");

static PyObject *py_squared_error(PyObject *self, PyObject *args) {
    Py_buffer pix, lab, pal;
    Py_ssize_t n;
    int c, premultiplied;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*niy*y*p", &pix, &n, &c, &lab, &pal, &premultiplied)) return NULL;
    if (n < 0 || n > ((Py_ssize_t)1 << 24) || c < 1 || c > MAX_CHANNELS || pix.len / c != n || pix.len % c ||
        lab.len != n || pal.len % c || pal.len / c > 256 || (premultiplied && c != 4)) {
        PyErr_SetString(PyExc_ValueError, "squared_error: a buffer does not match n and c");
        goto done;
    }
    {
        const size_t k = (size_t)pal.len / (size_t)c;
        const uint8_t *labels = (const uint8_t *)lab.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (labels[i] >= k) {
                PyErr_Format(PyExc_ValueError, "squared_error: label %d >= k=%zu", (int)labels[i], k);
                goto done;
            }
        }
        uint64_t sum = 0;
        Py_BEGIN_ALLOW_THREADS;
        {
            const uint8_t *px = (const uint8_t *)pix.buf, *palette = (const uint8_t *)pal.buf;
            for (size_t i = 0; i < (size_t)n; i++) {
                const uint8_t *a = px + i * (size_t)c, *b = palette + (size_t)labels[i] * (size_t)c;
                if (premultiplied) {
                    for (int j = 0; j < 3; j++) {
                        const int64_t d = (int64_t)a[j] * a[3] - (int64_t)b[j] * b[3];
                        sum += (uint64_t)(d * d);
                    }
                    const int64_t d = ((int64_t)a[3] - b[3]) * 255;
                    sum += (uint64_t)(d * d);
                } else {
                    for (int j = 0; j < c; j++) {
                        const int d = (int)a[j] - (int)b[j];
                        sum += (uint64_t)(d * d);
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS;
        result = PyLong_FromUnsignedLongLong(sum);
    }
done:
    PyBuffer_Release(&pix);
    PyBuffer_Release(&lab);
    PyBuffer_Release(&pal);
    return result;
}

static PyMethodDef methods[] = {
    {"nearest", py_nearest, METH_VARARGS, nearest_doc},
    {"diffuse", py_diffuse, METH_VARARGS, diffuse_doc},
    {"dither_map", py_dither_map, METH_VARARGS, dither_map_doc},
    {"count", py_count, METH_VARARGS, count_doc},
    {"merge", py_merge, METH_VARARGS, merge_doc},
    {"table", py_table, METH_VARARGS, table_doc},
    {"lookup", py_lookup, METH_VARARGS, lookup_doc},
    {"squared_error", py_squared_error, METH_VARARGS, squared_error_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kmq._remap", "Per-pixel loops of kmq: nearest centres, error diffusion, colour counting, error sums.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__remap(void) { return PyModule_Create(&module); }
