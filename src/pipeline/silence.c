/* silence.c - block energies and speech activity (silence.h). */
#include "pipeline/silence.h"

#include <math.h>

void ls_energy_init(ls_energy *e, int block)
{
    e->block = block;
    e->partial = 0;
    e->samples = 0;
}

void ls_energy_push(ls_energy *e, const float *x, size_t n, ls_energy_fn done, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        e->partial += (double)x[i] * x[i];
        if (++e->samples % e->block == 0) {
            done(ctx, e->samples / e->block - 1, e->partial);
            e->partial = 0;
        }
    }
}

void ls_speech_init(ls_speech *d, int block, double threshold, int end_blocks)
{
    ls_energy_init(&d->energy, block);
    d->threshold = threshold;
    d->end_blocks = end_blocks;
    d->speaking = d->quiet_blocks = 0;
}

typedef struct speech_call {
    ls_speech *d;
    ls_speech_fn event;
    void *ctx;
} speech_call;

static void speech_block(void *arg, int64_t block, double sum_sq)
{
    speech_call *c = arg;
    ls_speech *d = c->d;
    double rms = sqrt(sum_sq / d->energy.block);
    if (rms >= d->threshold) {
        d->quiet_blocks = 0;
        if (!d->speaking) {
            d->speaking = 1;
            c->event(c->ctx, 1, block);
        }
    } else if (d->speaking && ++d->quiet_blocks >= d->end_blocks) {
        d->speaking = 0;
        c->event(c->ctx, 0, block - (d->end_blocks - 1));
    }
}

void ls_speech_push(ls_speech *d, const float *x, size_t n, ls_speech_fn event, void *ctx)
{
    speech_call c = {d, event, ctx};
    ls_energy_push(&d->energy, x, n, speech_block, &c);
}
