// vfiipc::JSObject: every JSON value the service carries survives load()
// and dump(); what is not JSON is refused whole; access to a const object
// never changes it. C++98, so the test builds with every standard.
//
// Prints "jsobject ok" when every check passed.

#include <float.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <string>

#include <ipc/jsobject.h>

#include "check.h"

using vfiipc::JSObject;

// load(text) succeeds and dump() gives `expected` back.
static void round_trip(const std::string &text, const std::string &expected, int line) {
   JSObject o;
   if (!o.load(text)) check_fail("load failed: " + text, __FILE__, line);
   check_eq(o.dump(), expected, "dump()", expected.c_str(), __FILE__, line);
   // And the dump loads to the same value again.
   JSObject again;
   if (!again.load(o.dump())) check_fail("reload failed: " + o.dump(), __FILE__, line);
   check_eq(again.dump(), expected, "dump() of the dump", expected.c_str(), __FILE__, line);
}
#define ROUND_TRIP(text) round_trip(text, text, __LINE__)
#define NORMALIZES(text, expected) round_trip(text, expected, __LINE__)

// load(text) fails and leaves the object null, whatever it held.
static void refused(const std::string &text, int line) {
   JSObject o;
   o("before") = 1;
   if (o.load(text)) check_fail("load accepted: " + text, __FILE__, line);
   if (!o.isNull()) check_fail("not null after a failed load: " + text, __FILE__, line);
}
#define REFUSED(text) refused(text, __LINE__)

static double reload_number(double d) {
   JSObject o;
   o = d;
   JSObject back;
   CHECK(back.load(o.dump()));
   CHECK(back.type() == JSObject::JSTFloat);
   return back.getNumber();
}

static bool hide_pin(const std::string &key) { return key == "pin"; }

static std::string nested(int depth) {
   return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']');
}

static void test_values() {
   ROUND_TRIP("null");
   ROUND_TRIP("true");
   ROUND_TRIP("false");
   ROUND_TRIP("0");
   ROUND_TRIP("-1");
   ROUND_TRIP("\"\"");
   ROUND_TRIP("\"text\"");
   ROUND_TRIP("[]");
   ROUND_TRIP("{}");
   ROUND_TRIP("[[],[{}],[null,[true]]]");
   ROUND_TRIP("{\"a\":{\"b\":{\"c\":[1,2,3]}},\"z\":null}");
   // Whitespace around and between tokens; members come out sorted.
   NORMALIZES(" \t\r\n{ \"b\" : [ 1 , 2 ] ,\n\"a\" : \"x\" } \n", "{\"a\":\"x\",\"b\":[1,2]}");
   // A repeated name: the last wins.
   NORMALIZES("{\"a\":1,\"a\":2}", "{\"a\":2}");

   JSObject o;
   CHECK(o.load("{\"i\":7,\"f\":2.5,\"s\":\"x\",\"b\":true,\"n\":null,\"a\":[1],\"o\":{}}"));
   CHECK(o.isObject());
   CHECK(o("i").type() == JSObject::JSTInt && o("i").isNumber());
   CHECK(o("f").type() == JSObject::JSTFloat && o("f").isNumber());
   CHECK(o("s").isString());
   CHECK(o("b").isBool());
   CHECK(o("n").isNull());
   CHECK(o("a").isArray());
   CHECK(o("o").isObject());
}

