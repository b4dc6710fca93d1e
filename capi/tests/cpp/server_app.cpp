// A multi-application controller's start: runs the notification server in
// this process (ipcNotificationServer) and prints the result code when it
// returns, which it does only on error.
//
// Usage: server_app [CONFIG_FILE]        Prints "result N".

#include <stdio.h>

#include <ipc/notify.h>

int main(int argc, char **argv) {
   vfiipc::NotifyResult r =
      argc > 1 ? vfiipc::ipcNotificationServer(argv[1]) : vfiipc::ipcNotificationServer();
   printf("result %d\n", static_cast<int>(r));
   return 0;
}
