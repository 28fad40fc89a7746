/* A minimal test harness for the C suite: each test is a function; CHECK records a failure with
 * file, line, the failed expression and the library's last error message, and the test goes on.
 * Each binary ends with the line "RESULT <passed> <failed>" that run.sh adds up. */
#ifndef PR_TEST_CHECK_H
#define PR_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "purple_rain.h"

static int check_failures_in_test;

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "  %s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              pr_last_error_message());                                                          \
      check_failures_in_test++;                                                                  \
    }                                                                                            \
  } while (0)

/* Checks a pr_status against the expected one, printing both names on mismatch. */
#define CHECK_STATUS(expr, expected)                                                             \
  do {                                                                                           \
    pr_status check_got_ = (expr);                                                               \
    pr_status check_want_ = (expected);                                                          \
    if (check_got_ != check_want_) {                                                             \
      fprintf(stderr, "  %s:%d: %s returned %s, expected %s; last error: %s\n", __FILE__,        \
              __LINE__, #expr, pr_status_name(check_got_), pr_status_name(check_want_),          \
              pr_last_error_message());                                                          \
      check_failures_in_test++;                                                                  \
    }                                                                                            \
  } while (0)

/* The last error message must mention `needle`. */
#define CHECK_MESSAGE(needle)                                                                    \
  do {                                                                                           \
    const char *check_msg_ = pr_last_error_message();                                            \
    if (strstr(check_msg_, (needle)) == NULL) {                                                  \
      fprintf(stderr, "  %s:%d: last error \"%s\" does not mention \"%s\"\n", __FILE__,          \
              __LINE__, check_msg_, (needle));                                                   \
      check_failures_in_test++;                                                                  \
    }                                                                                            \
  } while (0)

typedef struct {
  const char *name;
  void (*run)(void);
} test_case;

static int run_tests(const test_case *tests, size_t count, int argc, char **argv) {
  int passed = 0, failed = 0;
  for (size_t i = 0; i < count; i++) {
    if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) continue;
    check_failures_in_test = 0;
    tests[i].run();
    if (check_failures_in_test == 0) {
      printf("ok   %s\n", tests[i].name);
      passed++;
    } else {
      printf("FAIL %s (%d checks failed)\n", tests[i].name, check_failures_in_test);
      failed++;
    }
    fflush(stdout);
  }
  printf("RESULT %d %d\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

#endif
