/*
 * ipc/jsobject.h - vfiipc::JSObject, a JSON value (nfy's libvfiipc).
 *
 * Source-compatible with the vendor's class of the same name: the same
 * members, types and defaults. Header-only: compiled by the application's
 * own compiler (any standard from C++98 on, with or without exceptions).
 *
 * What it guarantees (nfy's decisions where the original is silent):
 * - load() accepts exactly RFC 8259 JSON: UTF-8, one value, whitespace
 *   around it; it returns true only when the whole text parsed, and leaves
 *   the object null when it did not (never half-parsed). Nesting up to
 *   JSObject::MaxDepth (512) levels; duplicate member names: the last wins.
 * - Integers are 64-bit on every platform (JSTInt holds a long long; the
 *   vendor's held a long, 32-bit on ARM), and JSTInt also holds the
 *   unsigned ones above LLONG_MAX exactly (up to ULLONG_MAX, as the server
 *   accepts them): they load, dump and convert to unsigned long long
 *   without loss. Integers beyond that range load as JSTFloat (a double).
 *   getInt64() clamps to the range of long long, getInt() to that of long.
 * - dump() writes compact JSON: members in name order (byte-wise, as
 *   std::map sorts them), non-ASCII text as UTF-8, control characters,
 *   quote and backslash escaped. Bytes of a string that are not UTF-8 are
 *   written as U+FFFD (JSON text must be UTF-8). A float always has a
 *   decimal point or an exponent (1.0, 1e+300), so it loads back as a
 *   float, with the fewest digits that load back to the same double;
 *   infinities are written 1e999 / -1e999 (which load back as infinities),
 *   NaN as null. Numbers are read and written independently of the C
 *   locale's decimal point.
 * - Reading a member or an element of a const object never changes
 *   anything: a missing one reads as null. Writing access creates it: a
 *   value that is not an object (array) first becomes an empty object
 *   (array); operator[] grows the array to idx+1 elements.
 * - Conversions: getString() of a number or bool is its JSON text, of
 *   anything else but a string "". getNumber()/getInt()/getInt64() of a
 *   bool is 0/1, of a string that holds a JSON number that number, of
 *   anything else 0 (floats truncate toward zero and clamp). getBool() is
 *   the bool, a number other than 0, or a string "true" or holding a number
 *   other than 0; anything else is false.
 */
#ifndef IPC_JSOBJECT_H_NFY
#define IPC_JSOBJECT_H_NFY

#include <float.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <string>
#include <vector>

#include <nfy/nfy.h>

/* A null pointer constant that -Wzero-as-null-pointer-constant accepts. */
#if __cplusplus >= 201103L
#  define NFY_JSOBJECT_NULL nullptr
#else
#  define NFY_JSOBJECT_NULL 0
#endif

#pragma push_macro("DllSpec")
#undef DllSpec
#if defined _WIN32 && defined VFI_IPC_SHARED_EXPORT
#  define DllSpec __declspec(dllexport)
#elif defined __GNUC__ && defined VFI_IPC_SHARED_EXPORT
#  define DllSpec __attribute__((visibility("default")))
#else
#  define DllSpec
#endif

namespace vfiipc {

class DllSpec JSObject {

 public:
   enum JSType {
      JSTNull,    /* null */
      JSTBool,    /* true or false */
      JSTString,  /* a string (UTF-8) */
      JSTInt,     /* an integer (64-bit) */
      JSTFloat,   /* a number with a fraction or exponent, or a big one */
      JSTObject,  /* members by name */
      JSTArray    /* elements by index */
   };

   /* Deepest nesting of arrays and objects load() accepts. */
   enum { MaxDepth = 512 };

 protected:
   JSType v_type;
   bool v_bool;
   std::string v_string;
   double v_floatnum;
   long long v_intnum;
   /* JSTInt only: v_intnum holds the bits of an unsigned value above
    * LLONG_MAX. */
   bool v_unsigned;
   std::map<std::string, JSObject> v_object;
   std::vector<JSObject> v_array;

 public:
   JSObject() : v_type(JSTNull), v_bool(false), v_floatnum(0.0), v_intnum(0), v_unsigned(false) {}

   JSType type() const { return v_type; }
   bool isNull() const { return v_type == JSTNull; }
   bool isBool() const { return v_type == JSTBool; }
   bool isString() const { return v_type == JSTString; }
   bool isNumber() const { return v_type == JSTFloat || v_type == JSTInt; }
   bool isObject() const { return v_type == JSTObject; }
   bool isArray() const { return v_type == JSTArray; }

