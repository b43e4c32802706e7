// FloorService: the floor's one RPC, Floor.Check(key, scope), answered from
// an absl::flat_hash_map of FloorKey(0..keys-1) -> kFloorScopes filled at
// construction. Shared by floor_server and bisect_server's first step, so
// the bisection starts from exactly the floor it is compared with.
#ifndef SCOPEKEEPER_TESTS_LOAD_FLOOR_SERVICE_H_
#define SCOPEKEEPER_TESTS_LOAD_FLOOR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <iterator>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "tests/load/floor.grpc.pb.h"
#include "tests/load/floor_keys.h"

namespace scopekeeper::load {

// Thread-safe: the map is read-only once built.
class FloorService final : public v1::Floor::CallbackService {
 public:
  explicit FloorService(int keys) {
    grants_.reserve(keys);
    for (int i = 0; i < keys; ++i) {
      grants_[FloorKey(i)] =
          ScopeSet(std::begin(kFloorScopes), std::end(kFloorScopes));
    }
  }

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const v1::CheckRequest* request,
                                  v1::CheckResponse* response) override {
    auto it = grants_.find(request->key());
    response->set_allowed(it != grants_.end() &&
                          it->second.contains(request->scope()));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  using ScopeSet = absl::flat_hash_set<std::string>;
  absl::flat_hash_map<std::string, ScopeSet> grants_;
};

}  // namespace scopekeeper::load

#endif  // SCOPEKEEPER_TESTS_LOAD_FLOOR_SERVICE_H_
