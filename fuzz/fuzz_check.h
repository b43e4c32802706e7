// FUZZ_CHECK(): the assertion of fuzz targets. On failure it prints the
// condition and location and aborts, which libFuzzer (and the replay test)
// reports as a crash. Active in every build mode, unlike assert().
#ifndef SCOPEKEEPER_FUZZ_FUZZ_CHECK_H_
#define SCOPEKEEPER_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

#endif  // SCOPEKEEPER_FUZZ_FUZZ_CHECK_H_