   std::string getString() const {
      switch (v_type) {
      case JSTString: return v_string;
      case JSTBool: return v_bool ? "true" : "false";
      case JSTInt:
      case JSTFloat: {
         std::string s;
         dumpNumber(s);
         return s;
      }
      default: return std::string();
      }
   }

   std::string getString(const char *defaultval) const {
      return isNull() ? std::string(defaultval ? defaultval : "") : getString();
   }

   /* The string itself, NULL unless this is a string. */
   const std::string *getStringP() const { return v_type == JSTString ? &v_string : NFY_JSOBJECT_NULL; }
   std::string *getStringP() { return v_type == JSTString ? &v_string : NFY_JSOBJECT_NULL; }

   double getNumber() const {
      switch (v_type) {
      case JSTInt:
         return v_unsigned ? static_cast<double>(static_cast<unsigned long long>(v_intnum))
                           : static_cast<double>(v_intnum);
      case JSTFloat: return v_floatnum;
      case JSTBool: return v_bool ? 1.0 : 0.0;
      case JSTString: {
         JSObject n;
         return parseNumberText(v_string, n) ? n.getNumber() : 0.0;
      }
      default: return 0.0;
      }
   }

   long getInt() const {
      /* Variables, not constants: where long is 64-bit the comparisons are
       * always false, which -Wtype-limits would report. */
      long long v = getInt64(), lo = LONG_MIN, hi = LONG_MAX;
      if (v > hi) return LONG_MAX;
      if (v < lo) return LONG_MIN;
      return static_cast<long>(v);
   }

   long long getInt64() const {
      switch (v_type) {
      case JSTInt: return v_unsigned ? LLONG_MAX : v_intnum;
      case JSTFloat: return clampToInt64(v_floatnum);
      case JSTBool: return v_bool ? 1 : 0;
      case JSTString: {
         JSObject n;
         return parseNumberText(v_string, n) ? n.getInt64() : 0;
      }
      default: return 0;
      }
   }

   bool getBool() const {
      switch (v_type) {
      case JSTBool: return v_bool;
      case JSTInt: return v_intnum != 0;
      case JSTFloat: return v_floatnum < 0.0 || v_floatnum > 0.0;
      case JSTString: {
         if (v_string == "true") return true;
         JSObject n;
         return parseNumberText(v_string, n) && n.getBool();
      }
      default: return false;
      }
   }

   operator bool() const               { return getBool(); }
   operator std::string() const        { return getString(); }
   operator char() const               { return static_cast<char>(getInt()); }
   operator unsigned char() const      { return static_cast<unsigned char>(getInt()); }
   operator short() const              { return static_cast<short>(getInt()); }
   operator unsigned short() const     { return static_cast<unsigned short>(getInt()); }
   operator int() const                { return static_cast<int>(getInt()); }
   operator unsigned() const           { return static_cast<unsigned>(getInt()); }
   operator long() const               { return getInt(); }
   operator unsigned long() const      { return static_cast<unsigned long>(getInt()); }
   operator long long() const          { return getInt64(); }
   operator unsigned long long() const {
      if (v_type == JSTInt && v_unsigned) return static_cast<unsigned long long>(v_intnum);
      return static_cast<unsigned long long>(getInt64());
   }
   operator float() const              { return static_cast<float>(getNumber()); }
   operator double() const             { return getNumber(); }

   void clear() {
      v_type = JSTNull;
      v_bool = false;
      v_floatnum = 0.0;
      v_intnum = 0;
      v_unsigned = false;
      v_string.clear();
      v_object.clear();
      v_array.clear();
   }

   JSObject &operator=(bool val)        { clear(); v_type = JSTBool; v_bool = val; return *this; }
   JSObject &operator=(char *val)       { return *this = static_cast<const char *>(val); }
   JSObject &operator=(const char *val) { std::string s(val ? val : ""); clear(); v_type = JSTString; v_string.swap(s); return *this; }
   JSObject &operator=(const std::string &val) { std::string s(val); clear(); v_type = JSTString; v_string.swap(s); return *this; }
   JSObject &operator=(double val)      { clear(); v_type = JSTFloat; v_floatnum = val; return *this; }
   JSObject &operator=(float val)       { return *this = static_cast<double>(val); }
   JSObject &operator=(long double val) { return *this = static_cast<double>(val); }
   JSObject &operator=(long long val)   { clear(); v_type = JSTInt; v_intnum = val; return *this; }

