/*
 * nfy.h - the C ABI of libvfiipc, nfy's client library.
 *
 * A small, stable C interface to the nfy notification service, for C
 * programs and for bindings of other languages. The C++ headers
 * <ipc/notify.h> and <ipc/jsobject.h> (the drop-in replacement of the
 * vendor's libvfiipc API) are written on top of it.
 *
 * Link with: -lvfiipc -pthread -lrt (pkg-config: vfiipc)
 *
 * The library finds the server as every nfy client does: the Unix socket
 * NFY_SOCKET (default $XDG_RUNTIME_DIR/nfy/notify.sock, else
 * /tmp/nfy-<uid>/notify.sock; the systemd service's /run/nfy/notify.sock
 * instead when only that socket exists), then TCP 127.0.0.1:NFY_PORT
 * (default 5899).
 * The process-wide connection is made on the first call and re-made by
 * itself after a server restart, re-establishing every registration.
 *
 * Threads: every function may be called from any thread, callbacks
 * included. Callbacks run on the library's threads, never on the caller's;
 * different registrations run concurrently, one registration's
 * notifications run one after the other, in the order sent.
 *
 * Strings: every string argument is NUL-terminated UTF-8. A string passed
 * to a callback is owned by the library and valid only until the callback
 * returns (copy it to keep it).
 *
 * Pointer arguments: where this file says "NULL: ..." a null pointer has
 * that meaning; any other null pointer, and any string that is not UTF-8,
 * makes the call return an error code (NFY_ERR_APP_ID for identifiers,
 * NFY_ERR_SERVER for a parameter) and do nothing. An internal error never
 * crosses into the caller: the call logs it and returns NFY_ERR_SERVER.
 *
 * Callbacks must not unwind (no C++ exception may leave one): the library
 * aborts the process if one does. <ipc/notify.h> catches exceptions of
 * C++ callbacks for you.
 */
#ifndef NFY_NFY_H
#define NFY_NFY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes, the same values as vfiipc::NotifyResult. */
enum nfy_result {
    NFY_OK = 0,                /* no error */
    NFY_ERR_SERVER = -1,       /* the notification server is not running */
    NFY_ERR_APP_ID = -2,       /* no app ID set (or an invalid identifier) */
    NFY_ERR_PERMISSION = -3,   /* no permission to create or connect to the local socket */
    NFY_ERR_CONFIG_FILE = -4,  /* the configuration file is not readable */
    NFY_ERR_CONFIG_SYNTAX = -5 /* the configuration file is invalid */
};

/* The longest app ID or notification ID, in bytes. */
#define NFY_MAX_ID_LEN 64

/*
 * A notification callback (also the unicast-error callback): data as
 * registered, the sender's app ID, the destination as sent (an app ID, "1"
 * or "*"), the notification ID, the parameter as JSON text, the flags.
 */
typedef void (*nfy_notify_cb)(void *data, const char *from, const char *to,
                              const char *notification_id,
                              const char *param_json, unsigned flags);

/*
 * An observer callback: called for every delivery the server makes, with
 * the resolved receiver app ID ("" when nothing received it); never the
 * parameter.
 */
typedef void (*nfy_observer_cb)(void *data, const char *from, const char *to,
                                const char *notification_id, unsigned flags);

/* The description of a result code, e.g. "NOTIFY_ERR_SERVER: notification
 * server is not running" (a static string; "unknown result code" for any
 * other value). */
const char *nfy_result_text(int result);

/* The library's version, e.g. "0.1.0" (a static string). */
const char *nfy_version(void);

/*
 * Sets the process's app ID: the sender of its notifications and the
 * default receiver of its registrations. "" clears it. An invalid ID ("1",
 * "*", longer than NFY_MAX_ID_LEN, control characters) returns
 * NFY_ERR_APP_ID and changes nothing.
 */
int nfy_set_app_id(const char *app_id);

/*
 * Copies the app ID ("" when none) into buf, NUL-terminated and truncated
 * to size - 1 bytes, and returns its length in bytes (like snprintf: a
 * return value >= size means it was truncated). buf may be NULL when size
 * is 0.
 */
size_t nfy_get_app_id(char *buf, size_t size);

