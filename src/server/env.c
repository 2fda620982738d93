/* env.c - admission and the answers the protocol modules share (env.h). */
#include "server/env.h"

#include <stdio.h>
#include <string.h>

int ls_env_admit(ls_env *env, int job, char *why, size_t cap)
{
    int used = atomic_load(&env->active_streams) + atomic_load(&env->active_jobs);
    if (used >= env->cfg.max_sessions) {
        ls_metrics_add(env->metrics, LS_M_SESSIONS_REJECTED, 1);
        snprintf(why, cap, "too many sessions (max_sessions %d); retry later",
                 env->cfg.max_sessions);
        return 0;
    }
    if (job && atomic_load(&env->active_jobs) >= env->max_jobs) {
        ls_metrics_add(env->metrics, LS_M_SESSIONS_REJECTED, 1);
        snprintf(why, cap, "too many render and batch jobs (max_jobs %d); retry later",
                 env->max_jobs);
        return 0;
    }
    return 1;
}

int ls_http_status_for(int code)
{
    switch (code) {
    case LS_ERR_INVALID_ARG:
    case LS_ERR_FORMAT:
    case LS_ERR_RANGE: return 400;
    case LS_ERR_UNSUPPORTED: return 415;
    case LS_ERR_NOT_FOUND: return 404;
    case LS_ERR_BUSY: return 503;
    case LS_ERR_STATE: return 409;
    case LS_ERR_TOO_LARGE: return 413;
    default: return 500;
    }
}

void ls_response_json(ls_response *r, int status, const char *json)
{
    r->status = status;
    snprintf(r->content_type, sizeof r->content_type, "application/json");
    r->body.len = 0;
    ls_buf_append(&r->body, json, strlen(json));
    ls_buf_append(&r->body, "\n", 1);
}

char *ls_error_json(int status, const char *fmt, va_list ap)
{
    char text[LS_ERROR_MSG_MAX + 64];
    vsnprintf(text, sizeof text, fmt, ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", text);
    cJSON_AddNumberToObject(j, "status", status);
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return body;
}

void ls_response_error(ls_env *env, ls_response *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = ls_error_json(status, fmt, ap);
    va_end(ap);
    ls_response_json(r, status, body ? body : "{\"error\":\"out of memory\"}");
    cJSON_free(body);
    ls_metrics_add(env->metrics, LS_M_ERRORS, 1);
}

cJSON *ls_stage_times_json(const ls_stage_times *t)
{
    cJSON *j = cJSON_CreateObject();
    const double ms[] = {t->mel, t->encoder, t->input, t->unet, t->composite, t->encode};
    const char *names[] = {"mel_ms", "encoder_ms", "input_ms", "unet_ms", "composite_ms",
                           "encode_ms"};
    for (int i = 0; i < 6; i++) cJSON_AddNumberToObject(j, names[i], ms[i] * 1e3);
    cJSON_AddNumberToObject(j, "frames", (double)t->frames);
    cJSON_AddNumberToObject(j, "batches", (double)t->batches);
    return j;
}
