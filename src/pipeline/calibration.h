/* calibration.h - a model directory's int8 calibration file, int8.json.
 *
 * `lipsync quantize` (quantize.h) measures the ranges of the UNet's
 * activations on the model's own avatar frames with speech and writes them
 * here; a model loaded with precision int8 (model.h) reads them back and
 * hands them to its engines (nn/quant.h, nn/engine.h). The file names the
 * unet.onnx it was measured on by size and FNV-1a hash, so ranges measured
 * on another network are refused rather than silently misapplied:
 *
 *   { "format": "lipsync-int8-calibration", "version": 1,
 *     "unet": "unet.onnx", "unet_bytes": 3240039, "unet_fnv1a64": "9f...",
 *     "items": 32,
 *     "ranges": { "<value name>": [lo, hi], ... } }
 *
 * Reading treats the file as hostile: at most LS_CALIBRATION_MAX_BYTES, every
 * field of its type, every range finite with lo <= hi, every name a value of
 * the model's UNet; each refusal is LS_ERR_FORMAT (or LS_ERR_NOT_FOUND for a
 * missing file) naming the file and what is wrong.
 */
#ifndef LS_PIPELINE_CALIBRATION_H
#define LS_PIPELINE_CALIBRATION_H

#include <stdint.h>

#include "core/error.h"
#include "nn/quant.h"

#define LS_CALIBRATION_FILE "int8.json"
#define LS_CALIBRATION_MAX_BYTES (8 << 20)

/* Writes c's observed ranges to path for the UNet file unet_path (hashed). */
int ls_calibration_write(const char *path, const ls_calib *c, const char *unet_path,
                         ls_error *err);

/* Reads path into c (made for the UNet's graph), checking that it was
 * measured on unet_path. */
int ls_calibration_read(const char *path, const char *unet_path, ls_calib *c, ls_error *err);

/* Parses the file's bytes (the fuzz target's entry): as ls_calibration_read
 * with the UNet's size and hash given. */
int ls_calibration_parse(const char *bytes, size_t len, const char *what, int64_t unet_bytes,
                         uint64_t unet_hash, ls_calib *c, ls_error *err);

/* FNV-1a, 64 bits, of a file's bytes. */
int ls_file_fnv1a64(const char *path, int64_t *bytes, uint64_t *hash, ls_error *err);

#endif
