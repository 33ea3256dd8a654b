// Lua 5.4 for Swift: the C API, plus the few pieces that must be C (an allocator with a budget, a
// count hook that raises a Lua error) and the macros Swift cannot import.
#ifndef ENCHUFE_CLUA_SHIM_H
#define ENCHUFE_CLUA_SHIM_H

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include <stdlib.h>

#include <time.h>

/// glibc's linear-time substring search (declared here: <string.h> shows it only with _GNU_SOURCE).
extern void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen);

/// What one Lua state may use. Memory: allocations beyond `limit` fail (Lua raises "not enough
/// memory") while `enforce` is set. Time and instructions, per call: the count hook runs every
/// `period` instructions, takes them from `instructions_left` (negative: no limit) and compares the
/// monotonic clock with `deadline` (0: none). Once either is exhausted the call is `tripped` (1:
/// instructions, 2: time) until the next call starts: from then on the hook raises the error again
/// at every instruction of every coroutine, so a `pcall` that caught it cannot carry on.
typedef struct enchufe_lua_budget {
    size_t used;
    size_t limit;
    int enforce;
    long long instructions_left;
    int period;
    double deadline;
    int tripped;
} enchufe_lua_budget;

static inline double enchufe_lua_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

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

/// Switches the collector to generational mode (Lua 5.4's default parameters): most of what a
/// `process(msg)` call makes — the message's tables and strings — dies young.
static inline void enchufe_lua_gc_generational(lua_State *L) {
    lua_gc(L, LUA_GCGEN, 0, 0);
}

static inline enchufe_lua_budget *enchufe_lua_budget_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (enchufe_lua_budget *)ud;
}

/// Whether the running call is over its time or instructions (and marks it so if it is).
static inline int enchufe_lua_over_budget(enchufe_lua_budget *b) {
    if (!b->tripped && b->deadline > 0 && enchufe_lua_now() > b->deadline) b->tripped = 2;
    return b->tripped;
}

static void enchufe_lua_count_hook(lua_State *L, lua_Debug *ar);

/// Raises the limit error at the running line; the hook fires at every instruction from now on.
static inline int enchufe_lua_raise_limit(lua_State *L, lua_Debug *ar) {
    enchufe_lua_budget *b = enchufe_lua_budget_of(L);
    lua_sethook(L, enchufe_lua_count_hook, LUA_MASKCOUNT, 1);
    const char *what = b->tripped == 2 ? "time limit exceeded" : "instruction limit exceeded";
    // Named after the line that was running, not its caller's (which luaL_error would use).
    if (ar && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: %s", ar->short_src, ar->currentline, what);
    else
        lua_pushstring(L, what);
    return lua_error(L);
}

static void enchufe_lua_count_hook(lua_State *L, lua_Debug *ar) {
    enchufe_lua_budget *b = enchufe_lua_budget_of(L);
    if (!b->tripped && b->instructions_left >= 0) {
        b->instructions_left -= b->period;
        if (b->instructions_left < 0) b->tripped = 1;
    }
    if (!enchufe_lua_over_budget(b)) return;
    enchufe_lua_raise_limit(L, ar);
}

/// Starts a call's budget: `instructions` VM instructions (0: no limit) and `seconds` of wall-clock
/// time (0: no limit).
static inline void enchufe_lua_start_call(lua_State *L, long long instructions, double seconds) {
    enchufe_lua_budget *b = enchufe_lua_budget_of(L);
    b->tripped = 0;
    b->instructions_left = instructions > 0 ? instructions : -1;
    b->period = instructions > 0 && instructions < 100 ? (int)instructions : 100;
    b->deadline = seconds > 0 ? enchufe_lua_now() + seconds : 0;
    if (instructions > 0 || seconds > 0) lua_sethook(L, enchufe_lua_count_hook, LUA_MASKCOUNT, b->period);
    else lua_sethook(L, NULL, 0, 0);
}

static inline void enchufe_lua_end_call(lua_State *L) {
    enchufe_lua_budget *b = enchufe_lua_budget_of(L);
    b->deadline = 0;
    b->instructions_left = -1;
    lua_sethook(L, NULL, 0, 0);
}

/// A function written in Swift: returns its number of results, or -1 with an error message on the
/// top of the stack, which the trampoline raises (a Lua error must not unwind through Swift frames).
typedef int (*enchufe_lua_swift_function)(lua_State *L);

static int enchufe_lua_trampoline(lua_State *L) {
    enchufe_lua_swift_function f = (enchufe_lua_swift_function)lua_touserdata(L, lua_upvalueindex(1));
    int results = f(L);
    if (results >= 0) return results;
    if (enchufe_lua_budget_of(L)->tripped) {
        lua_Debug ar;
        lua_pop(L, 1);
        return enchufe_lua_raise_limit(L, lua_getstack(L, 1, &ar) ? &ar : NULL);
    }
    return lua_error(L);
}

static inline void enchufe_lua_push_swift(lua_State *L, enchufe_lua_swift_function f) {
    lua_pushlightuserdata(L, (void *)f);
    lua_pushcclosure(L, enchufe_lua_trampoline, 1);
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
