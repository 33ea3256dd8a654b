// Lua 5.4 for Swift: the C API, plus the few pieces that must be C (an allocator with a budget, a
// count hook that raises a Lua error) and the macros Swift cannot import.
#ifndef ENCHUFE_CLUA_SHIM_H
#define ENCHUFE_CLUA_SHIM_H

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include <stdlib.h>

/// Memory a Lua state may use; allocations beyond `limit` fail (Lua raises "not enough memory")
/// while `enforce` is set.
typedef struct enchufe_lua_budget {
    size_t used;
    size_t limit;
    int enforce;
} enchufe_lua_budget;

static inline void *enchufe_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    enchufe_lua_budget *budget = (enchufe_lua_budget *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        budget->used -= old;
        return NULL;
    }
    if (budget->enforce && nsize > old && budget->used - old + nsize > budget->limit) return NULL;
    void *block = realloc(ptr, nsize);
    if (block) budget->used = budget->used - old + nsize;
    return block;
}

static inline lua_State *enchufe_lua_newstate(enchufe_lua_budget *budget) {
    return lua_newstate(enchufe_lua_alloc, budget);
}

static void enchufe_lua_count_hook(lua_State *L, lua_Debug *ar) {
    // Named after the line that was running, not its caller's (which luaL_error would use).
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: instruction limit exceeded", ar->short_src, ar->currentline);
    else
        lua_pushstring(L, "instruction limit exceeded");
    lua_error(L);
}

/// Raises an error in the running script after `count` VM instructions (0: no limit). Calling it
/// again restarts the count.
static inline void enchufe_lua_limit_instructions(lua_State *L, int count) {
    if (count > 0) lua_sethook(L, enchufe_lua_count_hook, LUA_MASKCOUNT, count);
    else lua_sethook(L, NULL, 0, 0);
}

static inline int enchufe_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int enchufe_lua_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}
static inline void enchufe_lua_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline int enchufe_lua_loadbuffer(lua_State *L, const char *text, size_t size, const char *name) {
    return luaL_loadbufferx(L, text, size, name, "t");
}

#endif