   JSObject &operator=(unsigned long long val) {
      if (val <= static_cast<unsigned long long>(LLONG_MAX)) return *this = static_cast<long long>(val);
      clear();
      v_type = JSTInt;
      v_intnum = static_cast<long long>(val); /* the bits: two's complement */
      v_unsigned = true;
      return *this;
   }

   /* Every other integer type (and unscoped enumerations). */
   template<typename T> JSObject &operator=(T val) {
      long long v = static_cast<long long>(val);
      /* An unsigned value past LLONG_MAX: kept exactly as unsigned. */
      if (val > 0 && v < 0) return *this = static_cast<unsigned long long>(val);
      return *this = v;
   }

   bool exists(const char *elem) const { return elem && exists(std::string(elem)); }
   bool exists(const std::string &elem) const {
      return v_type == JSTObject && v_object.find(elem) != v_object.end();
   }

   void erase(const char *elem) { if (elem) erase(std::string(elem)); }
   void erase(const std::string &elem) { if (v_type == JSTObject) v_object.erase(elem); }

   JSObject &operator()(const char *elem) { return (*this)(std::string(elem ? elem : "")); }
   const JSObject &operator()(const char *elem) const {
      return elem ? (*this)(std::string(elem)) : nullObject();
   }

   JSObject &operator()(const std::string &elem) {
      if (v_type != JSTObject) {
         clear();
         v_type = JSTObject;
      }
      return v_object[elem];
   }

   const JSObject &operator()(const std::string &elem) const {
      if (v_type != JSTObject) return nullObject();
      const_iterator it = v_object.find(elem);
      return it == v_object.end() ? nullObject() : it->second;
   }

   JSObject &operator[](int idx) {
      if (v_type != JSTArray) {
         clear();
         v_type = JSTArray;
      }
      if (idx < 0) return scratch();
      size_t i = static_cast<size_t>(idx);
      if (i >= v_array.size()) v_array.resize(i + 1);
      return v_array[i];
   }

   const JSObject &operator[](int idx) const {
      if (v_type != JSTArray || idx < 0 || static_cast<size_t>(idx) >= v_array.size()) {
         return nullObject();
      }
      return v_array[static_cast<size_t>(idx)];
   }

   /* Elements of an array; 0 for anything else. */
   unsigned size() const { return v_type == JSTArray ? static_cast<unsigned>(v_array.size()) : 0; }

   void resize(unsigned new_size) {
      if (v_type != JSTArray) {
         clear();
         v_type = JSTArray;
      }
      v_array.resize(new_size);
   }

   typedef std::map<std::string, JSObject>::iterator iterator;
   typedef std::map<std::string, JSObject>::const_iterator const_iterator;

   /* Members of an object, by name; empty for anything else. */
   iterator begin() { return v_object.begin(); }
   iterator end() { return v_object.end(); }
   const_iterator begin() const { return v_object.begin(); }
   const_iterator end() const { return v_object.end(); }

   bool load(const std::string &s) {
      JSObject v;
      const char *p = s.data();
      const char *end = p + s.size();
      skipSpace(p, end);
      bool ok = v.parseValue(p, end, 0);
      if (ok) {
         skipSpace(p, end);
         ok = p == end;
      }
      if (ok) swap(v);
      else clear();
      return ok;
   }

   std::string dump() const { std::string s; dump(s); return s; }
   void dump(std::string &s) const { s.clear(); dumpTo(s, NFY_JSOBJECT_NULL); }

   void swap(JSObject &o) {
      JSType t = v_type; v_type = o.v_type; o.v_type = t;
      bool b = v_bool; v_bool = o.v_bool; o.v_bool = b;
      double d = v_floatnum; v_floatnum = o.v_floatnum; o.v_floatnum = d;
      long long i = v_intnum; v_intnum = o.v_intnum; o.v_intnum = i;
      bool u = v_unsigned; v_unsigned = o.v_unsigned; o.v_unsigned = u;
      v_string.swap(o.v_string);
      v_object.swap(o.v_object);
      v_array.swap(o.v_array);
   }

   /* dump(), with the value of every member whose name filter_cb accepts
    * (at any depth) written as "***": for logging secrets. */
   std::string logdump(bool (*filter_cb)(const std::string &key)) const {
      std::string s;
      dumpTo(s, filter_cb);
      return s;
   }

   /* Indented JSON: two spaces per level, one member or element a line. */
   void prettyDump(std::string &s) const { s.clear(); prettyDumpTo(s, 0); }

