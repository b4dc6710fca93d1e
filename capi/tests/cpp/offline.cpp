// A terminal app started while no server runs: every call that needs the
// server returns NOTIFY_ERR_SERVER, promptly; the rest works.
//
// Prints "offline ok".

#include <stdio.h>

#include <chrono>

#include "testapp.h"

using namespace vfiipc;

int main() {
   std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
   ipcSetAppID("offline");
   CHECK_EQ(ipcGetAppID(), "offline");
   CHECK_EQ(ipcNotify("x", "n", JSObject()), NOTIFY_ERR_SERVER);
   CHECK_EQ(ipcNotify("*", "n", JSObject(), 0, "other"), NOTIFY_ERR_SERVER);
   // Registrations are kept (made when the server comes) but reported.
   CHECK_EQ(ipcRegisterNotificationCB("n", on_notify, NULL), NOTIFY_ERR_SERVER);
   CHECK_EQ(ipcRegisterObserver(on_observe, NULL), NOTIFY_ERR_SERVER);
   CHECK_EQ(ipcRegisterUnicastError(on_error, NULL), NOTIFY_ERR_SERVER);
   // Removing needs no server.
   CHECK_EQ(ipcUnregisterNotificationCB("n", on_notify, NULL), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterObserver(on_observe, NULL), NOTIFY_OK);
   CHECK_EQ(ipcUnregisterUnicastError(on_error, NULL), NOTIFY_OK);
   // Without an app ID the app ID is the problem, server or not.
   ipcSetAppID("");
   CHECK_EQ(ipcNotify("x", "n", JSObject()), NOTIFY_ERR_APP_ID);
   long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start).count();
   CHECK(ms < 5000);
   printf("offline ok\n");
   return 0;
}
