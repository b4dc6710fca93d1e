/*
 * The C ABI of <nfy/nfy.h> from plain C: app ID, notify, callbacks with
 * their strings, observers, unicast errors, the binding variants, and the
 * error codes for null pointers, invalid UTF-8 and invalid JSON.
 *
 * A server must be running. Prints "c abi ok" when every check passed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfy/nfy.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define CHECK_RESULT(call, expected)                                                      \
    do {                                                                                  \
        int r_ = (call);                                                                  \
        if (r_ != (expected)) {                                                           \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d\n", __FILE__,        \
                    __LINE__, #call, r_, nfy_result_text(r_), (int)(expected));           \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* One received event at a time, handed from the library's thread. */
struct event {
    char kind[16];
    void *data;
    char from[80], to[80], id[80], param[256];
    unsigned flags;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct event events[16];
static int count;

static void copy(char *dst, size_t size, const char *src) {
    CHECK(src != NULL);
    CHECK(strlen(src) < size);
    strcpy(dst, src);
}

static void push(const char *kind, void *data, const char *from, const char *to, const char *id,
                 const char *param, unsigned flags) {
    struct event e;
    memset(&e, 0, sizeof e);
    copy(e.kind, sizeof e.kind, kind);
    e.data = data;
    copy(e.from, sizeof e.from, from);
    copy(e.to, sizeof e.to, to);
    copy(e.id, sizeof e.id, id);
    copy(e.param, sizeof e.param, param);
    e.flags = flags;
    pthread_mutex_lock(&lock);
    CHECK(count < 16);
    events[count++] = e;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* The next event, waiting at most `ms` milliseconds; 0 when none came. */
static int next_within(struct event *out, long ms) {
    struct timespec deadline;
    int got = 0;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&lock);
    while (count == 0) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) != 0) break;
    }
    if (count > 0) {
        *out = events[0];
        memmove(events, events + 1, (size_t)(count - 1) * sizeof events[0]);
        --count;
        got = 1;
    }
    pthread_mutex_unlock(&lock);
    return got;
}

static struct event next(void) {
    struct event e;
    CHECK(next_within(&e, 10000));
    return e;
}

static void quiet(void) {
    struct event e;
    CHECK(!next_within(&e, 300));
}

static void on_notify(void *data, const char *from, const char *to, const char *id,
                      const char *param, unsigned flags) {
    push("notify", data, from, to, id, param, flags);
}

static void on_error(void *data, const char *from, const char *to, const char *id,
                     const char *param, unsigned flags) {
    push("error", data, from, to, id, param, flags);
}

static void on_observe(void *data, const char *from, const char *to, const char *id,
                       unsigned flags) {
    push("observe", data, from, to, id, "", flags);
}

/* A binding's own callback type, called through its invoke function. */
typedef void (*binding_cb)(const char *what);
static void binding_target(const char *what) { push("binding", NULL, what, "", "", "", 0); }

static int invoke(nfy_fn callback, void *data, const char *from, const char *to, const char *id,
                  const char *param, unsigned flags) {
    (void)from, (void)to, (void)param, (void)flags;
    ((binding_cb)(void (*)(void))callback)(id);
    return data == NULL ? 0 : 7; /* non-NULL data: report a failure */
}

static int invoke_observer(nfy_fn callback, void *data, const char *from, const char *to,
                           const char *id, unsigned flags) {
    (void)data, (void)from, (void)to, (void)flags;
    ((binding_cb)(void (*)(void))callback)(id);
    return 0;
}

