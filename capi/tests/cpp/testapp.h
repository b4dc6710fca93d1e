// What the test apps share: every callback records an Event in one
// mailbox, which the app's main thread reads with a timeout; sync()
// round-trips the server.
#ifndef NFY_TEST_TESTAPP_H
#define NFY_TEST_TESTAPP_H

#include <ipc/notify.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "check.h"

struct Event {
   std::string kind; // "notify", "error", "observe", or a callback's own
   void *data;
   std::string from, to, id;
   std::string param; // the parameter's dump(); "" for observers
   unsigned flags;
};

inline std::ostream &operator<<(std::ostream &o, const Event &e) {
   return o << e.kind << " " << e.from << "->" << e.to << " " << e.id << " " << e.param
            << " flags=" << e.flags;
}

class Mailbox {
   std::mutex m_;
   std::condition_variable cv_;
   std::deque<Event> q_;

 public:
   void push(const Event &e) {
      std::lock_guard<std::mutex> l(m_);
      q_.push_back(e);
      cv_.notify_all();
   }

   // The next event; fails the app after 10 s without one.
   Event next(const char *waiting_for, const char *file, int line) {
      std::unique_lock<std::mutex> l(m_);
      if (!cv_.wait_for(l, std::chrono::seconds(10), [this] { return !q_.empty(); })) {
         check_fail(std::string("timed out waiting for ") + waiting_for, file, line);
      }
      Event e = q_.front();
      q_.pop_front();
      return e;
   }

   // Fails the app if an event arrives within `ms` milliseconds.
   void quiet(int ms, const char *file, int line) {
      std::unique_lock<std::mutex> l(m_);
      if (cv_.wait_for(l, std::chrono::milliseconds(ms), [this] { return !q_.empty(); })) {
         std::ostringstream o;
         o << "unexpected event: " << q_.front();
         check_fail(o.str(), file, line);
      }
   }
};

inline Mailbox &mailbox() {
   static Mailbox m;
   return m;
}

#define NEXT(what) mailbox().next(what, __FILE__, __LINE__)
#define QUIET() mailbox().quiet(200, __FILE__, __LINE__)

inline void record(const char *kind, void *data, const std::string &from, const std::string &to,
                   const std::string &id, const std::string &param, unsigned flags) {
   Event e;
   e.kind = kind;
   e.data = data;
   e.from = from;
   e.to = to;
   e.id = id;
   e.param = param;
   e.flags = flags;
   mailbox().push(e);
}

inline void on_notify(void *data, const std::string &from, const std::string &to,
                      const std::string &id, const vfiipc::JSObject &param, unsigned flags) {
   record("notify", data, from, to, id, param.dump(), flags);
}

inline void on_error(void *data, const std::string &from, const std::string &to,
                     const std::string &id, const vfiipc::JSObject &param, unsigned flags) {
   record("error", data, from, to, id, param.dump(), flags);
}

inline void on_observe(void *data, const std::string &from, const std::string &to,
                       const std::string &id, unsigned flags) {
   record("observe", data, from, to, id, "", flags);
}

inline void on_sync(void *, const std::string &, const std::string &, const std::string &,
                    const vfiipc::JSObject &, unsigned) {
   record("sync", 0, "", "", "", "", 0);
}

// Round-trips the server through a notification to ourselves: everything
// this process sent before (registrations included) has been handled.
inline void sync_with_server() {
   CHECK_EQ(vfiipc::ipcRegisterNotificationCB("sync", on_sync, 0), vfiipc::NOTIFY_OK);
   CHECK_EQ(vfiipc::ipcNotify(vfiipc::ipcGetAppID(), "sync", vfiipc::JSObject()),
            vfiipc::NOTIFY_OK);
   Event e = NEXT("sync");
   CHECK_EQ(e.kind, "sync");
   CHECK_EQ(vfiipc::ipcUnregisterNotificationCB("sync", on_sync, 0), vfiipc::NOTIFY_OK);
}

#endif
