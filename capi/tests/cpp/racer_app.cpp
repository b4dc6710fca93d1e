// The unregister race, from C++: app "racer" registers "x" with priority
// 10. Its callback, on the first "x", waits (so that later unicasts reach
// the app while it runs), then unregisters itself from inside the
// callback. Unicasts the server had already routed to it arrive for a
// registration that is gone: the library must send them back, and the
// server gives them to the next receiver (a lower-priority registration
// of another app for "racer"), never dropping them.
//
// Prints "ready" once registered, "got <n>" for each "x" its callback
// runs for, "bye" after "quit".

#include <stdio.h>
#include <unistd.h>

#include "testapp.h"

using namespace vfiipc;

static std::mutex m;
static std::condition_variable cv;
static bool quitting = false;

static void on_x(void *data, const std::string &, const std::string &to,
                 const std::string &notification_id, const JSObject &param, unsigned) {
   printf("got %lld\n", param("n").getInt64());
   fflush(stdout);
   // Long enough for the sender's next unicasts to be routed here.
   usleep(300 * 1000);
   CHECK_EQ(ipcUnregisterNotificationCB(notification_id, on_x, data, to), NOTIFY_OK);
   printf("unregistered\n");
   fflush(stdout);
}

static void on_quit(void *, const std::string &, const std::string &, const std::string &,
                    const JSObject &, unsigned) {
   std::lock_guard<std::mutex> l(m);
   quitting = true;
   cv.notify_all();
}

int main() {
   ipcSetAppID("racer");
   CHECK_EQ(ipcRegisterNotificationCB("x", on_x, NULL, 10), NOTIFY_OK);
   CHECK_EQ(ipcRegisterNotificationCB("quit", on_quit, NULL), NOTIFY_OK);
   sync_with_server();
   printf("ready\n");
   fflush(stdout);
   std::unique_lock<std::mutex> l(m);
   cv.wait(l, [] { return quitting; });
   printf("bye\n");
   return 0;
}
