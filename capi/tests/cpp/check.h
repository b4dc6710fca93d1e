// Checks for the test programs: a failed check prints where and what to
// stderr and ends the process with status 1 at once (from any thread).
// C++98, so that jsobject_test.cpp compiles with every standard.
#ifndef NFY_TEST_CHECK_H
#define NFY_TEST_CHECK_H

#include <stdio.h>
#include <unistd.h>

#include <sstream>
#include <string>

inline void check_fail(const std::string &what, const char *file, int line) {
   fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what.c_str());
   fflush(stderr);
   fflush(stdout);
   _exit(1);
}

template <class A, class B>
inline void check_eq(const A &a, const B &b, const char *ea, const char *eb, const char *file,
                     int line) {
   if (!(a == b)) {
      std::ostringstream o;
      o << ea << " == " << eb << ": [" << a << "] vs [" << b << "]";
      check_fail(o.str(), file, line);
   }
}

#define CHECK(cond) \
   do { if (!(cond)) check_fail(#cond, __FILE__, __LINE__); } while (0)
#define CHECK_EQ(a, b) check_eq((a), (b), #a, #b, __FILE__, __LINE__)

#endif
