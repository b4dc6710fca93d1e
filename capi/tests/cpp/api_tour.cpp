// Every function of <ipc/notify.h> and every result code, in one terminal
// app that plays several apps at once through impersonation (`to` and
// `from`), as a multi-application controller does.
//
// Usage: api_tour BAD_CONFIG MISSING_CONFIG    (a server must be running)
// Prints "tour ok" and exits 0 when every check passed.

#include <stdio.h>
#include <string.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "testapp.h"

using namespace vfiipc;

static const std::string APP_ID = "tour";

// Distinct data pointers, to tell registrations apart.
static int low, high, tie, other;

// Unregisters itself from inside its own run: must not deadlock.
static void once_cb(void *data, const std::string &from, const std::string &to,
                    const std::string &id, const JSObject &param, unsigned flags) {
   CHECK_EQ(ipcUnregisterNotificationCB(id, once_cb, data, to), NOTIFY_OK);
   record("once", data, from, to, id, param.dump(), flags);
}

// Runs long enough for the main thread to unregister it meanwhile.
static std::atomic<bool> slow_started(false), slow_finished(false);
static void slow_cb(void *, const std::string &, const std::string &, const std::string &,
                    const JSObject &, unsigned) {
   slow_started = true;
   std::this_thread::sleep_for(std::chrono::milliseconds(300));
   slow_finished = true;
}

static void throwing_cb(void *data, const std::string &from, const std::string &to,
                        const std::string &id, const JSObject &param, unsigned flags) {
   record("throwing", data, from, to, id, param.dump(), flags);
   throw std::runtime_error("a callback that throws");
}

// Two registrations whose callbacks each wait for the other to start: only
// concurrent callbacks can both finish.
static std::mutex meet_m;
static std::condition_variable meet_cv;
static int met = 0;
static void meet_cb(void *data, const std::string &from, const std::string &to,
                    const std::string &id, const JSObject &param, unsigned flags) {
   std::unique_lock<std::mutex> l(meet_m);
   ++met;
   meet_cv.notify_all();
   bool both = meet_cv.wait_for(l, std::chrono::seconds(10), [] { return met >= 2; });
   l.unlock();
   record(both ? "met" : "alone", data, from, to, id, param.dump(), flags);
}

static JSObject param_with(const char *key, long long value) {
   JSObject o;
   o(key) = value;
   return o;
}