   /* The library's version (nfy's, e.g. "0.1.0"). */
   static const char *getVersion() { return nfy_version(); }

 private:
   static const JSObject &nullObject() {
      static const JSObject null_object;
      return null_object;
   }

   /* What operator[] hands out for a negative index: a null scratch value
    * of this thread (of the process before C++11), reset on every use. */
   static JSObject &scratch() {
#if __cplusplus >= 201103L
      static thread_local JSObject s;
#else
      static JSObject s;
#endif
      s.clear();
      return s;
   }

   /* Without == (which -Wfloat-equal reports): only NaN is not <= itself. */
   static bool isNaN(double d) { return !(d <= d); }

   static long long clampToInt64(double d) {
      if (isNaN(d)) return 0;
      if (d >= 9223372036854775807.0) return LLONG_MAX;
      if (d <= -9223372036854775808.0) return LLONG_MIN;
      return static_cast<long long>(d);
   }

   /* ---- reading ---- */

   static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
   static bool isDigit(char c) { return c >= '0' && c <= '9'; }

   static void skipSpace(const char *&p, const char *end) {
      while (p < end && isSpace(*p)) ++p;
   }

   static bool literal(const char *&p, const char *end, const char *word) {
      size_t n = strlen(word);
      if (static_cast<size_t>(end - p) < n || memcmp(p, word, n) != 0) return false;
      p += n;
      return true;
   }

   bool parseValue(const char *&p, const char *end, unsigned depth) {
      if (p >= end) return false;
      switch (*p) {
      case 'n': return literal(p, end, "null");
      case 't': if (!literal(p, end, "true")) return false; *this = true; return true;
      case 'f': if (!literal(p, end, "false")) return false; *this = false; return true;
      case '"': v_type = JSTString; return parseString(p, end, v_string);
      case '[': return parseArray(p, end, depth + 1);
      case '{': return parseObject(p, end, depth + 1);
      default: return parseNumber(p, end);
      }
   }

   bool parseArray(const char *&p, const char *end, unsigned depth) {
      if (depth > MaxDepth) return false;
      v_type = JSTArray;
      ++p; /* '[' */
      skipSpace(p, end);
      if (p < end && *p == ']') { ++p; return true; }
      for (;;) {
         v_array.push_back(JSObject());
         if (!v_array.back().parseValue(p, end, depth)) return false;
         skipSpace(p, end);
         if (p >= end) return false;
         if (*p == ']') { ++p; return true; }
         if (*p != ',') return false;
         ++p;
         skipSpace(p, end);
      }
   }

   bool parseObject(const char *&p, const char *end, unsigned depth) {
      if (depth > MaxDepth) return false;
      v_type = JSTObject;
      ++p; /* '{' */
      skipSpace(p, end);
      if (p < end && *p == '}') { ++p; return true; }
      for (;;) {
         std::string key;
         if (p >= end || *p != '"' || !parseString(p, end, key)) return false;
         skipSpace(p, end);
         if (p >= end || *p != ':') return false;
         ++p;
         skipSpace(p, end);
         JSObject value;
         if (!value.parseValue(p, end, depth)) return false;
         v_object[key].swap(value); /* a repeated name: the last wins */
         skipSpace(p, end);
         if (p >= end) return false;
         if (*p == '}') { ++p; return true; }
         if (*p != ',') return false;
         ++p;
         skipSpace(p, end);
      }
   }

   static int hexDigit(char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
   }

   /* Four hex digits after "\u". */
   static bool hex4(const char *&p, const char *end, unsigned &out) {
      if (end - p < 4) return false;
      out = 0;
      for (int i = 0; i < 4; ++i) {
         int d = hexDigit(p[i]);
         if (d < 0) return false;
         out = out * 16 + static_cast<unsigned>(d);
      }
      p += 4;
      return true;
   }

   static void appendUtf8(std::string &s, unsigned cp) {
      if (cp < 0x80) {
         s += static_cast<char>(cp);
      } else if (cp < 0x800) {
         s += static_cast<char>(0xC0 | (cp >> 6));
         s += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
         s += static_cast<char>(0xE0 | (cp >> 12));
         s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
         s += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
         s += static_cast<char>(0xF0 | (cp >> 18));
         s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
         s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
         s += static_cast<char>(0x80 | (cp & 0x3F));
      }
   }