static void test_strings() {
   // Escapes: the short forms where JSON has them, \u00XX for the other
   // control characters, everything else as UTF-8.
   ROUND_TRIP("\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\"");
   ROUND_TRIP("\"gr\xC3\xBC\xC3\x9F \xE2\x98\x83 \xF0\x9F\x98\x80 \x7F\"");
   NORMALIZES("\"\\u00e9\\u2603\\ud83d\\ude00\\/\\u0041\"",
              "\"\xC3\xA9\xE2\x98\x83\xF0\x9F\x98\x80/A\"");
   JSObject o;
   CHECK(o.load("\"a\\u0000b\""));
   CHECK_EQ(o.getString(), std::string("a\0b", 3));
   CHECK_EQ(o.dump(), "\"a\\u0000b\"");
   // Bytes that are not UTF-8 cannot be JSON text: U+FFFD.
   o = std::string("a\xFFz");
   CHECK_EQ(o.dump(), "\"a\xEF\xBF\xBDz\"");
   o = static_cast<const char *>(0);
   CHECK(o.isString());
   CHECK_EQ(o.getString(), "");
   std::string s("text");
   o = s;
   CHECK(o.getStringP() != 0);
   CHECK_EQ(*o.getStringP(), "text");
   o.getStringP()->append("!");
   CHECK_EQ(o.getString(), "text!");
   o = 1;
   CHECK(o.getStringP() == 0);
}

static void test_integers() {
   ROUND_TRIP("9223372036854775807");
   ROUND_TRIP("-9223372036854775808");
   JSObject o;
   CHECK(o.load("9223372036854775807"));
   CHECK(o.type() == JSObject::JSTInt);
   CHECK_EQ(o.getInt64(), LLONG_MAX);
   CHECK(o.load("-9223372036854775808"));
   CHECK(o.type() == JSObject::JSTInt);
   CHECK_EQ(o.getInt64(), LLONG_MIN);
   // Past LLONG_MAX: still exact, as unsigned; getInt64 clamps.
   CHECK(o.load("9223372036854775808"));
   CHECK(o.type() == JSObject::JSTInt);
   CHECK_EQ(o.getInt64(), LLONG_MAX);
   // Below LLONG_MIN (past 64 bits): a float.
   CHECK(o.load("-9223372036854775809"));
   CHECK(o.type() == JSObject::JSTFloat);
   CHECK_EQ(o.getInt64(), LLONG_MIN);
   // Exact where a double is not.
   CHECK(o.load("9007199254740993"));
   CHECK_EQ(o.getInt64(), 9007199254740993LL);
   // getInt clamps to long.
   CHECK_EQ(o.getInt(), static_cast<long>(sizeof(long) >= 8 ? 9007199254740993LL : LONG_MAX));
   CHECK(o.load("-9223372036854775808"));
   CHECK_EQ(o.getInt(), LONG_MIN);

   // Assignment from every integer type.
   o = 'A';
   CHECK(o.type() == JSObject::JSTInt);
   CHECK_EQ(o.getInt(), 65);
   o = static_cast<short>(-3);
   CHECK_EQ(o.dump(), "-3");
   o = 3u;
   CHECK_EQ(o.dump(), "3");
   o = LLONG_MIN;
   CHECK_EQ(o.dump(), "-9223372036854775808");
   o = static_cast<unsigned long long>(LLONG_MAX);
   CHECK_EQ(o.dump(), "9223372036854775807");
   o = ULLONG_MAX;
   CHECK(o.type() == JSObject::JSTInt);
   CHECK_EQ(o.dump(), "18446744073709551615");
   CHECK(static_cast<unsigned long long>(o) == ULLONG_MAX);
   CHECK_EQ(o.getInt64(), LLONG_MAX);
   o = ULONG_MAX;
   CHECK(o.type() == JSObject::JSTInt);
   CHECK(static_cast<unsigned long>(static_cast<unsigned long long>(o)) == ULONG_MAX);
   /* Unsigned 64-bit integers above LLONG_MAX load and dump exactly. */
   ROUND_TRIP("18446744073709551615");
   ROUND_TRIP("9223372036854775808");
   ROUND_TRIP("[9223372036854775807,9223372036854775808,-9223372036854775808]");
   {
      JSObject u;
      CHECK(u.load("{\"a\":18446744073709551615}"));
      CHECK(u("a").type() == JSObject::JSTInt);
      CHECK(static_cast<unsigned long long>(u("a")) == ULLONG_MAX);
      CHECK(u("a").getNumber() > 1.8e19);
      CHECK_EQ(u("a").getString(), "18446744073709551615");
      CHECK(u("a").getBool());
      JSObject copy(u), swapped;
      swapped.swap(copy);
      CHECK_EQ(swapped.dump(), "{\"a\":18446744073709551615}");
      u("a") = 5;
      CHECK_EQ(u.dump(), "{\"a\":5}");
      CHECK(static_cast<unsigned long long>(u("a")) == 5);
   }
   /* One past ULLONG_MAX is a float (beyond 64 bits). */
   o.load("18446744073709551616");
   CHECK(o.type() == JSObject::JSTFloat);
}

