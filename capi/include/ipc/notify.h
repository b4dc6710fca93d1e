/*
 * ipc/notify.h - the vfiipc notification API (nfy's libvfiipc).
 *
 * A drop-in replacement of the vendor's header: the same names,
 * signatures, defaults, namespace and result values, so existing terminal
 * applications rebuild unchanged and link with -lvfiipc -pthread -lrt.
 * The functions are inline, over the C ABI of <nfy/nfy.h>; see there for
 * where the server is found, threads, and what the library guarantees.
 *
 * Differences from the original, all on the safe side:
 * - ipcUnregister*() may be called from inside the callback it removes:
 *   it returns at once instead of deadlocking (the callback's own run
 *   completes; no further run starts).
 * - Callbacks run on a fixed pool of library threads (not one thread per
 *   notification); one registration's notifications run one at a time, in
 *   the order sent; different registrations run concurrently.
 * - After a server restart the library reconnects by itself and
 *   re-establishes every registration; calls made meanwhile return
 *   NOTIFY_ERR_SERVER without blocking. A registration made while the
 *   server is down is kept (and NOTIFY_ERR_SERVER returned).
 * - An exception that leaves a callback is caught here and logged by the
 *   library; the application goes on.
 * - A string argument holding a NUL byte, not UTF-8, or an invalid app
 *   ID returns NOTIFY_ERR_APP_ID (ipcSetAppID ignores it).
 */
#ifndef IPC_NOTIFY_H_NFY
#define IPC_NOTIFY_H_NFY

#include <string>
#include <vector>

#include <ipc/jsobject.h>
#include <nfy/nfy.h>

#pragma push_macro("DllSpec")
#undef DllSpec
#if defined _WIN32 && defined VFI_IPC_SHARED_EXPORT
#  define DllSpec __declspec(dllexport)
#elif defined __GNUC__ && defined VFI_IPC_SHARED_EXPORT
#  define DllSpec __attribute__((visibility("default")))
#else
#  define DllSpec
#endif

#ifndef DEPRECATED
#  ifdef __GNUC__
#    define DEPRECATED __attribute__((deprecated))
#  elif defined(_MSC_VER)
#    define DEPRECATED __declspec(deprecated)
#  else
#    define DEPRECATED
#  endif
#endif

/* A null pointer constant that -Wzero-as-null-pointer-constant accepts. */
#if __cplusplus >= 201103L
#  define NFY_NOTIFY_NULL nullptr
#else
#  define NFY_NOTIFY_NULL 0
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#  define NFY_NOTIFY_TRY try {
#  define NFY_NOTIFY_CATCH } catch (...) { return 1; }
#else
#  define NFY_NOTIFY_TRY {
#  define NFY_NOTIFY_CATCH }
#endif

namespace vfiipc {

enum NotifyResult {
   NOTIFY_OK = 0,                /* no error */
   NOTIFY_ERR_SERVER = -1,       /* notification server is not running */
   NOTIFY_ERR_APP_ID = -2,       /* the application ID has not been set yet */
   NOTIFY_ERR_PERMISSION = -3,   /* no permission to create or connect to the notification socket */
   NOTIFY_ERR_CONFIG_FILE = -4,  /* the configuration file could not be opened for reading */
   NOTIFY_ERR_CONFIG_SYNTAX = -5 /* the configuration file contained invalid input */
};

/* A notification (or unicast-error) callback: to is the destination as
 * sent (an app ID, "1" or "*"). Runs on a library thread. */
typedef void (*NotifyCallback)(
   void *data,
   const std::string &from,
   const std::string &to,
   const std::string &notification_id,
   const vfiipc::JSObject &param,
   unsigned flags);

/* An observer: to is the resolved receiver, "" when nothing received it. */
typedef void (*NotifyObserver)(
   void *data,
   const std::string &from,
   const std::string &to,
   const std::string &notification_id,
   unsigned flags);

} /* namespace vfiipc */

/* What the library calls for the C++ callbacks: the strings and the
 * parameter as the C++ types, exceptions stopped here. */