/*
 * Sends notification_id to `to`: an app ID, "1" (exactly one receiver:
 * the best priority, ties to the most recent registration) or "*"
 * (broadcast). param_json: one JSON value as text (NULL: null). from:
 * impersonate this app ID (NULL or "": the app ID set). No app ID and no
 * from: NFY_ERR_APP_ID. Server not reachable: NFY_ERR_SERVER. Text that
 * is not one JSON value: NFY_ERR_SERVER, nothing sent.
 */
int nfy_notify(const char *to, const char *notification_id,
               const char *param_json, unsigned flags, const char *from);

/*
 * Registers cb for notification_id sent to `to` (NULL or "": the app ID)
 * with priority (higher wins for "1" and unicasts). Replaces an earlier
 * registration of the same (notification_id, to); when it returns, the
 * replaced callback has finished. cb NULL: discards that registration.
 * While the server is down the registration is kept, established when it
 * is back, and NFY_ERR_SERVER is returned.
 */
int nfy_register(const char *notification_id, nfy_notify_cb cb, void *data,
                 int priority, const char *to);

/*
 * Removes the registration of (notification_id, to) (to NULL or "": the
 * app ID) if it matches cb and data (cb NULL: any callback; data NULL: any
 * data). When it returns, the callback has finished and never runs again;
 * called from that very callback, it returns at once (no deadlock).
 * NFY_OK also when nothing matched.
 */
int nfy_unregister(const char *notification_id, nfy_notify_cb cb, void *data,
                   const char *to);

/*
 * cb runs with the original notification for every unicast this process
 * sent that nobody received. The same (cb, data) twice is added once.
 * cb NULL: removes every unicast-error callback.
 */
int nfy_register_unicast_error(nfy_notify_cb cb, void *data);

/* Removes the unicast-error callbacks matching cb and data (NULL: any). */
int nfy_unregister_unicast_error(nfy_notify_cb cb, void *data);

/*
 * cb runs for every delivery the server makes. The same (cb, data) twice
 * is added once. cb NULL: removes every observer.
 */
int nfy_register_observer(nfy_observer_cb cb, void *data);

/* Removes the observers matching cb and data (NULL: any). */
int nfy_unregister_observer(nfy_observer_cb cb, void *data);

/*
 * Runs the notification server in this process (the same server as
 * notifysvc). config_file: the whitelist configuration (NULL: the default
 * locations /home/sys12/notify.cfg, then /home/sys_ipc/notify.cfg). Returns
 * only on error: NFY_ERR_SERVER (another server runs, or it stopped),
 * NFY_ERR_PERMISSION, NFY_ERR_CONFIG_FILE or NFY_ERR_CONFIG_SYNTAX.
 */
int nfy_notification_server(const char *config_file);

/*
 * For bindings of other languages (<ipc/notify.h> uses these): the
 * callback is the binding's own function, which the library never calls
 * itself; it calls `invoke` with it, and compares (callback, data) with
 * the unregister filters as for the functions above (remove such a
 * registration with nfy_unregister*, casting the callback). invoke returns
 * 0, or nonzero when the callback failed (e.g. threw an exception), which
 * the library logs. callback NULL: as a NULL cb above (discards the
 * registration, removes every unicast-error callback or observer).
 * callback set but invoke NULL: NFY_ERR_SERVER, nothing registered.
 */
typedef void (*nfy_fn)(void);
typedef int (*nfy_notify_invoke)(nfy_fn callback, void *data, const char *from,
                                 const char *to, const char *notification_id,
                                 const char *param_json, unsigned flags);
typedef int (*nfy_observer_invoke)(nfy_fn callback, void *data,
                                   const char *from, const char *to,
                                   const char *notification_id,
                                   unsigned flags);

int nfy_register_with(const char *notification_id, nfy_fn callback, void *data,
                      nfy_notify_invoke invoke, int priority, const char *to);
int nfy_register_unicast_error_with(nfy_fn callback, void *data,
                                    nfy_notify_invoke invoke);
int nfy_register_observer_with(nfy_fn callback, void *data,
                               nfy_observer_invoke invoke);

#ifdef __cplusplus
}
#endif

#endif /* NFY_NFY_H */
