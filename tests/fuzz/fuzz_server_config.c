/* fuzz_server_config - the server's settings (`lipsync serve --config FILE`): a
 * JSON object read by ls_server_config_load_file (the API reads files only:
 * the input is written to a file in the fuzz folder). An input that starts
 * with "LS_" is read instead as LS_* environment variables, one per line,
 * through ls_server_config_apply_env. Checks that an accepted config holds
 * NUL-terminated strings and numbers in their ranges. */
#include "fuzz_util.h"
#include "nn/engine.h"
#include "server/config.h"

static void check_config(const ls_server_config *c)
{
    const char *strs[] = {c->host, c->models_root, c->preload, c->web_root, c->token,
                          c->precision, c->stun_server, c->turn_server};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        FUZZ_CHECK(memchr(strs[i], 0, LS_CONFIG_STR_MAX));
    FUZZ_CHECK(c->port >= 0 && c->port <= 65535);
    FUZZ_CHECK(c->max_models >= 1 && c->max_sessions >= 1 && c->max_body_bytes >= 1);
    FUZZ_CHECK(c->idle_timeout_s >= 1 && c->workers >= 1 && c->threads >= 1);
    FUZZ_CHECK(c->batch >= 0 && c->batch <= 64);
    FUZZ_CHECK(c->jpeg_quality >= 1 && c->jpeg_quality <= 100);
    FUZZ_CHECK(c->silence_rms >= 0 && c->silence_rms <= 1);
    /* The engine's own parser is the one list of precisions. */
    ls_precision p;
    ls_error err;
    FUZZ_CHECK(ls_precision_parse(c->precision, &p, &err) == LS_OK);
    FUZZ_CHECK(!c->stun_server[0] || !strncmp(c->stun_server, "stun://", 7));
    FUZZ_CHECK(!c->turn_server[0] || !strncmp(c->turn_server, "turn", 4));
}

/* Lines of data as a NULL-terminated envp (one allocation each). */
static void apply_env(const uint8_t *data, size_t size)
{
    size_t n = 1;
    for (size_t i = 0; i < size; i++) n += data[i] == '\n';
    char **envp = calloc(n + 1, sizeof *envp);
    FUZZ_CHECK(envp);
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n') continue;
        envp[k] = malloc(i - start + 1);
        FUZZ_CHECK(envp[k]);
        memcpy(envp[k], data + start, i - start);
        envp[k][i - start] = 0;
        k++;
        start = i + 1;
    }
    ls_server_config c;
    ls_server_config_defaults(&c);
    ls_error err = {0};
    int rc = ls_server_config_apply_env(&c, envp, &err);
    fuzz_note("env", rc, err.msg);
    if (rc == LS_OK)
        check_config(&c);
    else
        FUZZ_CHECK(err.msg[0]);
    for (size_t i = 0; i < k; i++) free(envp[i]);
    free(envp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    if (size >= 3 && !memcmp(data, "LS_", 3)) {
        apply_env(data, size);
        return 0;
    }
    static char path[4096];
    if (!path[0]) fuzz_path(path, sizeof path, "config.json");
    fuzz_write(path, data, size);
    ls_server_config c;
    ls_server_config_defaults(&c);
    ls_error err = {0};
    int rc = ls_server_config_load_file(&c, path, &err);
    fuzz_note("config", rc, err.msg);
    if (rc == LS_OK)
        check_config(&c);
    else
        FUZZ_CHECK(err.msg[0]);
    return 0;
}
