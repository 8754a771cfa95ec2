#pragma once
// LL_CHECK: invariants of our own code (never for input from files, network or users).
#include <cstdio>
#include <cstdlib>

#define LL_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
