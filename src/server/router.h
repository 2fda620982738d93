/* router.h - a table of HTTP routes (method, path pattern) and the match of
 * a request against it, so that the routes are written once: the match,
 * 404, and 405 with its Allow list all come from the same table. No lws, no
 * state: the fuzz targets and tests call it directly.
 *
 * A pattern is a path of literal segments, where the segment "{}" matches
 * one non-empty segment (no '/') and hands it over as the parameter; at most
 * one per pattern. The table is an array of the caller's structs, each
 * starting with an ls_route (stride: the struct's size), so handlers and
 * flags live next to their route.
 */
#ifndef LS_SERVER_ROUTER_H
#define LS_SERVER_ROUTER_H

#include <stddef.h>

typedef struct ls_route {
    const char *method;  /* "GET", "POST", "DELETE", ... */
    const char *pattern; /* "/v1/models/{}/load" */
} ls_route;

typedef enum ls_route_result {
    LS_ROUTE_MATCH,          /* method and path: the route's index, the parameter */
    LS_ROUTE_NOT_FOUND,      /* no route has this path */
    LS_ROUTE_BAD_METHOD,     /* the path has routes, none for this method: Allow */
    LS_ROUTE_PARAM_TOO_LONG  /* method and path match but the parameter is too long */
} ls_route_result;

typedef struct ls_route_match {
    ls_route_result result;
    size_t index;        /* MATCH, PARAM_TOO_LONG: the route; BAD_METHOD: the first of the path */
    char allow[64];      /* BAD_METHOD: the path's methods, "GET, POST" */
} ls_route_match;

/* Matches method and path against the n routes at table (stride bytes
 * apart), first match first. The parameter, if the route has one, goes to
 * param (cap bytes, NUL-terminated; longer: PARAM_TOO_LONG). */
void ls_route_find(const void *table, size_t n, size_t stride, const char *method,
                   const char *path, char *param, size_t cap, ls_route_match *out);

#endif