int main(int argc, char **argv) {
   CHECK(argc == 3);
   const char *bad_config = argv[1];
   const char *missing_config = argv[2];

   // No app ID yet: NOTIFY_ERR_APP_ID.
   CHECK_EQ(ipcGetAppID(), "");
   CHECK_EQ(ipcNotify("x", "n", JSObject()), NOTIFY_ERR_APP_ID);
   CHECK_EQ(ipcRegisterNotificationCB("n", on_notify, 0), NOTIFY_ERR_APP_ID);
   // Invalid app IDs are ignored.
   ipcSetAppID("*");
   ipcSetAppID(std::string("a\0b", 3));
   CHECK_EQ(ipcGetAppID(), "");
   ipcSetAppID(APP_ID.c_str());
   CHECK_EQ(ipcGetAppID(), APP_ID);
   // An identifier C cannot carry, or an invalid one: NOTIFY_ERR_APP_ID.
   CHECK_EQ(ipcNotify(std::string("x\0y", 3), "n", JSObject()), NOTIFY_ERR_APP_ID);
   CHECK_EQ(ipcNotify("1", "", JSObject()), NOTIFY_ERR_APP_ID);
   CHECK_EQ(ipcNotify("x", "n", JSObject(), 0, "*"), NOTIFY_ERR_APP_ID);

   // Unicast to ourselves, with flags, data and a parameter.
   CHECK_EQ(ipcRegisterNotificationCB("greet", on_notify, &other), NOTIFY_OK);
   JSObject hello;
   hello("text") = "grüß \"dich\"\n";
   hello("n") = -9223372036854775807LL - 1;
   CHECK_EQ(ipcNotify(APP_ID, "greet", hello, 0xdeadbeefu), NOTIFY_OK);
   Event e = NEXT("greet");
   CHECK_EQ(e.kind, "notify");
   CHECK_EQ(e.data, static_cast<void *>(&other));
   CHECK_EQ(e.from, APP_ID);
   CHECK_EQ(e.to, APP_ID);
   CHECK_EQ(e.id, "greet");
   CHECK_EQ(e.param, hello.dump());
   CHECK_EQ(e.flags, 0xdeadbeefu);

   // Impersonation: sent as "ghost".
   CHECK_EQ(ipcNotify(APP_ID, "greet", JSObject(), 0, "ghost"), NOTIFY_OK);
   e = NEXT("greet from ghost");
   CHECK_EQ(e.from, "ghost");
   CHECK_EQ(e.param, "null");

   // "1": the best priority wins; ties go to the most recent registration.
   CHECK_EQ(ipcRegisterNotificationCB("job", on_notify, &low, 1, "w-low"), NOTIFY_OK);
   CHECK_EQ(ipcRegisterNotificationCB("job", on_notify, &high, 9, "w-high"), NOTIFY_OK);
   CHECK_EQ(ipcRegisterNotificationCB("job", on_notify, &tie, 9, "w-tie"), NOTIFY_OK);
   CHECK_EQ(ipcNotify("1", "job", param_with("k", 1)), NOTIFY_OK);
   e = NEXT("job for the tie");
   CHECK_EQ(e.data, static_cast<void *>(&tie));
   CHECK_EQ(e.to, "1");
   QUIET();
   // Re-registering replaces and makes w-high the most recent of the two.
   CHECK_EQ(ipcRegisterNotificationCB("job", on_notify, &high, 9, "w-high"), NOTIFY_OK);
   CHECK_EQ(ipcNotify("1", "job", param_with("k", 2)), NOTIFY_OK);
   CHECK_EQ(NEXT("job for high").data, static_cast<void *>(&high));
   // Unicast to one app of the three.
   CHECK_EQ(ipcNotify("w-low", "job", param_with("k", 3)), NOTIFY_OK);
   e = NEXT("job for low");
   CHECK_EQ(e.data, static_cast<void *>(&low));
   CHECK_EQ(e.to, "w-low");

   // "*": every registration, addressed as "*".
   CHECK_EQ(ipcNotify("*", "job", param_with("k", 4)), NOTIFY_OK);
   int seen = 0;
   for (int i = 0; i < 3; ++i) {
      e = NEXT("broadcast");
      CHECK_EQ(e.to, "*");
      if (e.data == &low) seen |= 1;
      if (e.data == &high) seen |= 2;
      if (e.data == &tie) seen |= 4;
   }
   CHECK_EQ(seen, 7);
   QUIET();

   // Observers see every delivery (resolved receiver, no parameter), and
   // a notification nobody received with an empty receiver; the unicast
   // error comes back to its sender with the original notification.
   CHECK_EQ(ipcRegisterObserver(on_observe, &other), NOTIFY_OK);
   CHECK_EQ(ipcRegisterObserver(on_observe, &other), NOTIFY_OK); // added once
   CHECK_EQ(ipcRegisterUnicastError(on_error, &low), NOTIFY_OK);
   CHECK_EQ(ipcNotify("w-low", "job", param_with("k", 5), 3), NOTIFY_OK);
   Event a = NEXT("delivery"), b = NEXT("observation");
   if (a.kind == "observe") std::swap(a, b);
   CHECK_EQ(a.kind, "notify");
   CHECK_EQ(b.kind, "observe");
   CHECK_EQ(b.data, static_cast<void *>(&other));
   CHECK_EQ(b.from, APP_ID);
   CHECK_EQ(b.to, "w-low");
   CHECK_EQ(b.id, "job");
   CHECK_EQ(b.flags, 3u);
   CHECK_EQ(ipcNotify("nobody", "job", param_with("k", 6), 4), NOTIFY_OK);
   a = NEXT("unicast error");
   b = NEXT("observation of nothing");
   if (a.kind == "observe") std::swap(a, b);
   CHECK_EQ(a.kind, "error");
   CHECK_EQ(a.data, static_cast<void *>(&low));
   CHECK_EQ(a.from, APP_ID);
   CHECK_EQ(a.to, "nobody");
   CHECK_EQ(a.id, "job");
   CHECK_EQ(a.param, "{\"k\":6}");
   CHECK_EQ(a.flags, 4u);
   CHECK_EQ(b.kind, "observe");
   CHECK_EQ(b.to, "");
   QUIET();
   // Broadcasts never come back as unicast errors.
   CHECK_EQ(ipcNotify("*", "nothing-here", JSObject()), NOTIFY_OK);
   CHECK_EQ(NEXT("observation of the broadcast").kind, "observe");
   QUIET();
   // Filters: another data pointer keeps them; the right one removes them.
   CHECK_EQ(ipcUnregisterObserver(on_observe, &low), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterUnicastError(on_error, &other), NOTIFY_OK);
   CHECK_EQ(ipcNotify("nobody", "job", JSObject()), NOTIFY_OK);
   NEXT("error or observation");
   NEXT("error or observation");
   CHECK_EQ(ipcUnregisterObserver(on_observe, &other), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterUnicastError(on_error, 0), NOTIFY_OK); // NULL data: any
   CHECK_EQ(ipcNotify("nobody", "job", JSObject()), NOTIFY_OK);
   QUIET();

   // The deprecated forms: remove whatever is registered.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
   CHECK_EQ(ipcRegisterObserver(on_observe, &other), NOTIFY_OK);
   CHECK_EQ(ipcRegisterUnicastError(on_error, &low), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterObserver(), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterUnicastError(), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterNotificationCB("job", "w-low"), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterNotificationCB("greet"), NOTIFY_OK);
#pragma GCC diagnostic pop
   CHECK_EQ(ipcNotify("w-low", "job", JSObject()), NOTIFY_OK);
   CHECK_EQ(ipcNotify(APP_ID, "greet", JSObject()), NOTIFY_OK);
   QUIET();

   // Unregister filters on a registration: a wrong callback or data keeps
   // it; a null callback passed to register discards it.
   CHECK_EQ(ipcUnregisterNotificationCB("job", on_error, 0, "w-high"), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterNotificationCB("job", on_notify, &low, "w-high"), NOTIFY_OK);
   CHECK_EQ(ipcNotify("w-high", "job", JSObject()), NOTIFY_OK);
   CHECK_EQ(NEXT("job still registered").data, static_cast<void *>(&high));
   CHECK_EQ(ipcRegisterNotificationCB("job", 0, 0, 0, "w-high"), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterNotificationCB("job", on_notify, &tie, "w-tie"), NOTIFY_OK);
   CHECK_EQ(ipcRegisterUnicastError(on_error, &other), NOTIFY_OK);
   CHECK_EQ(ipcNotify("1", "job", JSObject()), NOTIFY_OK);
   e = NEXT("nobody left for job");
   CHECK_EQ(e.kind, "error");
   CHECK_EQ(e.to, "1");

   // A callback that unregisters itself: no deadlock, no second run.
   CHECK_EQ(ipcRegisterNotificationCB("once", once_cb, &tie, 0, "w-once"), NOTIFY_OK);
   CHECK_EQ(ipcNotify("w-once", "once", JSObject()), NOTIFY_OK);
   CHECK_EQ(NEXT("once").kind, "once");
   CHECK_EQ(ipcNotify("w-once", "once", JSObject()), NOTIFY_OK);
   CHECK_EQ(NEXT("once is gone").kind, "error");

   // Unregister returns after the running callback finished.
   CHECK_EQ(ipcRegisterNotificationCB("slow", slow_cb, 0), NOTIFY_OK);
   CHECK_EQ(ipcNotify(APP_ID, "slow", JSObject()), NOTIFY_OK);
   for (int i = 0; i < 1000 && !slow_started; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
   }
   CHECK(slow_started);
   CHECK_EQ(ipcUnregisterNotificationCB("slow", slow_cb, 0), NOTIFY_OK);
   CHECK(slow_finished);

   // Callbacks of different registrations run concurrently.
   CHECK_EQ(ipcRegisterNotificationCB("meet", meet_cb, &low, 0, "m1"), NOTIFY_OK);
   CHECK_EQ(ipcRegisterNotificationCB("meet", meet_cb, &high, 0, "m2"), NOTIFY_OK);
   CHECK_EQ(ipcNotify("*", "meet", JSObject()), NOTIFY_OK);
   CHECK_EQ(NEXT("meeting").kind, "met");
   CHECK_EQ(NEXT("meeting").kind, "met");

   // An exception leaving a callback is stopped; the app goes on.
   CHECK_EQ(ipcRegisterNotificationCB("throw", throwing_cb, 0), NOTIFY_OK);
   CHECK_EQ(ipcNotify(APP_ID, "throw", param_with("n", 1)), NOTIFY_OK);
   CHECK_EQ(NEXT("first throw").param, "{\"n\":1}");
   CHECK_EQ(ipcNotify(APP_ID, "throw", param_with("n", 2)), NOTIFY_OK);
   CHECK_EQ(NEXT("second throw").param, "{\"n\":2}");

   // The in-process server: configuration errors, and another server
   // already running (the test's).
   CHECK_EQ(ipcNotificationServer(bad_config), NOTIFY_ERR_CONFIG_SYNTAX);
   CHECK_EQ(ipcNotificationServer(missing_config), NOTIFY_ERR_CONFIG_FILE);
   CHECK_EQ(ipcNotificationServer(static_cast<const char *>(0)), NOTIFY_ERR_SERVER);
   CHECK_EQ(ipcNotificationServer(), NOTIFY_ERR_SERVER);
   // The client still works.
   CHECK_EQ(ipcNotify("nobody", "job", JSObject()), NOTIFY_OK);
   CHECK_EQ(NEXT("still connected").kind, "error");

   printf("tour ok\n");
   return 0;
}