static void test_floats() {
   ROUND_TRIP("1.5");
   ROUND_TRIP("-0.25");
   ROUND_TRIP("0.1");
   ROUND_TRIP("1e+300");
   ROUND_TRIP("1.0");
   ROUND_TRIP("-0.0");
   NORMALIZES("1E2", "100.0");
   NORMALIZES("2.50e-3", "0.0025");
   NORMALIZES("1e400", "1e999");
   NORMALIZES("-1e400", "-1e999");
   JSObject o;
   o = 1.0 / 3.0;
   CHECK_EQ(o.dump(), "0.3333333333333333");
   // The fewest digits that read back as the same double.
   const double samples[] = {0.1, 1.0 / 3.0, 2.0 / 3.0, 123456.789, 1e-7, 5e-324, DBL_MIN,
                             DBL_MAX, -DBL_MAX, 9007199254740993.0, 0.30000000000000004};
   for (size_t i = 0; i < sizeof samples / sizeof samples[0]; ++i) {
      CHECK(reload_number(samples[i]) == samples[i]);
   }
   o = 2.5f;
   CHECK_EQ(o.dump(), "2.5");
   o = DBL_MAX * 2.0;
   CHECK_EQ(o.dump(), "1e999");
   CHECK(reload_number(DBL_MAX * 2.0) > DBL_MAX);
   o = (DBL_MAX * 2.0) - (DBL_MAX * 2.0); // NaN
   CHECK_EQ(o.dump(), "null");
   CHECK_EQ(o.getInt64(), 0);
   CHECK(!o.getBool());
   o = 1e300;
   CHECK_EQ(o.getInt64(), LLONG_MAX);
   o = -2.9;
   CHECK_EQ(o.getInt(), -2);
}

// The C locale's decimal point does not leak into the JSON text.
static void test_locale() {
   const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8"};
   const char *found = 0;
   for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; ++i) {
      if (setlocale(LC_NUMERIC, names[i]) && strcmp(localeconv()->decimal_point, ",") == 0) {
         found = names[i];
      }
   }
   if (!found) {
      printf("locale test skipped: no locale with a decimal comma installed\n");
      setlocale(LC_NUMERIC, "C");
      return;
   }
   JSObject o;
   o = 1.5;
   CHECK_EQ(o.dump(), "1.5");
   CHECK(o.load("[2.5,1e-3]"));
   CHECK(o[0].getNumber() == 2.5);
   CHECK(o[1].getNumber() == 0.001);
   CHECK_EQ(o.dump(), "[2.5,0.001]");
   setlocale(LC_NUMERIC, "C");
   printf("locale test ran with %s\n", found);
}

