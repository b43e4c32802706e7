// ReflectionClient: what grpcurl does without -proto (list the services, fetch
// the file that defines a symbol), for tests of the server's reflection.
// Header-only: the generated reflection stubs are headers at the path
// libgrpc++_reflection registered its own compiled copy under (see BUILD).
#ifndef SCOPEKEEPER_TESTS_INTEGRATION_REFLECTION_CLIENT_H_
#define SCOPEKEEPER_TESTS_INTEGRATION_REFLECTION_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "src/proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace scopekeeper::testing {

class ReflectionClient {
 public:
  explicit ReflectionClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(grpc::reflection::v1alpha::ServerReflection::NewStub(
            std::move(channel))) {}

  // ListServices() is the names reflection lists.
  absl::StatusOr<std::vector<std::string>> ListServices() {
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("");
    absl::StatusOr<grpc::reflection::v1alpha::ServerReflectionResponse>
        response = Ask(request);
    if (!response.ok()) return response.status();
    std::vector<std::string> names;
    for (const auto& s : response->list_services_response().service()) {
      names.push_back(s.name());
    }
    return names;
  }

  // FileContainingSymbol() is the file descriptors reflection returns for
  // `symbol` (a service, method or message), the defining file first.
  absl::StatusOr<std::vector<google::protobuf::FileDescriptorProto>>
  FileContainingSymbol(const std::string& symbol) {
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    absl::StatusOr<grpc::reflection::v1alpha::ServerReflectionResponse>
        response = Ask(request);
    if (!response.ok()) return response.status();
    if (response->has_error_response()) {
      return absl::NotFoundError(absl::StrCat(
          symbol, ": ", response->error_response().error_message()));
    }
    std::vector<google::protobuf::FileDescriptorProto> files;
    for (const std::string& bytes :
         response->file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      if (!file.ParseFromString(bytes)) {
        return absl::DataLossError("unparsable FileDescriptorProto");
      }
      files.push_back(std::move(file));
    }
    return files;
  }

 private:
  // Ask() sends one request on a stream of its own.
  absl::StatusOr<grpc::reflection::v1alpha::ServerReflectionResponse> Ask(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    auto stream = stub_->ServerReflectionInfo(&context);
    grpc::reflection::v1alpha::ServerReflectionResponse response;
    const bool answered = stream->Write(request) && stream->Read(&response);
    stream->WritesDone();
    const grpc::Status status = stream->Finish();
    if (!status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("reflection: ", status.error_message()));
    }
    if (!answered) return absl::UnavailableError("reflection: no answer");
    return response;
  }

  std::unique_ptr<grpc::reflection::v1alpha::ServerReflection::Stub> stub_;
};

}  // namespace scopekeeper::testing

#endif  // SCOPEKEEPER_TESTS_INTEGRATION_REFLECTION_CLIENT_H_