int main(void) {
    static int tag;
    char buf[8];
    struct event e, f;

    CHECK(strcmp(nfy_version(), "") != 0);
    CHECK(strncmp(nfy_result_text(NFY_ERR_CONFIG_SYNTAX), "NOTIFY_ERR_CONFIG_SYNTAX", 24) == 0);
    CHECK(strcmp(nfy_result_text(42), "unknown result code") == 0);

    /* The app ID, snprintf-style. */
    CHECK(nfy_get_app_id(NULL, 0) == 0);
    CHECK_RESULT(nfy_notify("x", "n", "{}", 0, NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_set_app_id(NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_set_app_id("\xff"), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_set_app_id("1"), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_set_app_id("c-app-with-a-long-name"), NFY_OK);
    CHECK(nfy_get_app_id(buf, sizeof buf) == 22);
    CHECK(strcmp(buf, "c-app-w") == 0);
    CHECK(nfy_get_app_id(NULL, 5) == 22);
    CHECK_RESULT(nfy_set_app_id("c-app"), NFY_OK);
    CHECK(nfy_get_app_id(buf, sizeof buf) == 5);
    CHECK(strcmp(buf, "c-app") == 0);

    /* Bad arguments: identifiers -> NFY_ERR_APP_ID, parameter -> NFY_ERR_SERVER. */
    CHECK_RESULT(nfy_notify(NULL, "n", "{}", 0, NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_notify("x", NULL, "{}", 0, NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_notify("x\xc3", "n", "{}", 0, NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_notify("x", "n", "{}", 0, "\xe2\x82"), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_notify("x", "n", "{\"a\":\"\xff\"}", 0, NULL), NFY_ERR_SERVER);
    CHECK_RESULT(nfy_notify("x", "n", "{\"a\":", 0, NULL), NFY_ERR_SERVER);
    CHECK_RESULT(nfy_notify("x", "n", "1 2", 0, NULL), NFY_ERR_SERVER);
    CHECK_RESULT(nfy_register(NULL, on_notify, NULL, 0, NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_register("n", on_notify, NULL, 0, "\xff"), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_unregister(NULL, on_notify, NULL, NULL), NFY_ERR_APP_ID);
    CHECK_RESULT(nfy_register_with("n", (nfy_fn)binding_target, NULL, NULL, 0, NULL),
                 NFY_ERR_SERVER);

    /* A notification to ourselves; NULL `to` is the app ID, NULL param is null. */
    CHECK_RESULT(nfy_register("hello", on_notify, &tag, 5, NULL), NFY_OK);
    CHECK_RESULT(nfy_notify("c-app", "hello", "{\"s\":\"\\u00e9\",\"n\":[1,2]}", 9, NULL), NFY_OK);
    e = next();
    CHECK(strcmp(e.kind, "notify") == 0);
    CHECK(e.data == &tag);
    CHECK(strcmp(e.from, "c-app") == 0);
    CHECK(strcmp(e.to, "c-app") == 0);
    CHECK(strcmp(e.id, "hello") == 0);
    CHECK(strcmp(e.param, "{\"s\":\"\\u00e9\",\"n\":[1,2]}") == 0); /* as sent */
    CHECK(e.flags == 9);
    CHECK_RESULT(nfy_notify("c-app", "hello", NULL, 0, "impostor"), NFY_OK);
    e = next();
    CHECK(strcmp(e.from, "impostor") == 0);
    CHECK(strcmp(e.param, "null") == 0);

    /* Observer and unicast error. */
    CHECK_RESULT(nfy_register_observer(on_observe, &tag), NFY_OK);
    CHECK_RESULT(nfy_register_unicast_error(on_error, NULL), NFY_OK);
    CHECK_RESULT(nfy_notify("nobody", "hello", "[true]", 1, NULL), NFY_OK);
    e = next();
    f = next();
    if (strcmp(e.kind, "observe") == 0) {
        struct event t = e;
        e = f;
        f = t;
    }
    CHECK(strcmp(e.kind, "error") == 0);
    CHECK(strcmp(e.to, "nobody") == 0);
    CHECK(strcmp(e.param, "[true]") == 0);
    CHECK(strcmp(f.kind, "observe") == 0);
    CHECK(f.data == &tag);
    CHECK(strcmp(f.to, "") == 0);
    CHECK_RESULT(nfy_unregister_observer(on_observe, NULL), NFY_OK);
    CHECK_RESULT(nfy_register_unicast_error(NULL, NULL), NFY_OK); /* removes all */
    CHECK_RESULT(nfy_notify("nobody", "hello", "0", 0, NULL), NFY_OK);
    quiet();

    /* Unregister with filters; a NULL callback to register discards. */
    CHECK_RESULT(nfy_unregister("hello", on_error, NULL, NULL), NFY_OK);
    CHECK_RESULT(nfy_unregister("hello", on_notify, &buf, NULL), NFY_OK);
    CHECK_RESULT(nfy_notify("c-app", "hello", "1", 0, NULL), NFY_OK);
    CHECK(next().data == &tag);
    CHECK_RESULT(nfy_register("hello", NULL, NULL, 0, NULL), NFY_OK);
    CHECK_RESULT(nfy_notify("c-app", "hello", "2", 0, NULL), NFY_OK);
    quiet();

    /* The binding variants: the library calls invoke with the callback;
     * unregister filters compare the callback itself. */
    CHECK_RESULT(nfy_register_with("bound", (nfy_fn)binding_target, NULL, invoke, 0, "b"), NFY_OK);
    CHECK_RESULT(nfy_register_with("bound", (nfy_fn)binding_target, &tag, invoke, 0, "c"), NFY_OK);
    CHECK_RESULT(nfy_register_observer_with((nfy_fn)binding_target, NULL, invoke_observer), NFY_OK);
    CHECK_RESULT(nfy_notify("b", "bound", "{}", 0, NULL), NFY_OK);
    e = next();
    f = next();
    CHECK(strcmp(e.kind, "binding") == 0 && strcmp(e.from, "bound") == 0);
    CHECK(strcmp(f.kind, "binding") == 0 && strcmp(f.from, "bound") == 0);
    CHECK_RESULT(nfy_register_observer_with(NULL, NULL, NULL), NFY_OK); /* removes all */
    /* invoke reports a failure for "c": logged, and the app goes on. */
    CHECK_RESULT(nfy_notify("c", "bound", "{}", 0, NULL), NFY_OK);
    CHECK(strcmp(next().kind, "binding") == 0);
    CHECK_RESULT(nfy_unregister("bound", (nfy_notify_cb)(void (*)(void))binding_target, NULL, "b"),
                 NFY_OK);
    CHECK_RESULT(nfy_unregister("bound", NULL, &tag, "c"), NFY_OK);
    CHECK_RESULT(nfy_register_unicast_error_with((nfy_fn)binding_target, NULL, invoke), NFY_OK);
    CHECK_RESULT(nfy_notify("b", "bound", "{}", 0, NULL), NFY_OK);
    e = next();
    CHECK(strcmp(e.kind, "binding") == 0 && strcmp(e.from, "bound") == 0);
    CHECK_RESULT(nfy_unregister_unicast_error((nfy_notify_cb)(void (*)(void))binding_target, NULL),
                 NFY_OK);
    CHECK_RESULT(nfy_notify("c", "bound", "{}", 0, NULL), NFY_OK);
    quiet();

    printf("c abi ok\n");
    return 0;
}
