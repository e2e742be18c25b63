/*
 * A stand-in for the modules that the official redis 8.x image bundles (JSON, search,
 * time series, probabilistic) and loads on every start of redis-server without
 * --sentinel: its entry point appends `--loadmodule <file>` for each *.so in
 * /usr/local/lib/redis/modules/. Debian's redis-server ships no module, so without this
 * one the offline image could not show what the official one does when a config file
 * that CONFIG REWRITE saved (Sentinel does that at every failover) already names the
 * modules: each is loaded twice, and the server aborts at start.
 *
 * The module adds nothing. It registers a name, and refuses to load when a module of
 * that name is already loaded, as RedisModule_Init does for every real module.
 * redismodule.h is not packaged by Debian, so the two API calls it needs are looked up
 * by name through the module context, the way RedisModule_Init does it.
 */

#define MODULE_NAME "mqlabstub"
#define REDISMODULE_OK 0
#define REDISMODULE_ERR 1
#define REDISMODULE_APIVER_1 1

typedef int (*get_api_fn)(const char *name, void *target);
typedef void (*set_attribs_fn)(void *ctx, const char *name, int ver, int apiver);
typedef int (*name_busy_fn)(const char *name);

int RedisModule_OnLoad(void *ctx, void **argv, int argc) {
    (void)argv;
    (void)argc;
    /* The first field of the context is the server's RedisModule_GetApi. */
    get_api_fn get_api = (get_api_fn)((void **)ctx)[0];
    set_attribs_fn set_attribs = 0;
    name_busy_fn name_busy = 0;
    if (get_api("RedisModule_SetModuleAttribs", &set_attribs) != REDISMODULE_OK) return REDISMODULE_ERR;
    if (get_api("RedisModule_IsModuleNameBusy", &name_busy) == REDISMODULE_OK && name_busy(MODULE_NAME))
        return REDISMODULE_ERR;
    set_attribs(ctx, MODULE_NAME, 1, REDISMODULE_APIVER_1);
    return REDISMODULE_OK;
}
