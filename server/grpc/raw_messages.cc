#include "server/grpc/raw_messages.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/proto_log.h"
#include "google/protobuf/message_lite.h"

namespace scopekeeper {
namespace {

// The field libprotobuf names in "String field 'pkg.Type.field' contains
// invalid UTF-8 data ...", or "".
absl::string_view InvalidUtf8Field(absl::string_view message) {
  constexpr absl::string_view kStart = "String field '";
  const size_t start = message.find(kStart);
  if (start == absl::string_view::npos) return "";
  const size_t from = start + kStart.size();
  const size_t end = message.find('\'', from);
  if (end == absl::string_view::npos ||
      !absl::StrContains(message.substr(end), "invalid UTF-8")) {
    return "";
  }
  return message.substr(from, end - from);
}

// The thread's arena and whether a CallArena holds it. Reset() keeps only
// the first block, and blocks beyond it were malloc'd and freed on every
// call: the first block is large enough for a BatchAuthorize of 100 entries
// with full answers (~80 KB by a rough count) with room to spare. It is one
// allocation per thread, above malloc's mmap threshold, so only the pages a
// call touched are resident.
struct ThreadArena {
  static constexpr size_t kFirstBlock = 512 << 10;
  ThreadArena() : block(new char[kFirstBlock]), arena(Options(block.get())) {}
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kFirstBlock;
    options.start_block_size = 64 << 10;
    options.max_block_size = 1 << 20;
    return options;
  }
  std::unique_ptr<char[]> block;  // new[]: aligned for any fundamental type
  google::protobuf::Arena arena;  // after the block it starts in
  bool in_use = false;
};

ThreadArena& ForThisThread() {
  thread_local ThreadArena arena;
  return arena;
}

// Parses `raw` into `*message` (cleared first); whether it parsed.
bool ParseBytes(const grpc::ByteBuffer& raw,
                google::protobuf::MessageLite* message) {
  grpc::Slice flat;
  if (raw.TrySingleSlice(&flat).ok()) {
    return message->ParseFromArray(flat.begin(), static_cast<int>(flat.size()));
  }
  grpc::ByteBuffer buffer(raw);  // shares the slices
  grpc::ProtoBufferReader reader(&buffer);
  if (!reader.status().ok()) {
    message->Clear();
    return false;
  }
  return message->ParseFromZeroCopyStream(&reader);
}

}  // namespace

absl::Status ParseRequest(const grpc::ByteBuffer& raw,
                          google::protobuf::Message* request) {
  ProtobufErrorCapture capture;
  if (ParseBytes(raw, request)) return absl::OkStatus();
  const absl::string_view field = InvalidUtf8Field(capture.message());
  if (!field.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request: string field ", field,
        " is not valid UTF-8 (send binary data as base64 or hex)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("request: not a valid ", request->GetTypeName(),
                   " (malformed protobuf encoding)"));
}

void SerializeResponse(const google::protobuf::Message& response,
                       grpc::ByteBuffer* raw) {
  raw->Clear();  // the writer needs an empty buffer (Watch reuses one)
  const size_t size = response.ByteSizeLong();
  if (size <= kFlatResponseBytes) {
    // One slice of the exact size, written in one pass with the sizes just
    // computed (gRPC's GenericSerialize computes them twice and writes
    // through a stream for anything over 23 bytes).
    grpc::Slice slice(size);
    response.SerializeWithCachedSizesToArray(
        const_cast<uint8_t*>(slice.begin()));
    grpc::ByteBuffer flat(&slice, 1);
    raw->Swap(&flat);
    return;
  }
  bool own_buffer = false;
  // Fails only for messages over 2 GiB, which responses never are.
  grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(
      response, raw, &own_buffer)
      .IgnoreError();
}

CallArena::CallArena() {
  ThreadArena& thread = ForThisThread();
  thread_arena_ = !thread.in_use;
  if (thread_arena_) {
    thread.in_use = true;
    arena_ = &thread.arena;
  } else {
    arena_ = new google::protobuf::Arena();
  }
}

CallArena::~CallArena() {
  if (thread_arena_) {
    arena_->Reset();
    ForThisThread().in_use = false;
  } else {
    delete arena_;
  }
}

}  // namespace scopekeeper