   /* The length of the UTF-8 sequence at p (1 to 4), 0 when invalid. */
   static size_t utf8Length(const char *p, const char *end) {
      unsigned char c = static_cast<unsigned char>(*p);
      size_t n;
      unsigned min, cp;
      if (c < 0x80) return 1;
      if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; cp = c & 0x1Fu; }
      else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; cp = c & 0x0Fu; }
      else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; cp = c & 0x07u; }
      else return 0;
      if (static_cast<size_t>(end - p) < n) return 0;
      for (size_t i = 1; i < n; ++i) {
         unsigned char k = static_cast<unsigned char>(p[i]);
         if ((k & 0xC0) != 0x80) return 0;
         cp = (cp << 6) | (k & 0x3Fu);
      }
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
      return n;
   }

   static bool parseString(const char *&p, const char *end, std::string &out) {
      ++p; /* '"' */
      out.clear();
      while (p < end) {
         char c = *p;
         if (c == '"') { ++p; return true; }
         if (static_cast<unsigned char>(c) < 0x20) return false;
         if (c != '\\') {
            size_t n = utf8Length(p, end);
            if (n == 0) return false;
            out.append(p, n);
            p += n;
            continue;
         }
         ++p;
         if (p >= end) return false;
         c = *p++;
         switch (c) {
         case '"': out += '"'; break;
         case '\\': out += '\\'; break;
         case '/': out += '/'; break;
         case 'b': out += '\b'; break;
         case 'f': out += '\f'; break;
         case 'n': out += '\n'; break;
         case 'r': out += '\r'; break;
         case 't': out += '\t'; break;
         case 'u': {
            unsigned cp;
            if (!hex4(p, end, cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return false; /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
               unsigned low;
               if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return false;
               p += 2;
               if (!hex4(p, end, low) || low < 0xDC00 || low > 0xDFFF) return false;
               cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            appendUtf8(out, cp);
            break;
         }
         default: return false;
         }
      }
      return false;
   }

   /* strtod of a JSON number, whatever the C locale's decimal point. */
   static double toDouble(const char *text, size_t len) {
      std::string s(text, len);
      const char *point = localeconv()->decimal_point;
      if (point && strcmp(point, ".") != 0) {
         size_t dot = s.find('.');
         if (dot != std::string::npos) s.replace(dot, 1, point);
      }
      return strtod(s.c_str(), NFY_JSOBJECT_NULL);
   }

   bool parseNumber(const char *&p, const char *end) {
      const char *start = p;
      bool negative = false;
      if (p < end && *p == '-') { negative = true; ++p; }
      if (p >= end || !isDigit(*p)) return false;
      if (*p == '0') ++p;
      else while (p < end && isDigit(*p)) ++p;
      const char *int_end = p;
      bool integer = true;
      if (p < end && *p == '.') {
         integer = false;
         ++p;
         if (p >= end || !isDigit(*p)) return false;
         while (p < end && isDigit(*p)) ++p;
      }
      if (p < end && (*p == 'e' || *p == 'E')) {
         integer = false;
         ++p;
         if (p < end && (*p == '+' || *p == '-')) ++p;
         if (p >= end || !isDigit(*p)) return false;
         while (p < end && isDigit(*p)) ++p;
      }
      if (integer) {
         /* Exactly, when it fits in 64 bits (signed, or unsigned when
          * positive). */
         unsigned long long limit = negative ? 9223372036854775808ULL : ULLONG_MAX;
         unsigned long long v = 0;
         const char *d = start + (negative ? 1 : 0);
         bool fits = true;
         for (; d < int_end; ++d) {
            unsigned digit = static_cast<unsigned>(*d - '0');
            if (v > (limit - digit) / 10) { fits = false; break; }
            v = v * 10 + digit;
         }
         if (fits) {
            v_type = JSTInt;
            v_intnum = negative ? static_cast<long long>(0 - v) : static_cast<long long>(v);
            v_unsigned = !negative && v > static_cast<unsigned long long>(LLONG_MAX);
            return true;
         }
      }
      v_type = JSTFloat;
      v_floatnum = toDouble(start, static_cast<size_t>(p - start));
      return true;
   }

   /* True when the whole of `s` is one JSON number (for the getters). */
   static bool parseNumberText(const std::string &s, JSObject &out) {
      const char *p = s.data();
      const char *end = p + s.size();
      return out.parseNumber(p, end) && p == end;
   }

   /* ---- writing ---- */

   static void dumpString(std::string &out, const std::string &s) {
      static const char hex[] = "0123456789abcdef";
      out += '"';
      const char *p = s.data();
      const char *end = p + s.size();
      while (p < end) {
         unsigned char c = static_cast<unsigned char>(*p);
         switch (c) {
         case '"': out += "\\\""; break;
         case '\\': out += "\\\\"; break;
         case '\b': out += "\\b"; break;
         case '\f': out += "\\f"; break;
         case '\n': out += "\\n"; break;
         case '\r': out += "\\r"; break;
         case '\t': out += "\\t"; break;
         default:
            if (c < 0x20) {
               out += "\\u00";
               out += hex[c >> 4];
               out += hex[c & 0xF];
            } else if (c < 0x80) {
               out += static_cast<char>(c);
            } else {
               size_t n = utf8Length(p, end);
               if (n == 0) {
                  out += "\xEF\xBF\xBD"; /* U+FFFD for a byte that is not UTF-8 */
               } else {
                  out.append(p, n);
                  p += n - 1;
               }
            }
         }
         ++p;
      }
      out += '"';
   }

   /* Formats d with `precision` significant digits, '.' as the point. */
   static std::string formatDouble(double d, int precision) {
      char buf[40];
      snprintf(buf, sizeof buf, "%.*g", precision, d);
      std::string s(buf);
      const char *point = localeconv()->decimal_point;
      if (point && strcmp(point, ".") != 0) {
         size_t at = s.find(point);
         if (at != std::string::npos) s.replace(at, strlen(point), ".");
      }
      return s;
   }

   static void dumpDouble(std::string &out, double d) {
      if (isNaN(d)) { out += "null"; return; }
      if (d > DBL_MAX) { out += "1e999"; return; }
      if (d < -DBL_MAX) { out += "-1e999"; return; }
      std::string s;
      for (int precision = 15; precision <= 17; ++precision) {
         s = formatDouble(d, precision);
         double back = toDouble(s.data(), s.size());
         if (!(back < d) && !(back > d)) break;
      }
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      out += s;
   }

   void dumpNumber(std::string &out) const {
      if (v_type == JSTInt) {
         char buf[24];
         if (v_unsigned) snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v_intnum));
         else snprintf(buf, sizeof buf, "%lld", v_intnum);
         out += buf;
      } else {
         dumpDouble(out, v_floatnum);
      }
   }

   void dumpTo(std::string &out, bool (*filter_cb)(const std::string &key)) const {
      switch (v_type) {
      case JSTNull: out += "null"; break;
      case JSTBool: out += v_bool ? "true" : "false"; break;
      case JSTString: dumpString(out, v_string); break;
      case JSTInt:
      case JSTFloat: dumpNumber(out); break;
      case JSTArray:
         out += '[';
         for (size_t i = 0; i < v_array.size(); ++i) {
            if (i) out += ',';
            v_array[i].dumpTo(out, filter_cb);
         }
         out += ']';
         break;
      case JSTObject:
         out += '{';
         for (const_iterator it = v_object.begin(); it != v_object.end(); ++it) {
            if (it != v_object.begin()) out += ',';
            dumpString(out, it->first);
            out += ':';
            if (filter_cb && filter_cb(it->first)) out += "\"***\"";
            else it->second.dumpTo(out, filter_cb);
         }
         out += '}';
         break;
      }
   }

   static void newline(std::string &out, int indent) {
      out += '\n';
      out.append(static_cast<size_t>(indent) * 2, ' ');
   }

   void prettyDumpTo(std::string &out, int indent) const {
      if (v_type == JSTArray && !v_array.empty()) {
         out += '[';
         for (size_t i = 0; i < v_array.size(); ++i) {
            if (i) out += ',';
            newline(out, indent + 1);
            v_array[i].prettyDumpTo(out, indent + 1);
         }
         newline(out, indent);
         out += ']';
      } else if (v_type == JSTObject && !v_object.empty()) {
         out += '{';
         for (const_iterator it = v_object.begin(); it != v_object.end(); ++it) {
            if (it != v_object.begin()) out += ',';
            newline(out, indent + 1);
            dumpString(out, it->first);
            out += ": ";
            it->second.prettyDumpTo(out, indent + 1);
         }
         newline(out, indent);
         out += '}';
      } else {
         dumpTo(out, NFY_JSOBJECT_NULL);
      }
   }
};

} /* namespace vfiipc */

#undef DllSpec
#pragma pop_macro("DllSpec")
#undef NFY_JSOBJECT_NULL

#endif /* IPC_JSOBJECT_H_NFY */
