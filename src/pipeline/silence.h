/* silence.h - the one measure of silence in the pipeline: the energy (sum of
 * squares) of the audio per block of a fixed number of samples, summed in
 * sample order so that how the audio was chunked cannot change a bit of it.
 *
 * Two users: the session's skip_silence decision sums the blocks of a
 * frame's audio window (blocks of one mel hop, session.h), and a live
 * stream's speech_start / speech_end events come from ls_speech over blocks
 * of one video frame's audio (40 ms) with a hold time. Plain structs, no
 * allocation; one thread at a time per object.
 */
#ifndef LS_PIPELINE_SILENCE_H
#define LS_PIPELINE_SILENCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ls_energy {
    int block;        /* samples per block */
    double partial;   /* sum of squares of the block being filled */
    int64_t samples;  /* samples added so far; block k ends at sample (k+1)*block */
} ls_energy;

/* Called for every completed block, in order: its index and sum of squares. */
typedef void (*ls_energy_fn)(void *ctx, int64_t block, double sum_sq);

void ls_energy_init(ls_energy *e, int block);
void ls_energy_push(ls_energy *e, const float *x, size_t n, ls_energy_fn done, void *ctx);

/* Speech activity over blocks: a block whose RMS reaches threshold is speech
 * (speech starts at the first such block); end_blocks silent blocks in a
 * row end it, dated at the first of them. */
typedef struct ls_speech {
    ls_energy energy;
    double threshold;
    int end_blocks;
    int speaking, quiet_blocks;
} ls_speech;

/* An event: start (1) or end (0) of speech, at a block index. */
typedef void (*ls_speech_fn)(void *ctx, int start, int64_t block);

void ls_speech_init(ls_speech *d, int block, double threshold, int end_blocks);
void ls_speech_push(ls_speech *d, const float *x, size_t n, ls_speech_fn event, void *ctx);

#endif