static void test_refused() {
   REFUSED("");
   REFUSED("   ");
   REFUSED("nul");
   REFUSED("nulls");
   REFUSED("True");
   REFUSED("[1,]");
   REFUSED("[1 2]");
   REFUSED("{\"a\":1,}");
   REFUSED("{\"a\" 1}");
   REFUSED("{1:2}");
   REFUSED("{\"a\":}");
   REFUSED("01");
   REFUSED("-");
   REFUSED("1.");
   REFUSED(".5");
   REFUSED("+1");
   REFUSED("1e");
   REFUSED("1e+");
   REFUSED("NaN");
   REFUSED("Infinity");
   REFUSED("\"unterminated");
   REFUSED("\"\\x\"");
   REFUSED("\"\\u12\"");
   REFUSED("\"\\ud800\"");
   REFUSED("\"\\ud800\\u0041\"");
   REFUSED("\"\\udc00\"");
   REFUSED("\"a\nb\"");
   REFUSED("\"\xFF\"");
   REFUSED("\"\xC0\xAF\"");         // overlong
   REFUSED("\"\xED\xA0\x80\"");     // a surrogate in UTF-8
   REFUSED("\"\xF4\x90\x80\x80\""); // past U+10FFFF
   REFUSED("\"\xE2\x98\"");         // cut short
   REFUSED("[1] 2");
   REFUSED("{} {}");
   REFUSED(std::string("1\0", 2));
   REFUSED("// comment\n1");
   // Nesting: MaxDepth levels load, one more does not.
   JSObject o;
   CHECK(o.load(nested(JSObject::MaxDepth)));
   REFUSED(nested(JSObject::MaxDepth + 1));
   CHECK(o.load("{\"deep\":" + nested(64) + "}"));
}

static void test_access() {
   JSObject o;
   o("card")("pan") = "4111";
   o("card")("pin") = "1234";
   o("amount") = 1250;
   o("list")[2] = true;
   CHECK_EQ(o.dump(), "{\"amount\":1250,\"card\":{\"pan\":\"4111\",\"pin\":\"1234\"},"
                      "\"list\":[null,null,true]}");
   const JSObject &c = o;
   const std::string before = o.dump();
   // Reading a const object: missing members and elements read as null,
   // and nothing is created.
   CHECK(c("missing").isNull());
   CHECK(c("missing")("deeper")[3].isNull());
   CHECK(c("amount")("not an object").isNull());
   CHECK(c("list")[7].isNull());
   CHECK(c("list")[-1].isNull());
   CHECK(c[0].isNull());
   CHECK(c(static_cast<const char *>(0)).isNull());
   CHECK_EQ(c("card")("pan").getString(), "4111");
   CHECK_EQ(c("list")[2].getBool(), true);
   CHECK_EQ(c("list").size(), 3u);
   CHECK_EQ(c("card").size(), 0u); // size() counts array elements only
   CHECK(c.exists("card"));
   CHECK(c.exists(std::string("amount")));
   CHECK(!c.exists("missing"));
   CHECK(!c("amount").exists("x"));
   CHECK_EQ(o.dump(), before);

   // Iteration over members, sorted by name.
   std::string names;
   for (JSObject::const_iterator it = c.begin(); it != c.end(); ++it) names += it->first + ",";
   CHECK_EQ(names, "amount,card,list,");
   for (JSObject::iterator it = o("card").begin(); it != o("card").end(); ++it) it->second = 0;
   CHECK_EQ(o("card").dump(), "{\"pan\":0,\"pin\":0}");
   CHECK(c("amount").begin() == c("amount").end());

   // Writing access converts: to an object, to an array.
   JSObject w;
   w = 5;
   w("k") = 1;
   CHECK_EQ(w.dump(), "{\"k\":1}");
   w[1] = "x";
   CHECK_EQ(w.dump(), "[null,\"x\"]");
   w[-1] = 99; // a programming error: changes nothing
   CHECK_EQ(w.dump(), "[null,\"x\"]");
   w.resize(4);
   CHECK_EQ(w.dump(), "[null,\"x\",null,null]");
   w.resize(1);
   CHECK_EQ(w.size(), 1u);
   w("a") = 1;
   w("b") = 2;
   w.erase("a");
   w.erase(std::string("nope"));
   CHECK_EQ(w.dump(), "{\"b\":2}");

   // Copies are deep; swap and clear.
   JSObject copy = o;
   copy("card")("pan") = "5500";
   CHECK_EQ(o("card")("pan").getInt(), 0);
   copy.swap(w);
   CHECK_EQ(copy.dump(), "{\"b\":2}");
   CHECK(w.exists("amount"));
   w.clear();
   CHECK(w.isNull());
   CHECK_EQ(w.dump(), "null");
}