extern "C" inline int nfy_cxx_invoke_notify(nfy_fn callback, void *data, const char *from,
                                            const char *to, const char *notification_id,
                                            const char *param_json, unsigned flags) {
   NFY_NOTIFY_TRY
      vfiipc::JSObject param;
      param.load(param_json);
      reinterpret_cast<vfiipc::NotifyCallback>(callback)(
         data, std::string(from), std::string(to), std::string(notification_id), param, flags);
   NFY_NOTIFY_CATCH
   return 0;
}

extern "C" inline int nfy_cxx_invoke_observer(nfy_fn callback, void *data, const char *from,
                                              const char *to, const char *notification_id,
                                              unsigned flags) {
   NFY_NOTIFY_TRY
      reinterpret_cast<vfiipc::NotifyObserver>(callback)(
         data, std::string(from), std::string(to), std::string(notification_id), flags);
   NFY_NOTIFY_CATCH
   return 0;
}

namespace vfiipc {

namespace notify_detail {

/* False for a string C cannot carry (it holds a NUL byte). */
inline bool fits(const std::string &s) { return s.find('\0') == std::string::npos; }

inline NotifyResult result(int code) { return static_cast<NotifyResult>(code); }

/* Via void (*)(void), the one function type every other converts to
 * without -Wcast-function-type. */
inline nfy_fn erased(NotifyCallback cb) { return reinterpret_cast<nfy_fn>(cb); }
inline nfy_fn erased(NotifyObserver cb) { return reinterpret_cast<nfy_fn>(cb); }
inline nfy_notify_cb filter(NotifyCallback cb) { return reinterpret_cast<nfy_notify_cb>(erased(cb)); }
inline nfy_observer_cb filter(NotifyObserver cb) { return reinterpret_cast<nfy_observer_cb>(erased(cb)); }

} /* namespace notify_detail */

/* Sets the application ID: the sender of notifications and the default
 * receiver of registrations. "" clears it. */
DllSpec inline void ipcSetAppID(const std::string &app_id) {
   if (notify_detail::fits(app_id)) nfy_set_app_id(app_id.c_str());
}

/* The application ID set by ipcSetAppID, "" when none. */
DllSpec inline std::string ipcGetAppID() {
   std::vector<char> buf(NFY_MAX_ID_LEN + 1);
   for (;;) {
      size_t n = nfy_get_app_id(&buf[0], buf.size());
      if (n < buf.size()) return std::string(&buf[0], n);
      buf.resize(n + 1);
   }
}

/* Sends notification_id with param to `to`: an app ID, "1" (exactly one
 * receiver: the highest priority, ties to the most recent registration)
 * or "*" (every receiver). from: impersonate this app ID ("" = the own). */
DllSpec inline enum NotifyResult ipcNotify(const std::string &to,
             const std::string &notification_id,
             const vfiipc::JSObject &param,
             unsigned flags = 0,
             const std::string &from = "") {
   if (!notify_detail::fits(to) || !notify_detail::fits(notification_id) ||
       !notify_detail::fits(from)) {
      return NOTIFY_ERR_APP_ID;
   }
   std::string text;
   param.dump(text);
   return notify_detail::result(
      nfy_notify(to.c_str(), notification_id.c_str(), text.c_str(), flags, from.c_str()));
}

/* Registers cb for notification_id sent to `to` ("" = the own app ID);
 * replaces an earlier registration of the same (notification_id, to).
 * cb NULL discards the registration. */
DllSpec inline enum NotifyResult ipcRegisterNotificationCB(const std::string &notification_id,
                                                    NotifyCallback cb, void *data,
                                                    int priority = 0,
                                                    const std::string &to = "") {
   if (!notify_detail::fits(notification_id) || !notify_detail::fits(to)) return NOTIFY_ERR_APP_ID;
   if (!cb) {
      return notify_detail::result(
         nfy_register_with(notification_id.c_str(), NFY_NOTIFY_NULL, data, NFY_NOTIFY_NULL,
                           priority, to.c_str()));
   }
   return notify_detail::result(nfy_register_with(notification_id.c_str(),
                                                  notify_detail::erased(cb), data,
                                                  nfy_cxx_invoke_notify, priority, to.c_str()));
}

/* Removes the registration of (notification_id, to) if it matches cb and
 * data (NULL: any). When it returns, the callback has finished and is
 * never called again; called from that callback, it returns at once. */
DllSpec inline enum NotifyResult ipcUnregisterNotificationCB(const std::string &notification_id,
                                                      NotifyCallback cb, void *data = NFY_NOTIFY_NULL,
                                                      const std::string &to = "") {
   if (!notify_detail::fits(notification_id) || !notify_detail::fits(to)) return NOTIFY_ERR_APP_ID;
   return notify_detail::result(nfy_unregister(notification_id.c_str(),
                                               notify_detail::filter(cb), data, to.c_str()));
}

/* Same as ipcRegisterNotificationCB(notification_id, 0, 0, 0, to). */
DEPRECATED inline enum NotifyResult ipcUnregisterNotificationCB(const std::string &notification_id,
                                                               const std::string &to = "") {
   return ipcUnregisterNotificationCB(notification_id, NFY_NOTIFY_NULL, NFY_NOTIFY_NULL, to);
}

/* cb runs for each unicast this process sent that nobody received.
 * cb NULL removes every unicast-error callback. */
DllSpec inline enum NotifyResult ipcRegisterUnicastError(NotifyCallback cb, void *data) {
   if (!cb) return notify_detail::result(nfy_register_unicast_error_with(NFY_NOTIFY_NULL, data, NFY_NOTIFY_NULL));
   return notify_detail::result(
      nfy_register_unicast_error_with(notify_detail::erased(cb), data, nfy_cxx_invoke_notify));
}

DllSpec inline enum NotifyResult ipcUnregisterUnicastError(NotifyCallback cb, void *data) {
   return notify_detail::result(nfy_unregister_unicast_error(notify_detail::filter(cb), data));
}

/* Same as ipcRegisterUnicastError(0, 0). */
DEPRECATED inline enum NotifyResult ipcUnregisterUnicastError() {
   return ipcRegisterUnicastError(NFY_NOTIFY_NULL, NFY_NOTIFY_NULL);
}

/* cb runs for every delivery the server makes. cb NULL removes every
 * observer. */
DllSpec inline enum NotifyResult ipcRegisterObserver(NotifyObserver cb, void *data) {
   if (!cb) return notify_detail::result(nfy_register_observer_with(NFY_NOTIFY_NULL, data, NFY_NOTIFY_NULL));
   return notify_detail::result(
      nfy_register_observer_with(notify_detail::erased(cb), data, nfy_cxx_invoke_observer));
}

DllSpec inline enum NotifyResult ipcUnregisterObserver(NotifyObserver cb, void *data) {
   return notify_detail::result(nfy_unregister_observer(notify_detail::filter(cb), data));
}

/* Same as ipcRegisterObserver(0, 0). */
DEPRECATED inline enum NotifyResult ipcUnregisterObserver() {
   return ipcRegisterObserver(NFY_NOTIFY_NULL, NFY_NOTIFY_NULL);
}

/* Runs the notification server in this process with the default
 * configuration (/home/sys12/notify.cfg, then /home/sys_ipc/notify.cfg).
 * Returns only on error. */
DllSpec inline enum NotifyResult ipcNotificationServer() {
   return notify_detail::result(nfy_notification_server(NFY_NOTIFY_NULL));
}

/* The same with this whitelist configuration file (NULL: the default). */
DllSpec inline enum NotifyResult ipcNotificationServer(const char *config_file) {
   return notify_detail::result(nfy_notification_server(config_file));
}

} /* namespace vfiipc */

#undef NFY_NOTIFY_NULL
#undef NFY_NOTIFY_TRY
#undef NFY_NOTIFY_CATCH
#undef DllSpec
#pragma pop_macro("DllSpec")

#endif /* IPC_NOTIFY_H_NFY */
