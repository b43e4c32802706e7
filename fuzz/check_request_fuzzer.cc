// Fuzzes Envoy ext_authz's request bytes through ReadCheckRequest(), against
// Envoy's own generated CheckRequest: whatever CheckRequest parses,
// ReadCheckRequest() reads too, to the same method, path, host, headers and
// context extensions (ReadingDiff()); whatever it refuses is refused with
// INVALID_ARGUMENT, and CheckRequest refuses it too. It may accept bytes
// CheckRequest refuses only in fields nothing reads (see check_wire.h).
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "envoy/service/auth/v3/external_auth.pb.h"
#include "fuzz/fuzz_check.h"
#include "server/grpc/check_wire.h"
#include "server/grpc/check_wire_testing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ::scopekeeper::CheckReading;
  using ::scopekeeper::ReadCheckRequest;
  using ::scopekeeper::ReadingDiff;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // Two slices, cut where the first byte says: the stream reader's path as
  // well as the one-slice path.
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  grpc::Slice slices[] = {grpc::Slice(bytes.data(), cut),
                          grpc::Slice(bytes.data() + cut, size - cut)};
  envoy::service::auth::v3::CheckRequest full;
  const bool full_parses = full.ParseFromString(bytes);
  for (int pieces : {1, 2}) {
    grpc::Slice whole(bytes.data(), bytes.size());
    const grpc::ByteBuffer raw =
        pieces == 1 ? grpc::ByteBuffer(&whole, 1) : grpc::ByteBuffer(slices, 2);
    CheckReading reading;
    const absl::Status status = ReadCheckRequest(raw, &reading);
    if (!status.ok()) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
      FUZZ_CHECK(!full_parses);
      continue;
    }
    if (full_parses) {
      const std::string diff = ReadingDiff(full, reading);
      if (!diff.empty()) std::fprintf(stderr, "%s\n", diff.c_str());
      FUZZ_CHECK(diff.empty());
    }
  }
  return 0;
}