static void test_conversions() {
   JSObject o;
   CHECK(o.load("{\"i\":42,\"f\":2.75,\"t\":true,\"s\":\"17\",\"fs\":\"2.5\",\"w\":\"abc\","
                "\"st\":\"true\",\"sf\":\"false\",\"e\":\"\",\"z\":\"0\",\"n\":null}"));
   const JSObject &c = o;
   CHECK_EQ(c("i").getString(), "42");
   CHECK_EQ(c("f").getString(), "2.75");
   CHECK_EQ(c("t").getString(), "true");
   CHECK_EQ(c("n").getString(), "");
   CHECK_EQ(c("n").getString("default"), "default");
   CHECK_EQ(c("s").getString("default"), "17");
   CHECK_EQ(c("o").getString(), "");
   CHECK(c("i").getNumber() == 42.0);
   CHECK_EQ(c("f").getInt(), 2);
   CHECK_EQ(c("t").getInt(), 1);
   CHECK_EQ(c("s").getInt(), 17);
   CHECK(c("fs").getNumber() == 2.5);
   CHECK_EQ(c("fs").getInt(), 2);
   CHECK_EQ(c("w").getInt(), 0);
   CHECK(c("w").getNumber() == 0.0);
   CHECK(c("t").getBool());
   CHECK(c("i").getBool());
   CHECK(c("st").getBool());
   CHECK(!c("sf").getBool());
   CHECK(!c("e").getBool());
   CHECK(!c("z").getBool());
   CHECK(c("s").getBool());
   CHECK(!c("w").getBool());
   CHECK(!c("n").getBool());
   // The conversion operators.
   int i = c("i");
   long l = c("i");
   long long ll = c("i");
   unsigned u = c("i");
   double d = c("f");
   float f = c("f");
   bool b = c("t");
   std::string s = c("s");
   char ch = c("i");
   CHECK_EQ(i, 42);
   CHECK_EQ(l, 42L);
   CHECK_EQ(ll, 42LL);
   CHECK_EQ(u, 42u);
   CHECK(d == 2.75);
   CHECK(f == 2.75f);
   CHECK(b);
   CHECK_EQ(s, "17");
   CHECK_EQ(ch, '*');
}

static void test_dumps() {
   JSObject o;
   CHECK(o.load("{\"c\":\"x\",\"a\":[1,2],\"b\":{},\"d\":[]}"));
   std::string pretty;
   o.prettyDump(pretty);
   CHECK_EQ(pretty,
            "{\n"
            "  \"a\": [\n"
            "    1,\n"
            "    2\n"
            "  ],\n"
            "  \"b\": {},\n"
            "  \"c\": \"x\",\n"
            "  \"d\": []\n"
            "}");
   JSObject again;
   CHECK(again.load(pretty));
   CHECK_EQ(again.dump(), o.dump());
   std::string out = "old";
   o.dump(out);
   CHECK_EQ(out, o.dump());

   CHECK(o.load("{\"card\":{\"pin\":\"1234\",\"pan\":\"4111\"},\"pin\":[1],\"x\":1}"));
   CHECK_EQ(o.logdump(hide_pin), "{\"card\":{\"pan\":\"4111\",\"pin\":\"***\"},\"pin\":\"***\",\"x\":1}");
   CHECK_EQ(o.logdump(0), o.dump());

   CHECK(JSObject::getVersion() != 0);
   CHECK_EQ(std::string(JSObject::getVersion()), std::string(nfy_version()));
}

int main() {
   test_values();
   test_strings();
   test_integers();
   test_floats();
   test_locale();
   test_refused();
   test_access();
   test_conversions();
   test_dumps();
   printf("jsobject ok\n");
   return 0;
}
