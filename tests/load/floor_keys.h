// The floor server's keys, shared by floor_server and load_client so the
// client knows which keys exist without a key file.
#ifndef SCOPEKEEPER_TESTS_LOAD_FLOOR_KEYS_H_
#define SCOPEKEEPER_TESTS_LOAD_FLOOR_KEYS_H_

#include <string>

#include "absl/strings/str_cat.h"

namespace scopekeeper::load {

// Every floor key holds these scopes; the load client checks kFloorScopes[0].
inline constexpr const char* kFloorScopes[] = {"orders_read", "stock_read"};

// FloorKey() is the i-th key: as long as a Scopekeeper secret (39 bytes), so
// both servers hash and compare strings of the same size.
inline std::string FloorKey(int i) {
  std::string key = absl::StrCat("rxs_ph_floor", i, "_");
  key.resize(39, 'x');
  return key;
}

}  // namespace scopekeeper::load

#endif  // SCOPEKEEPER_TESTS_LOAD_FLOOR_KEYS_H_
