// A terminal app that asks: sends COUNT "ping"s to TARGET and checks each
// "pong" (in order, the parameter echoed exactly), then, with "quit", tells
// TARGET to quit.
//
// Usage: ping_app COUNT TARGET [quit]        Prints "done".

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testapp.h"

using namespace vfiipc;

int main(int argc, char **argv) {
   CHECK(argc >= 3);
   long count = atol(argv[1]);
   std::string target = argv[2];
   bool quit = argc > 3 && strcmp(argv[3], "quit") == 0;

   ipcSetAppID("pinger");
   CHECK_EQ(ipcRegisterNotificationCB("pong", on_notify, NULL), NOTIFY_OK);
   CHECK_EQ(ipcRegisterUnicastError(on_error, NULL), NOTIFY_OK);

   const char *text = "h\xC3\xA9llo \"ping\"\n\t\\ \xE2\x98\x83 \xF0\x9F\x98\x80";
   for (long i = 0; i < count; ++i) {
      JSObject p;
      p("seq") = i;
      p("text") = text;
      p("big") = 9007199254740993LL; // 2^53 + 1: no double holds it
      p("list")[2]("deep") = -1.5;
      CHECK_EQ(ipcNotify(target, "ping", p, static_cast<unsigned>(i)), NOTIFY_OK);
   }
   for (long i = 0; i < count; ++i) {
      Event e = NEXT("pong");
      CHECK_EQ(e.kind, "notify");
      CHECK_EQ(e.from, target);
      CHECK_EQ(e.to, "pinger");
      CHECK_EQ(e.id, "pong");
      CHECK_EQ(e.flags, static_cast<unsigned>(i));
      JSObject reply;
      CHECK(reply.load(e.param));
      CHECK_EQ(reply("seq").getInt64(), i);
      CHECK_EQ(reply("echo").getString(), text);
      CHECK_EQ(reply("by").getString(), target);
      CHECK_EQ(reply("to").getString(), target);
      CHECK_EQ(reply("param")("big").getInt64(), 9007199254740993LL);
      CHECK(reply("param")("list")[2]("deep").getNumber() == -1.5);
      CHECK(reply("param")("list")[0].isNull());
   }
   if (quit) CHECK_EQ(ipcNotify(target, "quit", JSObject()), NOTIFY_OK);
   printf("done\n");
   return 0;
}
