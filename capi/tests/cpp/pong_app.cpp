// A terminal app that answers: each "ping" gets a "pong" back to its
// sender with the ping's "seq", its "text" as "echo", the whole parameter
// as "param", the app's ID as "by" and the destination as sent as "to".
// "crash" ends the process inside the callback (before the library can
// acknowledge it); "quit" unregisters its own callback from inside it and
// lets the app exit.
//
// Prints "ready" once its registrations are in force, "bye" at the end.

#include <stdio.h>
#include <unistd.h>

#include "testapp.h"

using namespace vfiipc;

static const std::string APP_ID = "ponger";
static int marker;

static std::mutex quit_m;
static std::condition_variable quit_cv;
static bool quitting = false;

static void on_ping(void *data, const std::string &from, const std::string &to,
                    const std::string &notification_id, const JSObject &param, unsigned flags) {
   CHECK_EQ(data, static_cast<void *>(&marker));
   CHECK_EQ(notification_id, "ping");
   JSObject reply;
   reply("seq") = param("seq").getInt64();
   reply("echo") = param("text").getString();
   reply("param") = param;
   reply("by") = ipcGetAppID();
   reply("to") = to;
   CHECK_EQ(ipcNotify(from, "pong", reply, flags), NOTIFY_OK);
}

static void on_crash(void *, const std::string &, const std::string &, const std::string &,
                     const JSObject &, unsigned) {
   fflush(stdout);
   _exit(3);
}

static void on_quit(void *data, const std::string &, const std::string &to,
                    const std::string &notification_id, const JSObject &, unsigned) {
   CHECK_EQ(ipcUnregisterNotificationCB(notification_id, on_quit, data, to), NOTIFY_OK);
   std::lock_guard<std::mutex> l(quit_m);
   quitting = true;
   quit_cv.notify_all();
}

int main() {
   ipcSetAppID(APP_ID.c_str());
   CHECK_EQ(ipcRegisterNotificationCB("ping", on_ping, &marker), NOTIFY_OK);
   CHECK_EQ(ipcRegisterNotificationCB("crash", on_crash, NULL), NOTIFY_OK);
   CHECK_EQ(ipcRegisterNotificationCB("quit", on_quit, NULL), NOTIFY_OK);
   sync_with_server();
   printf("ready\n");
   fflush(stdout);

   std::unique_lock<std::mutex> l(quit_m);
   quit_cv.wait(l, [] { return quitting; });
   l.unlock();
   CHECK_EQ(ipcUnregisterNotificationCB("ping", on_ping, &marker), NOTIFY_OK);
   printf("bye\n");
   return 0;
}
