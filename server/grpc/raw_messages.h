// The messages of raw (ByteBuffer) handlers. Every service parses its own
// requests, so a malformed one -- invalid UTF-8 in a string field, a broken
// encoding -- gets INVALID_ARGUMENT naming the problem, where gRPC's typed
// handlers answered UNIMPLEMENTED with an empty message and libprotobuf
// wrote an unstructured line to stderr per request.
#ifndef SCOPEKEEPER_SERVER_GRPC_RAW_MESSAGES_H_
#define SCOPEKEEPER_SERVER_GRPC_RAW_MESSAGES_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>

#include "absl/status/status.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/message.h"

namespace scopekeeper {

// ParseRequest() parses `raw` into `*request` (cleared first): from the
// buffer's one slice when it has one (a small request usually does), else
// through gRPC's stream reader. INVALID_ARGUMENT naming the string field
// that is not valid UTF-8, or the message type when the encoding is broken.
absl::Status ParseRequest(const grpc::ByteBuffer& raw,
                          google::protobuf::Message* request);

// SerializeResponse() puts `response` into `*raw`: up to kFlatResponseBytes
// as one slice, larger ones in slices of gRPC's stream writer.
inline constexpr size_t kFlatResponseBytes = 64 << 10;
void SerializeResponse(const google::protobuf::Message& response,
                       grpc::ByteBuffer* raw);

// CallArena: a protobuf arena for the messages of one call handled
// synchronously, reused by the thread (its first block, 512 KB, stays
// allocated), so parsing and building the answer allocate nothing in the
// common case, a BatchAuthorize of a few hundred entries included.
// Messages created on it die with it: serialize before it goes.
class CallArena {
 public:
  CallArena();
  ~CallArena();
  CallArena(const CallArena&) = delete;
  CallArena& operator=(const CallArena&) = delete;

  template <typename T>
  T* Create() {
    return google::protobuf::Arena::CreateMessage<T>(arena_);
  }

 private:
  google::protobuf::Arena* arena_;
  bool thread_arena_;  // false: nested use on this thread; arena_ is ours
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_RAW_MESSAGES_H_
