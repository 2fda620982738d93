/* jobs.h - the HTTP routes that compute: model load and unload, /v1/render
 * and /v1/batch, and the WebRTC offer and end (webrtc.h). A job is one work item (conn.h): the loop fills an ls_job
 * from the request (http.c) and hands it over; ls_job_run runs on a worker,
 * decodes the body, drives a session (pipeline/drive.h) and writes the
 * answer into job->resp; the loop takes the job back and sends it.
 *
 * Ownership: the whole ls_job (body and answer included) belongs to the
 * work while it runs and to the loop before and after. `cancelled` is the
 * one thing the loop writes meanwhile: the client hung up, and the job
 * stops at its next chunk of audio.
 */
#ifndef LS_SERVER_JOBS_H
#define LS_SERVER_JOBS_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdint.h>

#include "server/env.h"

typedef enum ls_job_kind {
    LS_JOB_NONE,
    LS_JOB_LOAD,   /* POST /v1/models/{id}/load */
    LS_JOB_UNLOAD, /* DELETE /v1/models/{id} */
    LS_JOB_RENDER, /* POST /v1/render */
    LS_JOB_BATCH,  /* POST /v1/batch */
    LS_JOB_WEBRTC, /* POST /v1/webrtc: an SDP offer (webrtc.h) */
    LS_JOB_WEBRTC_END /* DELETE /v1/webrtc/{id} */
} ls_job_kind;

typedef struct ls_job {
    ls_job_kind kind;
    char model[LS_MODEL_ID_MAX + 1];
    char session[LS_MODEL_ID_MAX + 1]; /* webrtc end: the session's id */
    char output[16];          /* render: mp4 | mjpeg | jpeg-zip */
    int64_t start_frame;
    int batch_size;           /* batch: 1..32 */
    int multipart;            /* batch: answer multipart/mixed */
    ls_buf body;              /* the request body (render, batch) */
    size_t body_reserved;     /* its bytes counted in env->body_bytes, until released */
    const atomic_int *cancelled;
    ls_response *resp;        /* the answer */
} ls_job;

/* [work] Runs the job: job->resp holds the answer, success or error. */
void ls_job_run(ls_env *env, ls_job *job);

/* Frees the body and gives its bytes back to max_body_bytes_total (the job
 * does it once the body is decoded; the request's end does it too). */
void ls_job_body_release(ls_env *env, ls_job *job);

/* A model's registry entry as the API shows it (/v1/models, load). */
cJSON *ls_model_entry_json(const ls_registry_entry *e);

#endif
